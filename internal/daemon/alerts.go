package daemon

import (
	"context"
	"slices"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/status"
)

// ReadAlertsFunc reads the lab's Alertmanager at now, with the newest
// catalog events for the resolved ones (app.ReadAlerts); nil when the
// lab names none.
type ReadAlertsFunc func(ctx context.Context, l *lab.Lab, events []catalog.Event, now time.Time) *status.AlertsStatus

// DefaultAlertsInterval is how often the daemon asks the Alertmanager
// when Config.AlertsInterval is zero.
const DefaultAlertsInterval = 30 * time.Second

// Alerts returns what the newest poll of the Alertmanager saw, or nil
// (no Alertmanager, or no poll yet). The status page reads it instead
// of asking the Alertmanager per request.
func (d *Daemon) Alerts() *status.AlertsStatus { return d.alerts.Load() }

// PollAlerts asks the Alertmanager once (Config.ReadAlerts). An alert
// seen active (firing, silenced or inhibited) by an earlier poll and
// active no more is recorded as a status.EventAlertResolved event: the
// daemon's own record, which is where status takes the last 24 hours'
// resolved alerts from. An alert silenced or inhibited is not resolved:
// it is recorded only once it is gone from both lists. A poll the
// Alertmanager did not answer changes no record. A lab that names no
// Alertmanager (alerts.alertmanager) is not polled: the catalog's events
// are not read, so an idle daemon's poll costs nothing.
func (d *Daemon) PollAlerts(ctx context.Context) {
	if d.cfg.ReadAlerts == nil {
		return
	}
	st := d.state.Load()
	if st.lab.Alerts.Alertmanager == nil {
		d.seen = nil
		d.alerts.Store(nil)
		return
	}
	now := d.cfg.Now()
	events, err := d.cfg.Catalog.Events(ctx, 500)
	if err != nil {
		d.log.Warn("read events for resolved alerts", "err", err)
	}
	a := d.cfg.ReadAlerts(ctx, st.lab, events, now)
	if a == nil {
		d.seen = nil
		d.alerts.Store(nil)
		return
	}
	if a.Error == "" {
		active := map[string]status.Alert{}
		for _, x := range slices.Concat(a.Firing, a.Silenced) {
			active[x.Fingerprint] = x
		}
		for fp, x := range d.seen {
			if _, still := active[fp]; still {
				continue
			}
			x.Resolved = now
			d.event(ctx, "info", x.Name, status.EventAlertResolved, status.ResolvedMessage(x))
			a.Resolved = append([]status.Alert{x}, a.Resolved...)
		}
		d.seen = active
	}
	d.alerts.Store(a)
}

// every runs f now and then every interval() until ctx ends.
func every(ctx context.Context, interval func() time.Duration, f func(context.Context)) {
	for {
		f(ctx)
		timer := time.NewTimer(interval())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
