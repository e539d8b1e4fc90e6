package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/coupongate/coupongate/core"
)

// Listener wraps ln so that a request Go's HTTP server refuses before any handler runs is answered
// in the contract's error shape, with a JSON body, instead of Go's plain text: a path with a bad
// escape (/api/v1/lists/%zz), a malformed request line or header (400 malformed_request), headers
// over the limit (431) and the like. Serve the router on it: srv.Serve(api.Listener(ln)).
//
// Go's server writes those answers itself, each in one write on the connection, before closing
// it. The wrapper knows one by its fixed form: the status line directly followed by exactly Go's
// "Content-Type: text/plain; charset=utf-8" and "Connection: close" headers and the blank line. A
// handler's answer never has that form (it always carries a Date header before the blank line),
// so no answer of the router is touched.
func Listener(ln net.Listener) net.Listener { return edgeListener{ln} }

type edgeListener struct{ net.Listener }

func (l edgeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &edgeConn{Conn: c}, nil
}

// edgeConn rewrites the server's own plain-text refusals (see Listener).
type edgeConn struct{ net.Conn }

func (c *edgeConn) Write(b []byte) (int, error) {
	answer, ok := contractRefusal(b)
	if !ok {
		return c.Conn.Write(b)
	}
	if _, err := c.Conn.Write(answer); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite lets the server half-close the connection after a refusal, as it does on a bare TCP
// connection.
func (c *edgeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the connection's own ReadFrom (sendfile on TCP) for response bodies.
func (c *edgeConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// goRefusalHeaders are the headers net/http's server writes with its own refusals.
const goRefusalHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// contractRefusal turns one of net/http's own refusals into the same status with the contract's
// error body; ok is false for anything else.
func contractRefusal(b []byte) (answer []byte, ok bool) {
	const proto = "HTTP/1.1 "
	end := bytes.Index(b, []byte(goRefusalHeaders))
	if !bytes.HasPrefix(b, []byte(proto)) || end < 0 || bytes.Contains(b[:end], []byte("\r\n")) {
		return nil, false
	}
	statusLine := string(b[len(proto):end])
	status, err := strconv.Atoi(statusLine[:min(3, len(statusLine))])
	if err != nil || status < 400 || http.StatusText(status) == "" {
		return nil, false
	}
	code := strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	message := "the request is not valid HTTP"
	if status == http.StatusBadRequest {
		code = "malformed_request"
		message = "the request cannot be read as HTTP (a path with a bad %-escape such as %zz, a malformed request line or header)"
	}
	// The server names some causes after the status text ("400 Bad Request: missing required Host header").
	if _, why, found := strings.Cut(statusLine, ": "); found {
		message = "the request cannot be read as HTTP: " + why
	}
	body, err := json.Marshal(errorBody{Error: errorDetail{Code: code, Message: message, Details: []core.FieldError{}}})
	if err != nil {
		return nil, false
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body), true
}
