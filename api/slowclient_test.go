package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

// stall connects to the harness, sends head (the request line and headers, possibly unfinished)
// and then nothing more; the connection closes when the test ends.
func stall(t testing.TB, h *apptest.Harness, head string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", h.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn
}

// post is the head of a POST whose body should be 100,000 bytes, with the first few sent (the
// start of a JSON object, or of a code file).
func post(path, contentType, auth string) string {
	head := "POST " + path + " HTTP/1.1\r\nHost: gateway\r\nContent-Type: " + contentType + "\r\nContent-Length: 100000\r\n"
	if auth != "" {
		head += "Authorization: Bearer " + auth + "\r\n"
	}
	if strings.HasPrefix(contentType, "application/json") {
		return head + "\r\n" + `{"name": "Stal`
	}
	return head + "\r\n" + "STALLED-1\n"
}

// A client that sends its headers, or a request's first bytes, and then stalls is cut off once its
// time is up, not held open: headers within READ_HEADER_TIMEOUT, a body within BODY_READ_TIMEOUT,
// an upload within the longer UPLOAD_READ_TIMEOUT.
func TestStalledClientsAreCutOff(t *testing.T) {
	// not parallel: it measures how long the server takes to cut a stalled client off
	const bodyTimeout, uploadTimeout = 300 * time.Millisecond, 1500 * time.Millisecond
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.BodyReadTimeout = bodyTimeout
		c.UploadReadTimeout = uploadTimeout
	}})
	m := h.NewMerchant(t, "Slow Client Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Welcome"})
	for _, tc := range []struct {
		name    string
		head    string
		atLeast time.Duration // the gateway waits this long before cutting it off
	}{
		{"stalled headers", "POST /webhooks/shopify HTTP/1.1\r\nHost: gateway\r\nContent-Le", 0},
		{"Shopify webhook", post("/webhooks/shopify", "application/json", ""), 0},
		{"WooCommerce webhook", post("/webhooks/woocommerce/"+uuid.NewString(), "application/json", ""), 0},
		{"admin JSON", post("/api/v1/lists", "application/json", m.APIKey), 0},
		{"import upload", post("/api/v1/lists/"+list+"/imports", "text/plain", m.APIKey), uploadTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started := time.Now()
			conn := stall(t, h, tc.head)
			// Without limits the gateway would wait for ever: give up well before that.
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, err := io.ReadAll(conn)
			took := time.Since(started)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("still connected after %s: the stalled client is never cut off", took.Round(time.Millisecond))
			}
			if status := strings.SplitN(string(answer), "\r\n", 2)[0]; answer != nil && !strings.HasPrefix(status, "HTTP/1.1 4") {
				t.Fatalf("answer to a stalled request: %q; want a 4xx or the connection closed", status)
			}
			if took < tc.atLeast {
				t.Fatalf("cut off after %s; an upload has %s", took.Round(time.Millisecond), tc.atLeast)
			}
		})
	}
}

// Only MAX_CONCURRENT_UPLOADS uploads (imports and bulk deliveries together) are read at once; one
// more, an import or a bulk delivery, answers 503 uploads_busy with Retry-After, and a place frees
// when an upload ends.
func TestConcurrentUploadsAreCapped(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.MaxConcurrentUploads = 2
		c.UploadReadTimeout = time.Minute
	}})
	m := h.NewMerchant(t, "Busy Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Welcome"})
	imports := "/api/v1/lists/" + list + "/imports"
	bulk := "/api/v1/lists/" + list + "/deliveries/bulk"
	// A probe takes a place only for a moment when there is one: its body is of no upload type.
	probe := func(path string) apptest.Response {
		return h.Do(t, apptest.Request{Method: "POST", Path: path, APIKey: m.APIKey, ContentType: "application/json", Body: strings.NewReader("{}")})
	}
	busy := func(r apptest.Response) bool {
		return r.Status == http.StatusServiceUnavailable && r.ErrorCode() == "uploads_busy" && r.Header.Get("Retry-After") != ""
	}
	if r := probe(imports); busy(r) {
		t.Fatalf("busy with no upload running: %d %s", r.Status, r.Body)
	}

	// Two uploads stall, each once the gateway has admitted it (its import is then uploading): a
	// probe sent before the gateway gets to an upload could take the last place for a moment, and
	// the upload would be refused.
	ctx := context.Background()
	uploading := func() int {
		var n int
		if err := h.App.DB.Pool().QueryRow(ctx, `SELECT count(*) FROM imports WHERE merchant_id = $1 AND list_id = $2 AND status = 'uploading'`,
			m.ID, list).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var stalled []net.Conn
	for i := 1; i <= 2; i++ {
		stalled = append(stalled, stall(t, h, post(imports, "text/plain", m.APIKey)))
		apptest.Eventually(t, 10*time.Second, fmt.Sprintf("upload %d admitted", i), func() bool { return uploading() == i })
	}
	if r := probe(imports); !busy(r) {
		t.Fatalf("a third upload while two are read: %d %s; want 503 uploads_busy with Retry-After", r.Status, r.Body)
	}
	if r := probe(bulk); !busy(r) {
		t.Fatalf("a bulk delivery while two uploads are read: %d %s; want 503 uploads_busy with Retry-After", r.Status, r.Body)
	}

	// The first upload's client goes away: its place is free again.
	stalled[0].Close()
	apptest.Eventually(t, 10*time.Second, "a place freed by an upload that ended", func() bool { return !busy(probe(imports)) })
	if r := probe(imports); r.Status != http.StatusBadRequest && r.Status != http.StatusUnsupportedMediaType {
		t.Fatalf("probe with a free place: %d %s", r.Status, r.Body)
	}
}
