package store

import (
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgx knows google/uuid's UUID only as a driver.Valuer and an sql.Scanner, so on its own it
// formats every id sent as text and parses it back, and formats every id read as text for
// uuid.Scan to parse: in a webhook batch's arrays of list ids this was a sixth of the worker's
// CPU. registerUUID teaches a connection's type map the 16 bytes both sides already hold.

// uuidCodec is pgtype's UUIDCodec, which also writes a uuid.UUID's bytes and reads them into
// one, in the binary format.
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeUUIDBinary{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUIDBinary{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeUUIDBinary struct{}

func (encodeUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	id := value.(uuid.UUID)
	return append(buf, id[:]...), nil
}

type scanUUIDBinary struct{}

// Scan reads NULL as uuid.Nil (uuid.UUID's own Scan left the destination as it was).
func (scanUUIDBinary) Scan(src []byte, dst any) error {
	switch {
	case src == nil:
		*dst.(*uuid.UUID) = uuid.Nil
		return nil
	case len(src) == 16:
		copy(dst.(*uuid.UUID)[:], src)
		return nil
	}
	return errors.New("a binary uuid is 16 bytes")
}

// registerUUID registers uuidCodec for uuid and uuid[] on conn's type map.
func registerUUID(conn *pgx.Conn) {
	m := conn.TypeMap()
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
}
