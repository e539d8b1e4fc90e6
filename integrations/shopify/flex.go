package shopify

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// flexString reads a JSON string, or a number as its literal text (Shopify ids and codes arrive as
// either, depending on the API version and the tool that produced the body); null reads as "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*s = ""
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case b[0] == '-' || '0' <= b[0] && b[0] <= '9':
		*s = flexString(b) // the decoder has already checked it is a number literal
	default:
		return fmt.Errorf("expected a string or a number, got %.20s", b)
	}
	return nil
}

// flexBool reads true, false, "true", "false" or null (false); anything else reads as false.
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true", `"true"`:
		*v = true
	default:
		*v = false
	}
	return nil
}

// present reads any JSON value and remembers whether it says "this happened": anything but
// absent, null, false and "" (cancelled_at is a timestamp or null).
type present bool

func (p *present) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "null", "false", `""`:
		*p = false
	default:
		*p = true
	}
	return nil
}
