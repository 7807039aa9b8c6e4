package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"homelab/internal/certs"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/status"
)

// DefaultHealthTTL is how long the services' probe results are reused
// when Options.HealthTTL is zero.
const DefaultHealthTTL = 5 * time.Second

// healthCache runs the lab's health probes for the page and the API: at
// most one run at a time, shared by every request that arrives while it
// runs, and its results reused for ttl. However many browsers, phones and
// scripts poll the daemon, the services see one round of probes per ttl,
// and a page load waits at most for the slowest probe's timeout.
//
// Freshness is measured on the real monotonic clock, not Options.Now: the
// probes run in real time whatever clock the page shows.
type healthCache struct {
	probe  func(context.Context, *lab.Lab) []health.Result
	states func(context.Context, *lab.Lab) []runtime.Result
	ttl    time.Duration // <= 0: probe for every request

	mu      sync.Mutex
	lab     *lab.Lab // the lab the results are for (a reload makes a new one)
	at      time.Time
	results live
	running chan struct{} // closed when the run in flight ends; nil if none
}

// live is one round of the services' probes and runtime states.
type live struct {
	health []health.Result
	states []runtime.Result
}

// check probes the services and reads their runtimes' states at once.
func (c *healthCache) check(ctx context.Context, l *lab.Lab) live {
	var out live
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c.states != nil {
			out.states = c.states(ctx, l)
		}
	}()
	out.health = c.probe(ctx, l)
	<-done
	return out
}

// get returns fresh results for l, probing if need be. Only ctx's
// cancellation makes it return early (with ctx's error); a run it started
// is not cancelled with it, since other requests may be waiting for it.
func (c *healthCache) get(ctx context.Context, l *lab.Lab) (live, error) {
	for {
		c.mu.Lock()
		if ch := c.running; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				continue // its results, if fresh enough; else a run of our own
			case <-ctx.Done():
				return live{}, ctx.Err()
			}
		}
		if c.lab == l && c.ttl > 0 && time.Since(c.at) < c.ttl {
			r := c.results
			c.mu.Unlock()
			return r, nil
		}
		ch := make(chan struct{})
		c.running = ch
		c.mu.Unlock()

		results := c.check(context.WithoutCancel(ctx), l)

		c.mu.Lock()
		c.lab, c.at, c.results, c.running = l, time.Now(), results, nil
		c.mu.Unlock()
		close(ch)
		return results, nil
	}
}

// checkAll is the default Options.Health: every service's probe, with
// homelab's own environment.
func checkAll(ctx context.Context, l *lab.Lab) []health.Result {
	return health.CheckAll(ctx, l.Services, health.Options{})
}

// statusAll is the default Options.States: every runtime's state, with
// the tools in PATH.
func statusAll(ctx context.Context, l *lab.Lab) []runtime.Result {
	return runtime.StatusAll(ctx, l.Services, runtime.Options{}, 0)
}

// report is the status report of l at now, with the services' health and
// the certificates (read from disk for every request: a few small files):
// what `homelab status` shows. The probes run while the catalog and the
// certificates are read.
func (s *Server) report(ctx context.Context, l *lab.Lab, now time.Time) (status.Report, error) {
	type probed struct {
		results live
		err     error
	}
	ch := make(chan probed, 1)
	go func() {
		r, err := s.health.get(ctx, l)
		ch <- probed{r, err}
	}()
	rep, err := status.Build(ctx, l, s.o.Catalog, now)
	if err != nil {
		return status.Report{}, err // the probes finish on their own
	}
	certRep, err := certs.Status(l, now)
	if err != nil {
		return status.Report{}, err
	}
	p := <-ch
	if p.err != nil {
		return status.Report{}, fmt.Errorf("health probes: %w", p.err)
	}
	rep.AddServices(l, p.results.health)
	rep.AddStates(p.results.states)
	rep.AddCerts(certRep)
	return rep, nil
}
