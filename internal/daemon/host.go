package daemon

import (
	"context"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/status"
)

// SampleHostFunc reads the host at now, with the samples of store (nil
// when the catalog keeps none) for the forecast, and returns its status
// and the samples to record (app.SampleHost).
type SampleHostFunc func(ctx context.Context, l *lab.Lab, store catalog.Samples, now time.Time) (status.HostStatus, []catalog.Sample)

// compactEvery is how often the sampler bounds the catalog's samples
// (catalog.Samples.CompactSamples).
const compactEvery = time.Hour

// Host returns the host status of the newest sampling round, or nil
// before the first (or without Config.SampleHost). The status page reads
// it instead of reading /proc and the catalog's samples per request.
func (d *Daemon) Host() *status.HostStatus { return d.host.Load() }

// SampleHost runs one sampling round: it reads the host
// (Config.SampleHost), records the filesystems' samples in the catalog
// (when it keeps them; compacted at most hourly), keeps the status for
// Host, and for each filesystem newly forecast to fill within
// hosts.warn_days sends one disk_filling notification and records a
// warning event. A filesystem whose forecast clears may be notified
// again when it fills again.
func (d *Daemon) SampleHost(ctx context.Context) {
	if d.cfg.SampleHost == nil {
		return
	}
	st := d.state.Load()
	now := d.cfg.Now()
	store, _ := d.cfg.Catalog.(catalog.Samples)
	h, ss := d.cfg.SampleHost(ctx, st.lab, store, now)
	if store != nil && len(ss) > 0 {
		if err := store.AddSamples(ctx, ss); err != nil {
			d.log.Warn("record host samples", "err", err)
		}
		if now.Sub(d.compacted) >= compactEvery {
			if err := store.CompactSamples(ctx, now); err != nil {
				d.log.Warn("compact host samples", "err", err)
			} else {
				d.compacted = now
			}
		}
	}
	d.host.Store(&h)
	filling := map[string]bool{}
	for _, f := range h.Filling() {
		filling[f.Mount] = true
		if d.fillSent[f.Mount] {
			continue
		}
		d.fillSent[f.Mount] = true
		detail := status.FillDetail(f)
		st.notifier.Notify(notify.Event{Kind: notify.DiskFilling, Lab: st.lab.Name, Target: f.Mount, Job: "disk", Time: now, Detail: detail})
		d.log.Warn("filesystem filling", "mount", f.Mount, "detail", detail)
		d.event(ctx, "warn", "", notify.DiskFilling, "filesystem "+detail)
	}
	for m := range d.fillSent {
		if !filling[m] {
			delete(d.fillSent, m)
		}
	}
	if k, ok := st.notifier.(AlertKeeper); ok {
		k.Keep(notify.DiskFilling, fillingEvents(st, &h, now))
	}
}

// fillingEvents are the disk_filling events of h's filesystems that are
// forecast to fill.
func fillingEvents(st *labState, h *status.HostStatus, now time.Time) []notify.Event {
	var out []notify.Event
	for _, f := range h.Filling() {
		out = append(out, notify.Event{Kind: notify.DiskFilling, Lab: st.lab.Name, Target: f.Mount, Job: "disk", Time: now, Detail: status.FillDetail(f)})
	}
	return out
}
