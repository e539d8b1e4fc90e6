// Command healthcheck asks a URL with GET and exits 0 when it answers 2xx within the timeout, 1
// otherwise. The image has no shell and no curl (distroless), so docker-compose.yml's health check
// of the gateway runs this binary:
//
//	healthcheck [-timeout 3s] [URL]
//
// URL defaults to http://127.0.0.1:8080/healthz, the gateway's health on the image's port.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// defaultURL is the gateway's health endpoint on the port the image exposes.
const defaultURL = "http://127.0.0.1:8080/healthz"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// run checks the URL named by args and returns the exit status, writing why a check failed to
// stderr.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout 3s] [URL]  (URL defaults to "+defaultURL+")")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	url := defaultURL
	if fs.NArg() == 1 {
		url = fs.Arg(0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "healthcheck: %s answered %s: %s\n", url, resp.Status, body)
		return 1
	}
	return 0
}
