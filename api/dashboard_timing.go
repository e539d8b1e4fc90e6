package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// serverTimingName is the metric every dashboard answer carries in its Server-Timing header: the
// milliseconds from the dashboard's first middleware to the answer's first byte (who is signed
// in, the page's reads, its rendering), so a browser's developer tools or a benchmark see the
// server's part of a page apart from the network's.
const serverTimingName = "page"

// timePage makes the answer carry Server-Timing: page;dur=<ms>, written when its headers go out
// (an answer without a body, such as a redirect, goes out without it). A page is rendered into a buffer before its first byte, so for a page that is its whole server
// time; for a streamed download, the time to its first byte.
func timePage(c *gin.Context) {
	c.Writer = &timedWriter{ResponseWriter: c.Writer, start: time.Now()}
}

// timedWriter adds the Server-Timing header just before the headers are written.
type timedWriter struct {
	gin.ResponseWriter
	start time.Time
	done  bool
}

func (w *timedWriter) stamp() {
	if w.done || w.ResponseWriter.Written() {
		return
	}
	w.done = true
	ms := float64(time.Since(w.start).Microseconds()) / 1000
	w.Header().Set("Server-Timing", serverTimingName+";dur="+strconv.FormatFloat(ms, 'f', 3, 64))
}

func (w *timedWriter) WriteHeaderNow() {
	w.stamp()
	w.ResponseWriter.WriteHeaderNow()
}

func (w *timedWriter) Write(b []byte) (int, error) {
	w.stamp()
	return w.ResponseWriter.Write(b)
}

func (w *timedWriter) WriteString(s string) (int, error) {
	w.stamp()
	return w.ResponseWriter.WriteString(s)
}

func (w *timedWriter) Flush() {
	w.stamp()
	w.ResponseWriter.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *timedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
