package store

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// timeUTC is a timestamptz column read back in UTC.
type timeUTC time.Time

// Time returns the value as a UTC time.Time.
func (t timeUTC) Time() time.Time { return time.Time(t).UTC() }

// Scan implements sql.Scanner.
func (t *timeUTC) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*t = timeUTC(x.UTC())
		return nil
	case nil:
		*t = timeUTC{}
		return nil
	}
	return fmt.Errorf("cannot scan %T into a time", v)
}

// Value implements driver.Valuer.
func (t timeUTC) Value() (driver.Value, error) { return time.Time(t).UTC(), nil }

// ptrUTC copies an optional time in UTC.
func ptrUTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
