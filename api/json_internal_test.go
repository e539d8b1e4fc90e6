package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/config"
)

// bindOutcome is what bindJSON did with a body: the value it decoded, or the error it answered.
type bindOutcome struct {
	ok    bool
	value string
	err   string
}

// bindBody runs bind over a request with body, as a handler would.
func bindBody[T any](t *testing.T, h *handlers, body string, bind func(*handlers, *gin.Context, any) bool) bindOutcome {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	var dst T
	if bind(h, c, &dst) {
		return bindOutcome{ok: true, value: fmt.Sprintf("%#v", dst)}
	}
	return bindOutcome{err: c.Errors.Last().Err.Error()}
}

// TestBindJSONAnswersAsTheDecoderDid: for every kind of body, good or bad, bindJSON (the body read
// whole, then json.Unmarshal where it applies) decodes the same value or answers the same error as
// the decoder reading the body itself.
func TestBindJSONAnswersAsTheDecoderDid(t *testing.T) {
	t.Parallel()
	h := &handlers{Deps: Deps{Config: config.Config{MaxJSONBytes: 200}}}
	fast := func(h *handlers, c *gin.Context, dst any) bool { return h.bindJSON(c, dst) }
	// bindJSON as it was: the decoder reads the body, then every check.
	slow := func(h *handlers, c *gin.Context, dst any) bool {
		return decodeJSON(c, http.MaxBytesReader(c.Writer, c.Request.Body, h.Config.MaxJSONBytes), dst) && storable(c, dst) && valid(c, dst)
	}
	bodies := []string{
		`{"code":"SPRING-1","customer":{"email":"ann@example.com"},"reserve":true}`,
		"  {\"code\": \"A\"}  \n",
		`{"code":"A"} garbage`,
		`{"code":"A"}{"code":"B"}`,
		``,
		`   `,
		`{"code":`,
		`{"code":1}`,
		`{"code":"A","reserve":"yes"}`,
		`{"code":"A\u0000B"}`,
		"{\"code\":\"A\xffB\"}",
		`{"code":"\ud800"}`,
		`{"code":""}`,
		`{"code":"` + strings.Repeat("x", 300) + `"}`,
		`[1, 2]`,
		`null`,
		`{"code":"A","unknown":{"deep":[1,2,{"x":null}]}}`,
	}
	type withAny struct {
		Code  string         `json:"code"`
		Extra any            `json:"unknown"`
		Meta  map[string]any `json:"meta"`
	}
	type withTime struct {
		Code string    `json:"code" validate:"max=10"`
		At   time.Time `json:"at"`
	}
	for i, body := range bodies {
		for _, kind := range []string{"validateRequest", "withAny", "withTime"} {
			var got, want bindOutcome
			switch kind {
			case "validateRequest":
				got, want = bindBody[validateRequest](t, h, body, fast), bindBody[validateRequest](t, h, body, slow)
			case "withAny":
				got, want = bindBody[withAny](t, h, body, fast), bindBody[withAny](t, h, body, slow)
			case "withTime":
				got, want = bindBody[withTime](t, h, body, fast), bindBody[withTime](t, h, body, slow)
			}
			if got != want {
				t.Errorf("body %d into %s: bindJSON %+v, the decoder %+v", i, kind, got, want)
			}
		}
	}
}

// TestDecodesNoInterface: json.Unmarshal stands in for the decoder only where no interface value
// is decoded (there the decoder's UseNumber gives json.Number instead of float64).
func TestDecodesNoInterface(t *testing.T) {
	t.Parallel()
	type inner struct{ X any }
	type embedded struct{ Y any }
	type recursive struct {
		Next *recursive
		Name string
	}
	for _, tc := range []struct {
		v    any
		want bool
	}{
		{&validateRequest{}, true},
		{&allocationRequest{}, true},
		{&struct{ Doc json.RawMessage }{}, true},
		{&struct{ At optional[time.Time] }{}, true},
		{&recursive{}, true},
		{&struct{ V any }{}, false},
		{&struct{ M map[string]any }{}, false},
		{&struct{ S []inner }{}, false},
		{&struct{ embedded }{}, false},
	} {
		if got := decodesNoInterface(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("decodesNoInterface(%T) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
