package daemon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder tracks how many tasks run at once, overall and per repository.
type recorder struct {
	mu              sync.Mutex
	running         map[string]int
	total, maxTotal int
	maxPerRepo      int
	order           []string
	release         chan struct{}
}

func newRecorder() *recorder {
	return &recorder{running: map[string]int{}, release: make(chan struct{})}
}

func (r *recorder) task(repo, key string) task {
	return task{key: key, repo: repo, run: func(ctx context.Context) {
		r.mu.Lock()
		r.running[repo]++
		r.total++
		r.maxTotal = max(r.maxTotal, r.total)
		r.maxPerRepo = max(r.maxPerRepo, r.running[repo])
		r.order = append(r.order, key)
		r.mu.Unlock()
		select {
		case <-r.release:
		case <-ctx.Done():
		}
		r.mu.Lock()
		r.running[repo]--
		r.total--
		r.mu.Unlock()
	}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestQueueOneAtATimePerRepository(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := newQueue(ctx, 2)
	r := newRecorder()
	for i := range 3 {
		for _, repo := range []string{"a", "b", "c"} {
			if !q.add(r.task(repo, fmt.Sprintf("%s%d", repo, i))) {
				t.Fatalf("add %s%d refused", repo, i)
			}
		}
	}
	for range 9 {
		waitFor(t, "a task to start", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.total > 0
		})
		r.release <- struct{}{}
	}
	if n := q.wait(ctx); n != 0 {
		t.Fatalf("%d tasks still running", n)
	}
	if r.maxPerRepo != 1 {
		t.Errorf("up to %d tasks ran at once on one repository, want 1", r.maxPerRepo)
	}
	if r.maxTotal != 2 {
		t.Errorf("up to %d tasks ran at once, want the limit 2", r.maxTotal)
	}
	var a []string
	for _, k := range r.order {
		if k[0] == 'a' {
			a = append(a, k)
		}
	}
	if fmt.Sprint(a) != "[a0 a1 a2]" {
		t.Errorf("repository a ran %v, want its tasks in order", a)
	}
}

func TestQueueCoalescesAJobAlreadyQueuedOrRunning(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := newQueue(ctx, 1)
	r := newRecorder()
	if !q.add(r.task("a", "backup:db")) {
		t.Fatal("first add refused")
	}
	waitFor(t, "the task to run", func() bool { return q.states()["backup:db"] == stateRunning })
	if q.add(r.task("a", "backup:db")) {
		t.Error("a running job was queued again")
	}
	if !q.add(r.task("a", "drill:db")) {
		t.Error("another job of the same repository was refused")
	}
	if q.add(r.task("a", "drill:db")) {
		t.Error("a queued job was queued again")
	}
	if got := q.states(); got["drill:db"] != stateQueued || !q.busy("drill:db") {
		t.Errorf("states = %v", got)
	}
	r.release <- struct{}{}
	r.release <- struct{}{}
	q.wait(ctx)
	if len(r.order) != 2 || q.busy("backup:db") {
		t.Errorf("ran %v, want one backup and one drill", r.order)
	}
}

func TestQueueCloseDropsQueuedAndCancelInterruptsRunning(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := newQueue(ctx, 1)
	r := newRecorder()
	var ran atomic.Int32
	q.add(r.task("a", "one"))
	q.add(task{key: "two", repo: "a", run: func(context.Context) { ran.Add(1) }})
	waitFor(t, "the first task to run", func() bool { return q.busy("one") && q.states()["one"] == stateRunning })
	q.close()
	if q.add(r.task("b", "three")) {
		t.Error("a closed queue accepted a task")
	}
	cancel() // interrupts "one"
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if n := q.wait(wctx); n != 0 {
		t.Fatalf("%d tasks still running after cancel", n)
	}
	if ran.Load() != 0 {
		t.Error("a task queued before close ran after it")
	}
	if len(q.states()) != 0 {
		t.Errorf("states after shutdown: %v", q.states())
	}
}

func TestQueueWaitReportsTasksThatOutlastIt(t *testing.T) {
	q := newQueue(context.Background(), 1)
	r := newRecorder()
	q.add(r.task("a", "stuck"))
	waitFor(t, "the task to run", func() bool { return q.states()["stuck"] == stateRunning })
	q.close()
	wctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if n := q.wait(wctx); n != 1 {
		t.Errorf("wait = %d, want 1 task still running", n)
	}
	r.release <- struct{}{}
}
