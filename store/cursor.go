package store

import (
	"encoding/base64"
	"encoding/json"

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
