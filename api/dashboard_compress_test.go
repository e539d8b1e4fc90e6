package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"testing"

	"github.com/coupongate/coupongate/web"
)

// TestDashboardStaticGzip: a browser that accepts gzip gets the stylesheet and the script gzipped
// (about a third of their size), the same bytes once unpacked, with a weak ETag that revalidates
// to 304; a client that does not (or says q=0) gets them as they are. Both answers vary by
// Accept-Encoding.
func TestDashboardStaticGzip(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	for _, name := range []string{"app.css", "app.js"} {
		want, _, hash, ok := web.Asset(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		for _, tc := range []struct {
			accept string
			zipped bool
		}{
			{"gzip, deflate, br", true},
			{"br;q=1.0, gzip;q=0.8", true},
			{"*", true},
			{"identity", false},
			{"gzip;q=0", false},
			{"br", false},
		} {
			r := f.do(t, dashRequest{path: "/app/static/" + name, header: map[string]string{"Accept-Encoding": tc.accept}})
			body := r.Body
			if tc.zipped {
				zr, err := gzip.NewReader(bytes.NewReader(r.Body))
				if err != nil {
					t.Fatalf("%s with %q: not gzip (%v), Content-Encoding %q", name, tc.accept, err, r.Header.Get("Content-Encoding"))
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("ETag") != `W/"`+hash+`"` || len(r.Body) > len(want)/2 {
					t.Errorf("%s with %q: Content-Encoding %q, ETag %q, %d of %d bytes", name, tc.accept,
						r.Header.Get("Content-Encoding"), r.Header.Get("ETag"), len(r.Body), len(want))
				}
			} else if r.Header.Get("Content-Encoding") != "" || r.Header.Get("ETag") != `"`+hash+`"` {
				t.Errorf("%s with %q: Content-Encoding %q, ETag %q", name, tc.accept, r.Header.Get("Content-Encoding"), r.Header.Get("ETag"))
			}
			if r.Status != http.StatusOK || !bytes.Equal(body, want) || r.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s with %q: %d, %d bytes (want %d), Vary %q", name, tc.accept, r.Status, len(body), len(want), r.Header.Get("Vary"))
			}
		}
		r := f.do(t, dashRequest{path: "/app/static/" + name, header: map[string]string{"Accept-Encoding": "gzip", "If-None-Match": `W/"` + hash + `"`}})
		if r.Status != http.StatusNotModified || len(r.Body) != 0 {
			t.Errorf("%s revalidated: %d with %d bytes", name, r.Status, len(r.Body))
		}
	}
}
