package store

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// encodeCursor turns a keyset position into the opaque next_cursor string.
func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor made by encodeCursor; anything else is a 400.
func decodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, v) != nil {
		return core.Malformed("cursor is not one this API returned")
	}
	return nil
}

// timePosition is a keyset position over (a time, an id), for listings ordered by creation.
type timePosition struct {
	At time.Time `json:"at"`
	ID uuid.UUID `json:"id"`
}

// trimPage cuts items fetched with limit+1 rows down to limit and returns the cursor after the
// last item kept ("" when there is no further page).
func trimPage[T any](items []T, limit int, position func(T) timePosition) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, encodeCursor(position(items[len(items)-1]))
}

// newestFirst is the position a newest-first listing continues before: the cursor's, or one past
// every row for the first page (the listing asks for (created_at, id) < the position).
func newestFirst(cursor string) (timePosition, error) {
	if cursor == "" {
		return timePosition{At: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), ID: uuid.Max}, nil
	}
	var p timePosition
	return p, decodeCursor(cursor, &p)
}
