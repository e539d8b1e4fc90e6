package woocommerce

import (
	"bytes"
	"encoding/json"
	"errors"
)

// batchAnswer is a POST /coupons/batch answer as the client reads it: each item's id, code and
// error, under "create" and "delete".
type batchAnswer struct {
	Create []wireBatchItem `json:"create"`
	Delete []wireBatchItem `json:"delete"`
}

// wireBatchItem is what a batch answer's item is read for.
type wireBatchItem struct {
	ID    clientInt    `json:"id"`
	Code  clientString `json:"code"`
	Error *wireError   `json:"error"`
}

// decodeAnswer reads raw with a scanner that takes each item's id, code and error and steps over
// everything else without decoding it: a created coupon answers with about a kilobyte of fields,
// links and custom fields, and decoding a 100-coupon answer with encoding/json was half the
// pusher's CPU time. An answer the scanner does not follow (a plugin's notice before the JSON, a
// field of an unexpected type) is read by encoding/json as any other answer is.
func (a *batchAnswer) decodeAnswer(raw []byte) error {
	var fast batchAnswer
	if err := fast.scan(raw); err == nil {
		*a = fast
		return nil
	}
	*a = batchAnswer{}
	return decodeLenient(raw, a)
}

// errScan is an answer the scanner leaves to encoding/json.
var errScan = errors.New("woocommerce: batch answer not scanned")

// scan reads an answer that is one JSON object, with nothing but whitespace around it.
func (a *batchAnswer) scan(b []byte) error {
	s := scanner{b: b}
	err := s.object(func(key []byte) error {
		var list *[]wireBatchItem
		switch {
		case keyIs(key, "create"):
			list = &a.Create
		case keyIs(key, "delete"):
			list = &a.Delete
		default:
			return s.skip()
		}
		if s.peek() == 'n' { // null: no items
			*list = nil
			return s.skip()
		}
		*list = (*list)[:0]
		return s.array(func() error {
			var item wireBatchItem
			if err := s.item(&item); err != nil {
				return err
			}
			*list = append(*list, item)
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.space()
	if s.i != len(s.b) {
		return errScan
	}
	return nil
}

// keyIs matches a key as encoding/json matches a field's name: exactly, else without regard to
// case.
func keyIs(key []byte, name string) bool {
	return string(key) == name || bytes.EqualFold(key, []byte(name))
}

// scanner walks JSON text. It follows what it reads only as far as it must: the values it steps
// over are checked for balanced brackets and closed strings, not for the rest of JSON's grammar.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte after whitespace (0 at the end).
func (s *scanner) peek() byte {
	s.space()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// expect consumes c after whitespace.
func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errScan
	}
	s.i++
	return nil
}

// object reads {"key": value, …}, calling member with each key (its raw bytes, escapes refused)
// with the scanner at the value, which member must consume.
func (s *scanner) object(member func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		start, end, err := s.str()
		if err != nil {
			return err
		}
		key := s.b[start:end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return errScan
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errScan
		}
	}
}

// array reads [value, …], calling elem with the scanner at each value.
func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errScan
		}
	}
}

// item reads one item object: id, code and error, each decoded as encoding/json would.
func (s *scanner) item(it *wireBatchItem) error {
	return s.object(func(key []byte) error {
		var target json.Unmarshaler
		switch {
		case keyIs(key, "id"):
			target = &it.ID
		case keyIs(key, "code"):
			target = &it.Code
		case keyIs(key, "error"):
			start, err := s.value()
			if err != nil {
				return err
			}
			raw := s.b[start:s.i]
			if string(raw) == "null" {
				it.Error = nil
				return nil
			}
			var w wireError
			if err := json.Unmarshal(raw, &w); err != nil {
				return errScan
			}
			it.Error = &w
			return nil
		default:
			return s.skip()
		}
		start, err := s.value()
		if err != nil {
			return err
		}
		if err := target.UnmarshalJSON(s.b[start:s.i]); err != nil {
			return errScan
		}
		return nil
	})
}

// skip steps over one value.
func (s *scanner) skip() error {
	_, err := s.value()
	return err
}

// value steps over one value and returns where it starts (it ends at s.i).
func (s *scanner) value() (int, error) {
	s.space()
	start := s.i
	if s.i >= len(s.b) {
		return start, errScan
	}
	switch c := s.b[s.i]; c {
	case '"':
		_, _, err := s.str()
		return start, err
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, _, err := s.str(); err != nil {
					return start, err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return start, nil
				}
			}
			s.i++
		}
		return start, errScan
	default:
		// A number or a literal: up to the next delimiter.
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if s.i == start {
					return start, errScan
				}
				return start, nil
			case '"', '{', '[', ':':
				return start, errScan
			}
			s.i++
		}
		return start, nil
	}
}

// str steps over a string at s.i and returns the bounds of its contents (escapes left as they
// are).
func (s *scanner) str() (start, end int, err error) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return 0, 0, errScan
	}
	s.i++
	start = s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			end = s.i
			s.i++
			return start, end, nil
		}
		s.i++
	}
	return 0, 0, errScan
}
