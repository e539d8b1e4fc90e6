package store_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/store"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

// open connects a store to the package's test database.
func open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), env.DatabaseURL, 20, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}
