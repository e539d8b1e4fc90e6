package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The CPU time the processes of a bench spend, read from /proc: what stands between a figure
// and its limit on a machine where everything shares the same cores.

// cpuMeter reads the CPU time one process of ours (a worker or a gateway; pid 0 for none), the
// bench database's PostgreSQL backends and the bench process (its clients, and the fakes it runs)
// have used.
type cpuMeter struct {
	p          *pgxpool.Pool
	pid        int
	bench      time.Duration
	processCPU time.Duration
	backends   map[int]time.Duration
}

// cpuSpent is CPU time used between startCPU and since.
type cpuSpent struct{ process, postgres, bench time.Duration }

func startCPU(tb testing.TB, p *pgxpool.Pool, pid int) *cpuMeter {
	m := &cpuMeter{p: p, pid: pid, bench: selfCPU(), processCPU: procCPU(pid), backends: map[int]time.Duration{}}
	for _, pid := range backendPIDs(tb, p) {
		m.backends[pid] = procCPU(pid)
	}
	return m
}

func (m *cpuMeter) since(tb testing.TB) cpuSpent {
	out := cpuSpent{process: procCPU(m.pid) - m.processCPU, bench: selfCPU() - m.bench}
	for _, pid := range backendPIDs(tb, m.p) {
		out.postgres += procCPU(pid) - m.backends[pid] // a backend started since counts from zero
	}
	return out
}

// cpuPerOp is CPU time per operation, in microseconds: of the process measured (the gateway, or
// none), the bench database's PostgreSQL backends, and the bench process (its clients).
type cpuPerOp struct{ process, postgres, bench float64 }

// per divides the time spent by n operations.
func (c cpuSpent) per(n int) cpuPerOp {
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return cpuPerOp{us(c.process), us(c.postgres), us(c.bench)}
}

// medianCPU prints the medians of CPU per operation, naming the measured process (none when name
// is empty), and the rate two cores would allow at that total.
func medianCPU(xs []cpuPerOp, name string) string {
	var proc, pg, bench []float64
	for _, x := range xs {
		proc, pg, bench = append(proc, x.process), append(pg, x.postgres), append(bench, x.bench)
	}
	total := median(pg) + median(bench)
	out := ""
	if name != "" {
		total += median(proc)
		out = fmt.Sprintf("%s %.0f µs, ", name, median(proc))
	}
	return out + fmt.Sprintf("PostgreSQL backends %.0f µs, bench clients %.0f µs (%.0f µs in all: at most %.0f a second on 2 cores)",
		median(pg), median(bench), total, 2e6/total)
}

// backendPIDs are the server processes connected to the bench database.
func backendPIDs(tb testing.TB, p *pgxpool.Pool) []int {
	rows, err := p.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			tb.Fatal(err)
		}
		out = append(out, pid)
	}
	return out
}

// procCPU is a process's user and system time (/proc/PID/stat, in clock ticks of 10 ms); zero
// for a process that is gone.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields start after its last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU is the bench process's user and system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// intakeCPU is CPU time per delivery, in microseconds.
type intakeCPU struct{ gateway, worker, postgres float64 }

// intakeMeter reads what the gateway, the worker and PostgreSQL spend during an intake run.
type intakeMeter struct {
	m       *cpuMeter
	gateway int
	start   time.Duration
}

func startIntakeCPU(tb testing.TB, p *pgxpool.Pool, s *stack) *intakeMeter {
	gw := s.gateway.cmd.Process.Pid
	return &intakeMeter{m: startCPU(tb, p, s.worker.cmd.Process.Pid), gateway: gw, start: procCPU(gw)}
}

// per is the CPU each of n deliveries cost, until now.
func (im *intakeMeter) per(tb testing.TB, n int) intakeCPU {
	spent := im.m.since(tb)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return intakeCPU{gateway: us(procCPU(im.gateway) - im.start), worker: us(spent.process), postgres: us(spent.postgres)}
}
