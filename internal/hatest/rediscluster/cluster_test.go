//go:build ha

package rediscluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster the test started: redis-server processes in a t.TempDir(), joined by
// redis-cli --cluster create. Everything is killed when the test ends.
type Cluster struct {
	t     testing.TB
	dir   string
	mu    sync.Mutex
	nodes []*Node
}

// Node is one redis-server of the cluster.
type Node struct {
	Port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string
}

// Addr is the node's host:port.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// Alive says whether the process still runs.
func (n *Node) Alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// client is a plain (non-cluster) connection to the node, for CLUSTER and INFO commands.
func (n *Node) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		MaxRetries: -1, Protocol: 2})
}

// requireBinaries skips the test when redis-server or redis-cli is missing, or fails it when the
// environment variable CI is set (CI must install Debian's redis-server package).
func requireBinaries(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := fmt.Sprintf("%s is not installed (Debian: apt-get install -y redis-server, which ships redis-cli too); the Redis Cluster tests need it", bin)
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// StartCluster starts masters masters with replicas replicas each, joins them into one cluster
// and waits until every node says cluster_state:ok, every master holds its slots and every
// replica's link to its master is up.
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	requireBinaries(t)
	c := &Cluster{t: t, dir: t.TempDir()}
	t.Cleanup(c.stop)
	ports := freePorts(t, masters*(1+replicas))
	for _, p := range ports {
		c.nodes = append(c.nodes, c.startNode(p))
	}
	for _, n := range c.nodes {
		c.waitPing(n, 20*time.Second)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(60 * time.Second)
	return c
}

// startNode starts one redis-server with cluster support on port.
func (c *Cluster) startNode(port int) *Node {
	c.t.Helper()
	log := filepath.Join(c.dir, fmt.Sprintf("redis-%d.log", port))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(c.dir, fmt.Sprintf("nodes-%d.conf", port)),
		"--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", c.dir, "--logfile", log)
	cmd.Dir = c.dir
	// Its own process group, so a signal meant for the test run does not reach it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start redis-server on %d: %v", port, err)
	}
	n := &Node{Port: port, cmd: cmd, done: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		close(n.done)
	}()
	return n
}

// waitPing waits until the node answers PING.
func (c *Cluster) waitPing(n *Node, timeout time.Duration) {
	c.t.Helper()
	rc := n.client()
	defer rc.Close()
	deadline := time.Now().Add(timeout)
	for {
		err := rc.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if !n.Alive() || time.Now().After(deadline) {
			c.t.Fatalf("redis-server on %d does not answer PING (%v); its log:\n%s", n.Port, err, readFile(n.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addrs are the addresses of the nodes still running, for REDIS_CLUSTER_ADDRS.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		if n.Alive() {
			out = append(out, n.Addr())
		}
	}
	return out
}

// state is what the cluster looks like from one node.
type state struct {
	ok      bool              // cluster_state:ok and all 16384 slots ok
	masters map[string]string // node id → addr of masters that hold slots and are not failed
	replica map[string]string // replica addr → its master's id
	slots   map[string][][2]int
}

// nodeState reads CLUSTER INFO and CLUSTER NODES from n.
func nodeState(ctx context.Context, n *Node) (state, error) {
	rc := n.client()
	defer rc.Close()
	info, err := rc.ClusterInfo(ctx).Result()
	if err != nil {
		return state{}, err
	}
	st := state{ok: strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384"),
		masters: map[string]string{}, replica: map[string]string{}, slots: map[string][][2]int{}}
	nodes, err := rc.ClusterNodes(ctx).Result()
	if err != nil {
		return state{}, err
	}
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		id, addr, flags := f[0], strings.SplitN(f[1], "@", 2)[0], f[2]
		switch {
		case strings.Contains(flags, "fail") && !strings.Contains(flags, "fail?"):
			continue
		case strings.Contains(flags, "master") && len(f) > 8:
			st.masters[id] = addr
			for _, r := range f[8:] {
				if strings.HasPrefix(r, "[") {
					continue // a slot being migrated
				}
				lo, hi, _ := strings.Cut(r, "-")
				a, _ := strconv.Atoi(lo)
				b := a
				if hi != "" {
					b, _ = strconv.Atoi(hi)
				}
				st.slots[id] = append(st.slots[id], [2]int{a, b})
			}
		case strings.Contains(flags, "slave"):
			st.replica[addr] = f[3]
		}
	}
	return st, nil
}

// WaitHealthy waits until every running node says cluster_state:ok with all slots served, and
// every running replica's link to its master is up.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		last = c.unhealthy()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the cluster is not healthy after %s: %s", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitServed waits until every running node says cluster_state:ok and that all 16384 slots are
// held by masters that are running (after a master was killed: that its replica took over), and
// returns when that was.
func (c *Cluster) WaitServed(timeout time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if c.served() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the cluster's slots are not all served by running masters after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// served says whether every running node sees all slots held by running masters.
func (c *Cluster) served() bool {
	for _, n := range c.running() {
		st, err := nodeState(context.Background(), n)
		if err != nil || !st.ok {
			return false
		}
		slots := 0
		for id, rs := range st.slots {
			if c.node(st.masters[id]) == nil {
				return false
			}
			for _, r := range rs {
				slots += r[1] - r[0] + 1
			}
		}
		if slots != 16384 {
			return false
		}
	}
	return true
}

// unhealthy says what is still wrong with the cluster ("" when nothing is).
func (c *Cluster) unhealthy() string {
	ctx := context.Background()
	for _, n := range c.running() {
		st, err := nodeState(ctx, n)
		if err != nil {
			return fmt.Sprintf("node %d: %v", n.Port, err)
		}
		if !st.ok {
			return fmt.Sprintf("node %d: cluster_state not ok", n.Port)
		}
		rc := n.client()
		repl, err := rc.Info(ctx, "replication").Result()
		rc.Close()
		if err != nil {
			return fmt.Sprintf("node %d: %v", n.Port, err)
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Sprintf("node %d: replica link not up", n.Port)
		}
	}
	return ""
}

// running are the nodes whose process still runs.
func (c *Cluster) running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, n := range c.nodes {
		if n.Alive() {
			out = append(out, n)
		}
	}
	return out
}

// node is the running node listening on addr.
func (c *Cluster) node(addr string) *Node {
	for _, n := range c.running() {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Slot is the hash slot of key, as the cluster computes it (CLUSTER KEYSLOT).
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	rc := c.running()[0].client()
	defer rc.Close()
	slot, err := rc.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		c.t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
	}
	return int(slot)
}

// MasterOf is the master that serves key's slot now, and its replica.
func (c *Cluster) MasterOf(key string) (master, replica *Node) {
	c.t.Helper()
	slot := c.Slot(key)
	st, err := nodeState(context.Background(), c.running()[0])
	if err != nil {
		c.t.Fatal(err)
	}
	for id, ranges := range st.slots {
		for _, r := range ranges {
			if slot >= r[0] && slot <= r[1] {
				master = c.node(st.masters[id])
				for raddr, of := range st.replica {
					if of == id {
						replica = c.node(raddr)
					}
				}
				if master == nil || replica == nil {
					c.t.Fatalf("slot %d: master %s, replica %v: not both running", slot, st.masters[id], replica)
				}
				return master, replica
			}
		}
	}
	c.t.Fatalf("no master serves slot %d", slot)
	return nil, nil
}

// Role is "master" or "slave" as the node says of itself (ROLE), or the error's text.
func (n *Node) Role() string {
	rc := n.client()
	defer rc.Close()
	v, err := rc.Do(context.Background(), "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return fmt.Sprint(err)
	}
	return fmt.Sprint(v[0])
}

// Kill ends the node with SIGKILL, as a crashed machine would, and waits until it has exited.
func (c *Cluster) Kill(n *Node) {
	c.t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		c.t.Fatalf("kill redis-server on %d: %v", n.Port, err)
	}
	<-n.done
}

// stop kills every node still running.
func (c *Cluster) stop() {
	for _, n := range c.running() {
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// freePorts finds n ports that are free on 127.0.0.1 together with their cluster bus port
// (port+10000).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		if p+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, l, bus)
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("found %d free port pairs, want %d", len(ports), n)
	}
	return ports
}

// readFile is a file's text, or the error reading it.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(bytes.TrimSpace(b))
}

// TestClusterHelper starts the cluster, checks its shape (three masters holding all slots, a
// replica of each), kills the master of a key and checks that its replica serves the key after.
func TestClusterHelper(t *testing.T) {
	c := StartCluster(t, 3, 1)
	st, err := nodeState(context.Background(), c.running()[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(st.masters) != 3 || len(st.replica) != 3 {
		t.Fatalf("%d masters and %d replicas, want 3 and 3", len(st.masters), len(st.replica))
	}
	slots := 0
	for _, rs := range st.slots {
		for _, r := range rs {
			slots += r[1] - r[0] + 1
		}
	}
	if slots != 16384 {
		t.Fatalf("the masters hold %d slots, want 16384", slots)
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rc.Close()
	ctx := context.Background()
	master, replica := c.MasterOf("helper:{probe}")
	// Written on the master and WAITed for on the same connection, so it is on the replica
	// before its master goes.
	mc := master.client()
	conn := mc.Conn()
	if err := conn.Set(ctx, "helper:{probe}", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d replicas acknowledged, %v", n, err)
	}
	conn.Close()
	mc.Close()
	killed := time.Now()
	c.Kill(master)
	c.WaitServed(30 * time.Second)
	if role := replica.Role(); role != "master" {
		t.Fatalf("the replica on %d is %q after its master was killed, want master", replica.Port, role)
	}
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; {
		got, err = rc.Get(ctx, "helper:{probe}").Result()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || got != "before" {
		t.Fatalf("after the failover the key reads %q, %v; want %q", got, err, "before")
	}
	t.Logf("master on %d killed; its replica on %d served the key again after %s", master.Port, replica.Port, time.Since(killed).Round(time.Millisecond))
}
