// Package e2e runs the real binaries the way an operator does: a gateway refusing a database that
// does not exist yet, couponctl migrate, a gateway and a worker started together, couponctl, and
// graceful shutdown on SIGTERM.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/internal/dbtest"
)

func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/gateway", "../cmd/worker", "../cmd/couponctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// urlWithPassword returns server's URL for database name and the password it carries: the
// server's own when it has one, else a random one (PostgreSQL with trust authentication takes
// any).
func urlWithPassword(t *testing.T, server, name string) (string, string) {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			return u.String(), p
		}
	}
	user := "postgres"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	password := "e2eSECRET" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u.User = url.UserPassword(user, password)
	probe := *u
	probe.Path = "/postgres"
	c, err := pgx.Connect(context.Background(), probe.String())
	if err != nil {
		t.Fatalf("PostgreSQL refuses a URL with a password (%v): point TEST_DATABASE_URL at a server with trust authentication or give it the password", err)
	}
	c.Close(context.Background())
	return u.String(), password
}

func TestFreshMachineStartCreateAndShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	bin := build(t)
	ctx := context.Background()
	name := fmt.Sprintf("cg_e2e_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, dbtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	t.Cleanup(func() { // its own connection: admin is closed by then
		c, err := pgx.Connect(context.Background(), dbtest.ServerURL())
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	client, redisDB, release, err := dbtest.Redis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	t.Cleanup(release)

	// The database URL carries a password (trust authentication takes any), so the logs can be
	// searched for it.
	dbURL, password := urlWithPassword(t, dbtest.ServerURL(), name)
	port := freePort(t)
	env := append(os.Environ(),
		"DATABASE_URL="+dbURL,
		fmt.Sprintf("REDIS_URL=redis://%s/%d", dbtest.RedisAddr(), redisDB),
		fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port), "LOG_FORMAT=text")
	start := func(prog string) (*exec.Cmd, *bytes.Buffer) {
		var logs bytes.Buffer
		cmd := exec.Command(filepath.Join(bin, prog))
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A test that fails before the shutdown below leaves no process running.
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, &logs
	}
	// On a database that does not exist the gateway refuses to start, in one line saying what to
	// run; couponctl migrate creates the database and migrates it.
	refused, refusedLogs := start("gateway")
	if err := refused.Wait(); refused.ProcessState.ExitCode() != 1 {
		t.Fatalf("the gateway on a database that does not exist: %v, want exit 1\n%s", err, refusedLogs)
	}
	if n := strings.Count(refusedLogs.String(), "level=ERROR"); n != 1 || !strings.Contains(refusedLogs.String(), "run `couponctl migrate`") {
		t.Fatalf("the gateway's refusal is not one error line naming couponctl migrate:\n%s", refusedLogs)
	}
	migrate := exec.Command(filepath.Join(bin, "couponctl"), "migrate")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil || !strings.Contains(string(out), "migrations applied") {
		t.Fatalf("couponctl migrate: %v\n%s", err, out)
	}
	// Both at once: both agree on the generated secret.
	worker, workerLogs := start("worker")
	gateway, gatewayLogs := start("gateway")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never healthy\ngateway:\n%s\nworker:\n%s", gatewayLogs, workerLogs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(gatewayLogs.String()+workerLogs.String(), "level=ERROR") {
		t.Fatalf("errors at start\ngateway:\n%s\nworker:\n%s", gatewayLogs, workerLogs)
	}
	for _, l := range []struct {
		name string
		logs *bytes.Buffer
	}{{"gateway", gatewayLogs}, {"worker", workerLogs}} {
		if !strings.Contains(l.logs.String(), ":xxxxx@") {
			t.Fatalf("the %s's start-up log lacks the masked database URL:\n%s", l.name, l.logs)
		}
	}

	cmd := exec.Command(filepath.Join(bin, "couponctl"), "merchant", "create", "--name", "E2E Shop", "--json")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("couponctl: %v %s", err, out)
	}
	var keys map[string]string
	if err := json.Unmarshal(out, &keys); err != nil || len(keys) != 3 || keys["merchant_id"] == "" ||
		!strings.HasPrefix(keys["api_key"], "cg_admin_") || !strings.HasPrefix(keys["storefront_key"], "cg_store_") {
		t.Fatalf("couponctl output %q: %v", out, err)
	}
	usage := exec.Command(filepath.Join(bin, "couponctl"), "merchant", "create")
	usage.Env = env
	if err := usage.Run(); err == nil || usage.ProcessState.ExitCode() != 2 {
		t.Fatalf("couponctl without --name: %v", err)
	}

	// A real request with the new key, then an import that the worker runs.
	req, _ := http.NewRequest("POST", base+"/api/v1/lists", strings.NewReader(`{"name":"e2e"}`))
	req.Header.Set("Authorization", "Bearer "+keys["api_key"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create list: %v %v", err, resp)
	}
	var list map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	req, _ = http.NewRequest("POST", base+"/api/v1/lists/"+list["id"].(string)+"/imports", strings.NewReader("A1\nA2\nA3\n"))
	req.Header.Set("Authorization", "Bearer "+keys["api_key"])
	req.Header.Set("Content-Type", "text/plain")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("import: %v %v", err, resp)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(60 * time.Second); ; {
		req, _ = http.NewRequest("GET", base+"/api/v1/lists/"+list["id"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+keys["api_key"])
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var l struct{ Counts map[string]int }
		_ = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if l.Counts["available"] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import never landed: %v\nworker:\n%s", l, workerLogs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SIGTERM: both stop cleanly, in time, with exit code 0.
	for _, p := range []struct {
		name string
		cmd  *exec.Cmd
		logs *bytes.Buffer
	}{{"gateway", gateway, gatewayLogs}, {"worker", worker, workerLogs}} {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s exited with %v\n%s", p.name, err, p.logs)
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Fatalf("%s did not stop within 30 s of SIGTERM", p.name)
		}
		if !strings.Contains(p.logs.String(), p.name+" stopped") {
			t.Fatalf("%s did not log its shutdown:\n%s", p.name, p.logs)
		}
	}
	// Not a line of either process's log, from start to shutdown, carries the database password.
	for _, l := range []struct {
		name string
		logs *bytes.Buffer
	}{{"gateway", gatewayLogs}, {"worker", workerLogs}} {
		for _, line := range strings.Split(l.logs.String(), "\n") {
			if strings.Contains(line, password) {
				t.Fatalf("the %s logged the database password: %s", l.name, line)
			}
		}
	}
	var exists bool
	_ = admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if !exists {
		t.Fatal("the database was not created")
	}
}
