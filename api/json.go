package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

var (
	validate     *validator.Validate
	validateOnce sync.Once
)

func validatorInstance() *validator.Validate {
	validateOnce.Do(func() {
		validate = validator.New(validator.WithRequiredStructEnabled())
		validate.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				return ""
			}
			return name
		})
	})
	return validate
}

// bindJSON reads a JSON body of at most MaxJSONBytes into dst and validates it: a body that is not
// one JSON value answers 400, a field that breaks a rule or holds text PostgreSQL cannot store (a
// NUL character) answers 422 naming the field.
//
// The body is read whole into a reused buffer and, when dst holds no interface value (where the
// decoder's UseNumber would matter), decoded by json.Unmarshal, which needs no decoder and its
// buffer per request: it accepts exactly the bodies the decoder path below accepts (one JSON value,
// then at most whitespace) with the same result. Any other body goes through the decoder path,
// over the bytes read and then the read's error, so that every refusal keeps its answer.
func (h *handlers) bindJSON(c *gin.Context, dst any) bool {
	buf := jsonBodies.Get().(*bytes.Buffer)
	defer putJSONBody(buf)
	buf.Reset()
	_, readErr := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, h.Config.MaxJSONBytes))
	data := buf.Bytes()
	if readErr != nil || !decodesNoInterface(reflect.TypeOf(dst)) || json.Unmarshal(data, dst) != nil {
		var body io.Reader = bytes.NewReader(data)
		if readErr != nil {
			body = io.MultiReader(body, failingReader{readErr})
		}
		if !decodeJSON(c, body, dst) {
			return false
		}
	}
	// A decoded string holds a NUL only where the body has the escape \u0000, and is valid UTF-8
	// unless the body is not (json.RawMessage keeps the body's bytes).
	if (bytes.Contains(data, []byte(`\u0000`)) || !utf8.Valid(data)) && !storable(c, dst) {
		return false
	}
	return valid(c, dst)
}

// storable answers 422 naming the first field of dst holding text PostgreSQL cannot store.
func storable(c *gin.Context, dst any) bool {
	if details := unstorableFields(reflect.ValueOf(dst), "", nil); len(details) > 0 {
		fail(c, &core.Error{Kind: core.KindInvalid, Code: "invalid_field", Message: details[0].Field + ": " + details[0].Message, Details: details})
		return false
	}
	return true
}

// valid answers 422 naming the fields of dst that break their rules.
func valid(c *gin.Context, dst any) bool {
	if err := validatorInstance().Struct(dst); err != nil {
		var verrs validator.ValidationErrors
		if errors.As(err, &verrs) {
			out := &core.Error{Kind: core.KindInvalid, Code: "invalid_field", Message: "some fields are not valid"}
			for _, fe := range verrs {
				field := strings.TrimPrefix(fe.Namespace(), reflect.TypeOf(dst).Elem().Name()+".")
				out.Details = append(out.Details, core.FieldError{Field: field, Message: ruleMessage(fe)})
			}
			out.Message = out.Details[0].Field + ": " + out.Details[0].Message
			fail(c, out)
			return false
		}
		fail(c, err)
		return false
	}
	return true
}

// jsonBodies are the buffers bindJSON reads bodies into.
var jsonBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putJSONBody gives a body buffer back, unless a large body made it large.
func putJSONBody(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		jsonBodies.Put(buf)
	}
}

// failingReader answers its error: the rest of a body whose read failed (too large, too slow).
type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// decodeJSON decodes body into dst with a decoder (UseNumber) and answers every body that is not
// one JSON value, or does not fit dst.
func decodeJSON(c *gin.Context, body io.Reader, dst any) bool {
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		var maxErr *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			fail(c, core.ErrBodyTooLarge)
		case errors.As(err, &typeErr):
			fail(c, core.Invalid(typeErr.Field, "must be "+jsonKind(typeErr.Type)))
		case errors.As(err, new(*time.ParseError)):
			fail(c, core.Malformed("a time field is not an RFC 3339 time such as 2030-01-31T00:00:00Z: "+err.Error()))
		case errors.Is(err, io.EOF):
			fail(c, core.Malformed("the request body is empty; send a JSON object"))
		default:
			fail(c, core.Malformed("the request body is not valid JSON: "+err.Error()))
		}
		return false
	}
	// One JSON value, then at most whitespace: `{"a":1} garbage` and `{}{}` are not a JSON body.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if maxErr := new(http.MaxBytesError); errors.As(err, &maxErr) {
			fail(c, core.ErrBodyTooLarge)
		} else {
			fail(c, core.Malformed("the request body has data after its JSON value; send one JSON object"))
		}
		return false
	}
	return true
}

// interfaceFree caches decodesNoInterface by type.
var interfaceFree sync.Map // reflect.Type → bool

// decodesNoInterface reports whether decoding JSON into a value of type t never makes an interface
// value, so that the decoder's UseNumber changes nothing. A type that decodes itself
// (json.Unmarshaler, as optional[T] and time.Time do) decodes its own way either way.
func decodesNoInterface(t reflect.Type) bool {
	if v, ok := interfaceFree.Load(t); ok {
		return v.(bool)
	}
	free := noInterfaceIn(t, map[reflect.Type]bool{})
	interfaceFree.Store(t, free)
	return free
}

func noInterfaceIn(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true // a recursive type: its other fields decide
	}
	seen[t] = true
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return noInterfaceIn(t.Elem(), seen)
	case reflect.Map:
		return noInterfaceIn(t.Key(), seen) && noInterfaceIn(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); (f.IsExported() || f.Anonymous) && !noInterfaceIn(f.Type, seen) {
				return false
			}
		}
	}
	return true
}

// unstorableMessage says what is wrong with text PostgreSQL cannot store.
const unstorableMessage = "must be UTF-8 text without the NUL character (\\u0000)"

// unstorable reports whether s holds text PostgreSQL cannot store: a NUL character or bytes that
// are not UTF-8.
func unstorable(s string) bool {
	return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
}

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// unstorableFields appends to out a detail for every string in v that PostgreSQL cannot store,
// named by its JSON path below path (recipient.email, codes[2], settings.key); an object key that
// cannot be stored names the object. A json.RawMessage is read as the JSON it holds.
func unstorableFields(v reflect.Value, path string, out []core.FieldError) []core.FieldError {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			out = unstorableFields(v.Elem(), path, out)
		}
	case reflect.String:
		if unstorable(v.String()) {
			out = append(out, core.FieldError{Field: path, Message: unstorableMessage})
		}
	case reflect.Slice, reflect.Array:
		if v.Type() == rawMessageType {
			var doc any
			if json.Unmarshal(v.Bytes(), &doc) == nil {
				out = unstorableFields(reflect.ValueOf(doc), path, out)
			}
			return out
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return out // bytes (base64 in JSON), not text
		}
		for i := range v.Len() {
			out = unstorableFields(v.Index(i), path+"["+strconv.Itoa(i)+"]", out)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			key := fmt.Sprint(iter.Key().Interface())
			if unstorable(key) {
				out = append(out, core.FieldError{Field: path, Message: "has a key that " + unstorableMessage})
				continue
			}
			out = unstorableFields(iter.Value(), joinPath(path, key), out)
		}
	case reflect.Struct:
		// A type that decodes itself (optional[T], time.Time) is one JSON value: its fields are not
		// members of the object.
		decodesItself := reflect.PointerTo(v.Type()).Implements(unmarshalerType)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-":
				continue
			case decodesItself || (name == "" && f.Anonymous):
				name = path
			case name == "":
				name = joinPath(path, f.Name)
			default:
				name = joinPath(path, name)
			}
			out = unstorableFields(v.Field(i), name, out)
		}
	}
	return out
}

// joinPath names member name of the object at path.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonKind names what a field expects in words a client developer knows, not Go type names.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "an object"
	case reflect.Struct:
		if t.PkgPath() == "time" && t.Name() == "Time" {
			return "an RFC 3339 time such as 2030-01-31T00:00:00Z"
		}
		return "an object"
	}
	return "a JSON " + t.Kind().String()
}

func ruleMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "max":
		return "must be at most " + fe.Param()
	case "min":
		return "must be at least " + fe.Param()
	case "oneof":
		return "must be one of " + fe.Param()
	case "email":
		return "must be an email address"
	case "gte":
		return "must be at least " + fe.Param()
	case "lte":
		return "must be at most " + fe.Param()
	}
	return "breaks the rule " + fe.Tag()
}

// pathUUID reads a uuid path parameter; anything else is a 404 for that kind of object, since no
// object has such an id.
func pathUUID(c *gin.Context, name string, notFound error) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		fail(c, notFound)
		return uuid.UUID{}, false
	}
	return id, true
}

// page reads ?limit= and ?cursor=.
func page(c *gin.Context) (core.Page, bool) {
	p := core.Page{Cursor: c.Query("cursor")}
	if v := c.Query("limit"); v != "" {
		n, err := parseInt(v)
		if err != nil || n < 1 || n > 500 {
			fail(c, core.Invalid("limit", "must be a whole number from 1 to 500"))
			return p, false
		}
		p.Limit = int(n)
	}
	return p.Normalize(), true
}

// listIDAndPage reads the list id path parameter and the paging query of a listing endpoint.
func listIDAndPage(c *gin.Context) (uuid.UUID, core.Page, bool) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return listID, core.Page{}, false
	}
	p, ok := page(c)
	return listID, p, ok
}

// renderPage renders one page of a listing, converting each item to its response shape.
func renderPage[T, R any](c *gin.Context, items []T, next string, toResponse func(T) R) {
	c.JSON(http.StatusOK, newPage(mapped(items, toResponse), next))
}

// mapped converts every item of a listing to the shape an answer or a page shows.
func mapped[T, R any](items []T, convert func(T) R) []R {
	out := make([]R, len(items))
	for i, it := range items {
		out[i] = convert(it)
	}
	return out
}

// listPage is the contract's paged answer.
type listPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func newPage[T any](items []T, next string) listPage[T] {
	if items == nil {
		items = []T{}
	}
	return listPage[T]{Items: items, NextCursor: next}
}
