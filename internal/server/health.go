package server

import (
	"context"
	"sync"
	"time"

	"homelab/internal/app"
	"homelab/internal/catalog"
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
	results app.Live
	running chan struct{} // closed when the run in flight ends; nil if none
}

// check probes the services and reads their runtimes' states at once.
func (c *healthCache) check(ctx context.Context, l *lab.Lab) app.Live {
	var out app.Live
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c.states != nil {
			out.States = c.states(ctx, l)
		}
	}()
	out.Health = c.probe(ctx, l)
	<-done
	return out
}

// get returns fresh results for l, probing if need be. Only ctx's
// cancellation makes it return early (with ctx's error); a run it started
// is not cancelled with it, since other requests may be waiting for it.
// It is the app.Probe of the server's status reports.
func (c *healthCache) get(ctx context.Context, l *lab.Lab) (app.Live, error) {
	if len(l.Services) == 0 {
		return app.Live{}, nil // nothing to probe, no state to read
	}
	for {
		c.mu.Lock()
		if ch := c.running; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				continue // its results, if fresh enough; else a run of our own
			case <-ctx.Done():
				return app.Live{}, ctx.Err()
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

		// The run goes on without ctx: other requests may wait for it.
		var results app.Live
		go func() {
			results = c.check(context.WithoutCancel(ctx), l)
			c.mu.Lock()
			c.lab, c.at, c.results, c.running = l, time.Now(), results, nil
			c.mu.Unlock()
			close(ch)
		}()
		select {
		case <-ch:
			return results, nil
		case <-ctx.Done():
			return app.Live{}, ctx.Err()
		}
	}
}

// store is the catalog one request reads: pinned to one version
// (catalog.Pinner) when it is the cache, so that its reads (the report's,
// the charts') cost one PRAGMA rather than one per read, and agree.
func (s *Server) store(ctx context.Context) (catalog.Store, error) {
	if p, ok := s.o.Catalog.(catalog.Pinner); ok {
		return p.Pin(ctx)
	}
	return s.o.Catalog, nil
}

// report is the status report of l at now from store (Server.store),
// with the services' health from the cache and the certificates (read
// from disk for every request: a few small files): what `homelab status`
// shows (app.Report).
func (s *Server) report(ctx context.Context, store catalog.Store, l *lab.Lab, now time.Time) (status.Report, error) {
	rep, err := app.Report(ctx, l, store, now, s.health.get)
	if err == nil {
		s.withHost(&rep)
	}
	return rep, err
}
