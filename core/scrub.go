package core

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// ScrubText returns s without what PostgreSQL cannot store as text: NUL characters and bytes that
// are not UTF-8 are dropped, everything else is kept as it is. Platform data (an order's customer,
// note or codes) goes through it so that a stray NUL in a shop's data costs that character, not
// the order.
func ScrubText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != 0 && !(r == utf8.RuneError && size == 1) {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// ScrubJSON returns a platform's JSON body with the text PostgreSQL cannot store dropped: in its
// strings the escape \u0000 and escapes of lone UTF-16 surrogates (\ud800 with no low half after
// it), and anywhere NUL bytes and bytes that are not UTF-8. Everything else, escapes, key order and number
// spelling included, is kept byte for byte, so a clean body comes back unchanged (the same slice)
// and a scrubbed one reads as the same JSON without those characters. A body that is not JSON is
// scrubbed the same way as far as it can be read. Scrub after checking a signature: the scrubbed
// body no longer matches it.
func ScrubJSON(body []byte) []byte {
	if clean(body) {
		return body
	}
	out := make([]byte, 0, len(body))
	inString := false
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(body[i:])
			if !(r == utf8.RuneError && size == 1) {
				out = append(out, body[i:i+size]...)
			}
			i += size
		case c == 0:
			i++
		case inString && c == '\\':
			n := escapeLen(body[i:])
			if n < 0 {
				i += 6 // \u0000 or a lone surrogate: dropped
				continue
			}
			out = append(out, body[i:i+n]...)
			i += n
		default:
			if c == '"' {
				inString = !inString
			}
			out = append(out, c)
			i++
		}
	}
	return out
}

// clean reports whether body has nothing ScrubJSON would drop, without allocating: valid UTF-8
// with no NUL byte and no \u escape that could be \u0000 or a surrogate.
func clean(body []byte) bool {
	if bytes.IndexByte(body, 0) >= 0 || !utf8.Valid(body) {
		return false
	}
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u`))
		if j < 0 {
			return true
		}
		i += j + 2
		if i < len(body) && (body[i] == '0' || body[i] == 'd' || body[i] == 'D') {
			return false
		}
	}
}

// escapeLen is the length of the escape at the start of b (b[0] is a backslash) to keep, or -1
// when it is six bytes to drop: \u0000, or a surrogate escape that is not a high half followed by
// a low half. A truncated escape is kept as it is (the JSON is broken anyway).
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return len(b)
	}
	if b[1] != 'u' {
		return 2
	}
	r, ok := hex4(b[2:])
	if !ok {
		return 2
	}
	switch {
	case r == 0:
		return -1
	case r >= 0xD800 && r < 0xDC00: // a high surrogate: kept with the low half after it
		if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if lo, ok := hex4(b[8:]); ok && lo >= 0xDC00 && lo < 0xE000 {
				return 12
			}
		}
		return -1
	case r >= 0xDC00 && r < 0xE000: // a low surrogate alone
		return -1
	}
	return 6
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
