package daemon

import (
	"context"
	"sync"
)

// task is one job for the queue: run is called at most once.
type task struct {
	key  string // schedule key, e.g. "backup:db"; one of each at a time
	repo string // the repository it uses: tasks of one run in order
	run  func(ctx context.Context)
}

// Task states reported by queue.states.
const (
	stateQueued  = "queued"
	stateRunning = "running"
)

// queue runs tasks one at a time per repository, and at most limit at
// once overall. A task whose key is already queued or running is not
// added again (a slow job does not pile up copies of itself).
type queue struct {
	ctx   context.Context
	slots chan struct{}

	mu      sync.Mutex
	closed  bool
	pending map[string][]task // by repository, in order
	working map[string]bool   // repositories with a worker
	state   map[string]string // key -> queued/running
	wg      sync.WaitGroup
}

// newQueue returns a queue whose tasks run under ctx; cancelling ctx
// interrupts running tasks, and tasks still queued are dropped.
func newQueue(ctx context.Context, limit int) *queue {
	return &queue{ctx: ctx, slots: make(chan struct{}, max(1, limit)),
		pending: map[string][]task{}, working: map[string]bool{}, state: map[string]string{}}
}

// add queues t; false if the queue is closed or t's key is queued or
// running already.
func (q *queue) add(t task) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.state[t.key] != "" {
		return false
	}
	q.state[t.key] = stateQueued
	q.pending[t.repo] = append(q.pending[t.repo], t)
	if !q.working[t.repo] {
		q.working[t.repo] = true
		q.wg.Add(1)
		go q.work(t.repo)
	}
	return true
}

// work runs repo's tasks in order until none is left.
func (q *queue) work(repo string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(q.pending[repo]) == 0 || q.closed {
			for _, t := range q.pending[repo] {
				delete(q.state, t.key)
			}
			delete(q.pending, repo)
			delete(q.working, repo)
			q.mu.Unlock()
			return
		}
		t := q.pending[repo][0]
		q.pending[repo] = q.pending[repo][1:]
		q.mu.Unlock()

		select {
		case q.slots <- struct{}{}:
		case <-q.ctx.Done():
			q.mu.Lock()
			delete(q.state, t.key)
			q.mu.Unlock()
			continue
		}
		q.mu.Lock()
		q.state[t.key] = stateRunning
		q.mu.Unlock()
		t.run(q.ctx)
		<-q.slots
		q.mu.Lock()
		delete(q.state, t.key)
		q.mu.Unlock()
	}
}

// states returns each queued or running task's key and state.
func (q *queue) states() map[string]string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]string, len(q.state))
	for k, v := range q.state {
		out[k] = v
	}
	return out
}

// busy reports whether key is queued or running.
func (q *queue) busy(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.state[key] != ""
}

// close stops accepting tasks and drops the queued ones; running tasks
// go on (cancel the queue's context to interrupt them).
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// wait waits for every worker to finish, or for ctx; it returns the
// number of tasks still running when ctx ended first.
func (q *queue) wait(ctx context.Context) int {
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return 0
	case <-ctx.Done():
		n := 0
		for _, s := range q.states() {
			if s == stateRunning {
				n++
			}
		}
		return n
	}
}
