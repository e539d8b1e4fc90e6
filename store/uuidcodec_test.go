package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestUUIDsRoundTrip: ids go to PostgreSQL and come back as they were, alone, in arrays and as
// NULL (uuid.Nil into a uuid.UUID, whatever it held; nil into a *uuid.UUID), sent and read as
// their bytes by the store's codec.
func TestUUIDsRoundTrip(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	var one, null uuid.UUID
	var nullable, set *uuid.UUID
	var text string
	var many []uuid.UUID
	null = uuid.New() // NULL must overwrite it
	err := db.Pool().QueryRow(ctx, `SELECT $1::uuid, $1::uuid::text, NULL::uuid, NULL::uuid, $1::uuid, $2::uuid[]`, a, []uuid.UUID{a, b}).
		Scan(&one, &text, &null, &nullable, &set, &many)
	switch {
	case err != nil:
		t.Fatal(err)
	case one != a || text != a.String():
		t.Errorf("sent %s, read %s (text %s)", a, one, text)
	case null != uuid.Nil || nullable != nil:
		t.Errorf("NULL read as %s and %v; want uuid.Nil and nil", null, nullable)
	case set == nil || *set != a:
		t.Errorf("into a pointer: %v, want %s", set, a)
	case !slices.Equal(many, []uuid.UUID{a, b}):
		t.Errorf("an array came back as %v, want [%s %s]", many, a, b)
	}
	// Sent and read as their 16 bytes, not formatted as text and parsed back.
	conn, err := db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	m := conn.Conn().TypeMap()
	enc := fmt.Sprintf("%T", m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, a))
	scan := fmt.Sprintf("%T", m.PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, &one))
	if !strings.HasPrefix(enc, "store.") || !strings.HasPrefix(scan, "store.") {
		t.Errorf("ids are encoded by %s and scanned by %s; want the store's codec", enc, scan)
	}
	var found bool
	if err := db.Pool().QueryRow(ctx, `SELECT $1::uuid = ANY ($2::uuid[]) AND $1::text = $3`, b, []uuid.UUID{a, b}, b.String()).Scan(&found); err != nil || !found {
		t.Errorf("PostgreSQL did not see the id sent: %v %v", found, err)
	}
}
