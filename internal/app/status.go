package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/deploy"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/status"
)

// Live is one round of the services' health probes and their runtimes'
// states.
type Live struct {
	Health []health.Result
	States []runtime.Result
}

// Probe returns the live state of l's services. It should return soon
// after ctx ends (with ctx's error, or whatever it has). The daemon's
// server passes one that shares and caches rounds between requests.
type Probe func(ctx context.Context, l *lab.Lab) (Live, error)

// CheckHealth runs every service's health probe at once, each within its
// timeout, with homelab's own environment (health.CheckAll).
func CheckHealth(ctx context.Context, l *lab.Lab) []health.Result {
	return health.CheckAll(ctx, l.Services, health.Options{})
}

// ReadStates reads every service's runtime state at once, with the
// runtimes' tools in PATH (runtime.StatusAll).
func ReadStates(ctx context.Context, l *lab.Lab) []runtime.Result {
	return runtime.StatusAll(ctx, l.Services, runtime.Options{}, 0)
}

// ProbeAll is the Probe of `homelab status`: CheckHealth and ReadStates,
// run at the same time. It never fails.
func ProbeAll(ctx context.Context, l *lab.Lab) (Live, error) {
	var out Live
	done := make(chan struct{})
	go func() {
		defer close(done)
		out.States = ReadStates(ctx, l)
	}()
	out.Health = CheckHealth(ctx, l)
	<-done
	return out, nil
}

// Report is the status report of l at now, as `homelab status`, the
// status page and /api/v1/status show it: the catalog's account of the
// targets, runs, drills and unfinished sagas (status.Build over store),
// the services' health and runtime states from probe, and the
// certificates (certs.Status). probe runs while the catalog and the
// certificates are read, so a report takes about as long as the slowest
// probe. On an error, probe's context is cancelled and Report returns
// once probe has: nothing it started outlives it.
func Report(ctx context.Context, l *lab.Lab, store catalog.Store, now time.Time, probe Probe) (status.Report, error) {
	type probed struct {
		live Live
		err  error
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan probed, 1)
	run := func() {
		lv, err := probe(pctx, l)
		ch <- probed{lv, err}
	}
	if len(l.Services) == 0 {
		run() // nothing to probe: not worth a goroutine (the daemon's page does this at every scrape)
	} else {
		go run()
	}
	fail := func(err error) (status.Report, error) {
		cancel()
		<-ch
		return status.Report{}, err
	}
	rep, err := status.Build(ctx, l, store, now)
	if err != nil {
		return fail(err)
	}
	certRep, err := certs.Status(l, now)
	if err != nil {
		return fail(err)
	}
	p := <-ch
	if p.err != nil {
		return status.Report{}, fmt.Errorf("health probes: %w", p.err)
	}
	rep.AddServices(l, p.live.Health)
	rep.AddStates(p.live.States)
	rep.AddCerts(certRep)
	rep.AddKeptClusters(l)
	if d := deploysOf(store); d != nil {
		rep.AddDeploys(deploy.Statuses(ctx, l, d))
	}
	return rep, nil
}

// Status opens the catalog and returns the lab's status report at the
// App's clock's now, probing the services with ProbeAll (see Report),
// with the host as SampleHost reads it, the Alertmanager's alerts
// (ReadAlerts) and the pgbackrest targets' recoverable windows
// (ReadWindows).
func (a *App) Status(ctx context.Context) (status.Report, time.Time, error) {
	store, err := a.OpenCatalog(ctx)
	if err != nil {
		return status.Report{}, time.Time{}, err
	}
	defer store.Close()
	now := a.now()
	// The host (docker stats takes a second or two) and the Alertmanager
	// are read while the report is built.
	var (
		h      *status.HostStatus
		alerts *status.AlertsStatus
		wg     sync.WaitGroup
	)
	wg.Go(func() { h = hostOf(ctx, a.Lab, store, now) })
	wg.Go(func() { alerts = alertsOf(ctx, a.Lab, store, now) })
	var windows map[string]status.Window
	wg.Go(func() { windows = ReadWindows(ctx, a.Lab, a.now) })
	rep, err := Report(ctx, a.Lab, store, now, ProbeAll)
	wg.Wait()
	if err == nil {
		rep.AddHost(h)
		rep.AddAlerts(alerts)
		rep.AddWindows(windows)
	}
	return rep, now, err
}
