package apptest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/worker"
)

// env is the package's Redis database, which all its harnesses share; each harness has a
// database of its own unless it is given one (Options.Database).
var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

// TestHarnessesTakeOnlyTheirOwnTasks: two harnesses share a database and the package's Redis
// database, yet the worker of one never takes a task the other queued. Harness a runs no
// worker; its import is queued first, b's import second, both on the bulk queue. Each harness
// names its queues apart, so b's worker runs b's import to the end and drains b's queues while
// a's task still waits in a's queue. With one prefix for both (the control case, as every
// harness had before), the queue is one and b's worker, which serves it first in first out, runs
// a's import too.
func TestHarnessesTakeOnlyTheirOwnTasks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// shared, when set, is the QUEUE_PREFIX both harnesses get instead of one each.
		shared string
	}{
		{name: "a prefix each"},
		{name: "one prefix for both", shared: "shared-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := func(worker bool, database string) apptest.Options {
				o := apptest.Options{Worker: worker, Database: database}
				if tc.shared != "" {
					o.Configure = func(c *config.Config) { c.QueuePrefix = tc.shared }
				}
				return o
			}
			a := apptest.Start(t, env, opts(false, ""))
			b := apptest.Start(t, env, opts(true, a.DatabaseURL))
			ma := a.NewMerchant(t, "Harness A")
			listA := a.CreateList(t, ma, map[string]any{"name": "A"})
			importA := upload(t, a, ma, listA, "A1\nA2\n")
			mb := b.NewMerchant(t, "Harness B")
			listB := b.CreateList(t, mb, map[string]any{"name": "B"})
			importB := upload(t, b, mb, listB, "B1\nB2\n")

			if tc.shared != "" {
				// The control: b's worker takes a's task, the older one on the queue they share.
				apptest.Eventually(t, time.Minute, "b's worker to run a's import", func() bool {
					return importStatus(t, a, ma, listA, importA) == "succeeded"
				})
				return
			}
			apptest.Eventually(t, time.Minute, "b's worker to run b's import", func() bool {
				return importStatus(t, b, mb, listB, importB) == "succeeded"
			})
			b.Drain(t, time.Minute)
			inspector := asynq.NewInspector(a.App.RedisOpt)
			defer inspector.Close()
			info, err := inspector.GetTaskInfo(a.App.Queue.Name(worker.QueueBulk), "import:"+importA)
			if err != nil || info.State != asynq.TaskStatePending {
				t.Fatalf("a's import task after b's worker drained its queues: %+v, %v; want it pending in %s", info, err, a.App.Queue.Name(worker.QueueBulk))
			}
			if s := importStatus(t, a, ma, listA, importA); s != "queued" {
				t.Fatalf("a's import is %s, want queued: no worker of a's ran it", s)
			}
			if a.App.Queue.Name(worker.QueueBulk) == b.App.Queue.Name(worker.QueueBulk) {
				t.Fatalf("both harnesses name their bulk queue %s", a.App.Queue.Name(worker.QueueBulk))
			}
		})
	}
}

// TestQueueStatsReadOnlyTheirPrefix: a harness's queue statistics (what Drain waits on and the
// worker's metrics show) list and read its own queues, named without its prefix, and none of
// another harness's, though both queued on the same Redis database.
func TestQueueStatsReadOnlyTheirPrefix(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, env, apptest.Options{})
	b := apptest.Start(t, env, apptest.Options{})
	ma, mb := a.NewMerchant(t, "Stats A"), b.NewMerchant(t, "Stats B")
	upload(t, a, ma, a.CreateList(t, ma, map[string]any{"name": "A"}), "A1\n")
	upload(t, a, ma, a.CreateList(t, ma, map[string]any{"name": "A2"}), "A2\n")
	upload(t, b, mb, b.CreateList(t, mb, map[string]any{"name": "B"}), "B1\n")
	for _, tc := range []struct {
		name        string
		h           *apptest.Harness
		wantPending int
	}{{"a", a, 2}, {"b", b, 1}} {
		stats := tc.h.App.Queue.Stats()
		names, err := stats.Queues()
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 1 || names[0] != worker.QueueBulk {
			t.Errorf("%s's queues: %v, want [%s]", tc.name, names, worker.QueueBulk)
		}
		info, err := stats.GetQueueInfo(worker.QueueBulk)
		if err != nil {
			t.Fatal(err)
		}
		if info.Queue != worker.QueueBulk || info.Pending != tc.wantPending {
			t.Errorf("%s's bulk queue: %s with %d pending, want %s with %d", tc.name, info.Queue, info.Pending, worker.QueueBulk, tc.wantPending)
		}
	}
}

// TestHarnessesHaveADatabaseEach: a merchant made on one harness is unknown to another, whose
// worker therefore never sweeps its work, unless that harness was started on the same database.
func TestHarnessesHaveADatabaseEach(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, env, apptest.Options{})
	b := apptest.Start(t, env, apptest.Options{})
	c := apptest.Start(t, env, apptest.Options{Database: a.DatabaseURL})
	m := a.NewMerchant(t, "Own Database")
	for _, tc := range []struct {
		name string
		h    *apptest.Harness
		want int
	}{{"a, where it was made", a, http.StatusOK}, {"b, on a database of its own", b, http.StatusUnauthorized}, {"c, on a's database", c, http.StatusOK}} {
		if r := tc.h.Admin(t, m, http.MethodGet, "/api/v1/lists", nil); r.Status != tc.want {
			t.Errorf("%s answers the merchant's key with %d, want %d", tc.name, r.Status, tc.want)
		}
	}
	if a.DatabaseURL == b.DatabaseURL || a.DatabaseURL != c.DatabaseURL {
		t.Errorf("databases: a %s, b %s, c %s", a.DatabaseURL, b.DatabaseURL, c.DatabaseURL)
	}
}

// upload queues an import of content (one code a line) into the list and returns its id.
func upload(t *testing.T, h *apptest.Harness, m apptest.Merchant, listID, content string) string {
	t.Helper()
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + listID + "/imports",
		Body: strings.NewReader(content), ContentType: "text/plain", APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	return r.Map(t)["id"].(string)
}

// importStatus is the import's status as the API reports it.
func importStatus(t *testing.T, h *apptest.Harness, m apptest.Merchant, listID, importID string) string {
	t.Helper()
	r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+listID+"/imports/"+importID, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("get import: %d %s", r.Status, r.Body)
	}
	return r.Map(t)["status"].(string)
}
