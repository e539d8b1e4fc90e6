package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/gateway and cmd/worker once per run.
func binaries(tb testing.TB) string {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "coupongate-bench-bin")
		if buildErr != nil {
			return
		}
		// BENCH_PGO=off builds without the profiles (cmd/*/default.pgo), to measure what they buy.
		cmd := exec.Command("go", "build", "-pgo="+cmp.Or(os.Getenv("BENCH_PGO"), "auto"), "-o", binDir+"/", "../cmd/gateway", "../cmd/worker")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		tb.Fatalf("build binaries: %v", buildErr)
	}
	return binDir
}

// proc is a running gateway or worker process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func (p *proc) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return -1
}

func (p *proc) stop(tb testing.TB) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		tb.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
	}
}

// profiles numbers the CPU profiles of the processes a bench run starts.
var profiles atomic.Int64

// stack is a gateway and a worker started as real processes on the bench's database and Redis.
type stack struct {
	gateway, worker *proc
	url             string
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startStack starts a worker and a gateway; extra are extra environment variables. The bench's
// database is dbtest's clone of the migrated template, so the processes, which do not migrate,
// find the schema current.
func startStack(tb testing.TB, extra ...string) *stack {
	dir := binaries(tb)
	port := freePort(tb)
	base := append(os.Environ(),
		"DATABASE_URL="+env.DatabaseURL, "REDIS_URL="+env.RedisURL(), "LOG_LEVEL=warn",
		fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port), "APP_URL=http://127.0.0.1:"+strconv.Itoa(port),
		"ALLOW_PRIVATE_NETWORKS=true") // the benches' fake stores listen on loopback
	base = append(base, extra...)
	start := func(name string, env []string) *proc {
		cmd := exec.Command(filepath.Join(dir, name))
		cmd.Env = env
		if dir := os.Getenv("BENCH_CPU_PROFILE_DIR"); dir != "" { // make pgo: profile the whole run
			cmd.Env = append(cmd.Env, "CPU_PROFILE="+filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", name, profiles.Add(1))))
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
		go func() { p.done <- cmd.Wait() }()
		return p
	}
	s := &stack{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.worker = start("worker", append(base, "DB_MAX_CONNS=12", "WORKER_CONCURRENCY=4"))
	gatewayEnv := append(base, "DB_MAX_CONNS=48")
	if addr := os.Getenv("BENCH_GATEWAY_DEBUG_ADDR"); addr != "" { // profile the gateway during a bench
		gatewayEnv = append(gatewayEnv, "DEBUG_ADDR="+addr)
	}
	s.gateway = start("gateway", gatewayEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-ctx.Done():
			s.stop(tb)
			tb.Fatal("gateway did not become healthy")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return s
}

func (s *stack) stop(tb testing.TB) {
	s.gateway.stop(tb)
	s.worker.stop(tb)
}
