//go:build ha

package pgfailover

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The formation: a pg_auto_failover monitor and two PostgreSQL nodes, each a pg_autoctl process
// of its own (the keeper, which starts and watches its postgres), on free local ports in the
// test's temporary directory. With two nodes the monitor keeps replication synchronous, so a write
// the primary acknowledged is on the standby.

// pgBinDir is where PostgreSQL 15's programs are (Debian's layout); PG_BINDIR overrides it.
func pgBinDir() string {
	return cmp.Or(os.Getenv("PG_BINDIR"), "/usr/lib/postgresql/15/bin")
}

// require fails the test when CI is set and skips it otherwise: what the formation needs is missing.
func require(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) +
		" (install with: apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// service is one pg_autoctl process; its process group holds the postgres it started.
type service struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// formation is a running pg_auto_failover formation.
type formation struct {
	t       testing.TB
	dir     string
	autoctl string
	pgctl   string
	env     []string
	// cred runs the processes as the postgres user when the test runs as root (PostgreSQL
	// refuses to run as root); nil otherwise.
	cred        *syscall.Credential
	monitorPort int
	monitor     *service
	nodes       []*node
}

// node is one PostgreSQL node of the formation.
type node struct {
	name   string
	port   int
	pgdata string
	svc    *service
}

// nodeState is a node as `pg_autoctl show state --json` reports it.
type nodeState struct {
	Name     string `json:"nodename"`
	Port     int    `json:"nodeport"`
	Current  string `json:"current_group_state"`
	Assigned string `json:"assigned_group_state"`
	Health   int    `json:"health"`
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startFormation starts the monitor, then node n1, which becomes the primary, then n2, which
// joins as its synchronous standby, and waits until both report primary and secondary. Everything
// stops when the test ends.
func startFormation(t testing.TB) *formation {
	t.Helper()
	autoctl, err := exec.LookPath("pg_autoctl")
	if err != nil {
		require(t, "pg_autoctl is not installed")
	}
	pgctl := filepath.Join(pgBinDir(), "pg_ctl")
	if _, err := os.Stat(pgctl); err != nil {
		require(t, "PostgreSQL 15's pg_ctl is not at %s (PG_BINDIR sets another directory)", pgctl)
	}
	f := &formation{t: t, autoctl: autoctl, pgctl: pgctl}
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			require(t, "the tests run as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		f.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		// t.TempDir's parent is private to root: the postgres user needs to pass through it.
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	f.dir = dir
	// pg_autoctl keeps each node's configuration and state under the XDG directories; these keep
	// them in the test's directory.
	f.env = []string{
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		"PATH=" + pgBinDir() + ":/usr/local/bin:/usr/bin:/bin",
		"LANG=C.UTF-8",
	}
	// Made beforehand, down to each node's own directory under pg_autoctl's (XDG_*/pg_autoctl/
	// followed by the node's PGDATA): pg_autoctl commands run at once (a node's create and the
	// test's show state) race to create them, and the loser fails with "File exists".
	for _, sub := range []string{"config", "data", "run"} {
		for _, node := range []string{"monitor", "n1", "n2"} {
			d := filepath.Join(dir, sub, "pg_autoctl", filepath.Join(dir, node))
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if f.cred != nil {
			err := filepath.WalkDir(filepath.Join(dir, sub), func(path string, _ os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Chown(path, int(f.cred.Uid), int(f.cred.Gid))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(f.stop)

	f.monitorPort = freePort(t)
	f.monitor = f.start("monitor", "create", "monitor", "--pgdata", filepath.Join(dir, "monitor"),
		"--pgport", strconv.Itoa(f.monitorPort), "--hostname", "127.0.0.1", "--pgctl", pgctl,
		"--auth", "trust", "--no-ssl", "--run")
	f.waitState(time.Minute, "the monitor to answer", func(s []nodeState) bool { return true })
	for i, want := range []map[string]string{{"n1": "single"}, {"n1": "primary", "n2": "secondary"}} {
		n := &node{name: fmt.Sprintf("n%d", i+1), port: freePort(t)}
		n.pgdata = filepath.Join(dir, n.name)
		f.nodes = append(f.nodes, n)
		n.svc = f.start(n.name, "create", "postgres", "--pgdata", n.pgdata, "--pgport", strconv.Itoa(n.port),
			"--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", n.name, "--pgctl", pgctl,
			"--monitor", f.monitorURL(), "--auth", "trust", "--no-ssl", "--run")
		f.waitStates(3*time.Minute, want)
	}
	return f
}

// monitorURL is where the nodes find the monitor.
func (f *formation) monitorURL() string {
	return fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.monitorPort)
}

// DatabaseURL names both nodes, the primary first, with target_session_attrs=read-write: a
// connection goes to whichever node takes writes.
func (f *formation) DatabaseURL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		f.nodes[0].port, f.nodes[1].port, db)
}

// command builds a pg_autoctl command run as the formation's user with its environment.
func (f *formation) command(args ...string) *exec.Cmd {
	cmd := exec.Command(f.autoctl, args...)
	cmd.Env = f.env
	cmd.Dir = f.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: f.cred}
	return cmd
}

// start runs a long-lived pg_autoctl in a process group of its own, its output in name.log.
func (f *formation) start(name string, args ...string) *service {
	f.t.Helper()
	log, err := os.OpenFile(filepath.Join(f.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer log.Close()
	cmd := f.command(args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that a kill takes the keeper and its postgres together; a test
	// process that dies takes pg_autoctl with it, which stops its postgres.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start pg_autoctl %s: %v", name, err)
	}
	s := &service{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	return s
}

// states asks the monitor for the nodes' states.
func (f *formation) states() ([]nodeState, error) {
	cmd := f.command("show", "state", "--pgdata", filepath.Join(f.dir, "monitor"), "--json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pg_autoctl show state: %v: %s", err, strings.TrimSpace(errOut.String()))
	}
	var s []nodeState
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		return nil, fmt.Errorf("pg_autoctl show state: %v: %s", err, out.Bytes())
	}
	return s, nil
}

// events is the monitor's last count events, as `pg_autoctl show events` prints them: what
// happened to the formation when.
func (f *formation) events(count int) string {
	cmd := f.command("show", "events", "--pgdata", filepath.Join(f.dir, "monitor"), "--count", strconv.Itoa(count))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("pg_autoctl show events: %v: %s", err, out)
	}
	return string(out)
}

// waitState polls the monitor until cond holds, failing the test after timeout.
func (f *formation) waitState(timeout time.Duration, what string, cond func([]nodeState) bool) []nodeState {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := f.states()
		if err == nil && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %s waiting for %s: states %+v, last error %v", timeout, what, s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitStates waits until each named node reports the given state and is assigned it too.
func (f *formation) waitStates(timeout time.Duration, want map[string]string) []nodeState {
	f.t.Helper()
	return f.waitState(timeout, fmt.Sprint("nodes in states ", want), func(s []nodeState) bool {
		settled := 0
		for _, n := range s {
			if w, ok := want[n.Name]; ok && n.Current == w && n.Assigned == w {
				settled++
			}
		}
		return settled == len(want)
	})
}

// waitSynchronous waits until the formation has settled with a primary and a secondary (each in
// the state the monitor assigned, both healthy) and the primary takes writes with the standby
// streaming to it as its synchronous standby: writes are safe from the loss of either node again.
func (f *formation) waitSynchronous(timeout time.Duration) {
	f.t.Helper()
	f.waitState(timeout, "a primary with its synchronous standby streaming", func(s []nodeState) bool {
		var primary *node
		secondaries := 0
		for _, n := range s {
			if n.Current != n.Assigned || n.Health != 1 {
				return false
			}
			switch n.Current {
			case "primary":
				primary = f.node(n.Name)
			case "secondary":
				secondaries++
			}
		}
		if primary == nil || secondaries != 1 {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write", primary.port))
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var streaming int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication
			WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')`).Scan(&streaming); err != nil {
			return false
		}
		return streaming == 1
	})
}

// primary is the node the monitor has as primary (or wait_primary, writable without a standby).
func (f *formation) primary() *node {
	f.t.Helper()
	s, err := f.states()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, st := range s {
		if st.Current == "primary" || st.Current == "wait_primary" {
			return f.node(st.Name)
		}
	}
	f.t.Fatalf("no primary in %+v", s)
	return nil
}

func (f *formation) node(name string) *node {
	for _, n := range f.nodes {
		if n.name == name {
			return n
		}
	}
	f.t.Fatalf("no node %s", name)
	return nil
}

// other is the node that is not n.
func (f *formation) other(n *node) *node {
	return f.nodes[1-slices.Index(f.nodes, n)]
}

// performFailover runs `pg_autoctl perform failover`, which waits for the switch to finish.
func (f *formation) performFailover() error {
	cmd := f.command("perform", "failover", "--pgdata", filepath.Join(f.dir, "monitor"), "--wait", "120")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_autoctl perform failover: %v: %s", err, out)
	}
	return nil
}

// kill takes the whole node down at once, keeper and postgres, with SIGKILL: the machine is gone.
func (f *formation) kill(n *node) {
	f.t.Helper()
	if err := syscall.Kill(-n.svc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		f.t.Fatalf("kill %s: %v", n.name, err)
	}
	<-n.svc.done
}

// postmasterPID reads the node's running postmaster from postmaster.pid.
func (n *node) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(n.pgdata, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// killPostgres kills the node's postmaster with SIGKILL and leaves its keeper running, which
// starts postgres again.
func (f *formation) killPostgres(n *node) {
	f.t.Helper()
	pid, err := n.postmasterPID()
	if err != nil {
		f.t.Fatalf("postmaster of %s: %v", n.name, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		f.t.Fatalf("kill postgres of %s: %v", n.name, err)
	}
}

// restart starts a killed node's keeper again (`pg_autoctl run`): it rejoins as a standby.
func (f *formation) restart(n *node) {
	f.t.Helper()
	n.svc = f.start(n.name, "run", "--pgdata", n.pgdata)
}

// stop stops every pg_autoctl (SIGTERM: each stops its postgres), then kills what is left of their
// process groups. On failure it shows the end of each one's log.
func (f *formation) stop() {
	services := []*service{}
	for _, n := range f.nodes {
		services = append(services, n.svc)
	}
	if f.monitor != nil {
		services = append(services, f.monitor)
	}
	for _, s := range services {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range services {
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			f.t.Errorf("pg_autoctl %s did not stop within 30 s of SIGTERM", s.name)
		}
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	if f.t.Failed() {
		for _, s := range services {
			b, _ := os.ReadFile(filepath.Join(f.dir, s.name+".log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			f.t.Logf("pg_autoctl %s, last lines of its log:\n%s", s.name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	}
}
