package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"homelab/internal/alertmanager"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/status"
)

// AlertClient is the client of l's Alertmanager, its token read
// (token_env or token_file); nil without one. An error names the field
// whose secret is unset, never its value.
func AlertClient(l *lab.Lab) (*alertmanager.Client, error) {
	am := l.Alerts.Alertmanager
	if am == nil {
		return nil, nil
	}
	var token string
	if s := am.TokenSecret(); s.IsSet() {
		v, err := s.Resolve()
		if err != nil {
			return nil, fmt.Errorf("alerts.alertmanager: %w", err)
		}
		token = v
	}
	return alertmanager.New(am.URL, token, am.CAFile)
}

// ReadAlerts asks l's Alertmanager for the alerts firing now and takes
// those resolved in the last 24 h from events (the daemon's
// status.EventAlertResolved records, newest first). nil when the lab
// names no Alertmanager. An Alertmanager that does not answer is the
// status's Error (a warning), never an error.
func ReadAlerts(ctx context.Context, l *lab.Lab, events []catalog.Event, now time.Time) *status.AlertsStatus {
	am := l.Alerts.Alertmanager
	if am == nil {
		return nil
	}
	a := &status.AlertsStatus{URL: am.URL, Resolved: status.ResolvedFrom(events, now)}
	c, err := AlertClient(l)
	if err == nil {
		var firing []alertmanager.Alert
		if firing, err = c.Firing(ctx); err == nil {
			for _, x := range firing {
				a.Firing = append(a.Firing, status.Alert{Fingerprint: x.Fingerprint, Name: x.Name(), Severity: x.Severity(),
					Summary: x.Summary(), Since: x.StartsAt})
			}
		}
	}
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// alertsOf is ReadAlerts for `homelab status`, with the newest events
// of store.
func alertsOf(ctx context.Context, l *lab.Lab, store catalog.Store, now time.Time) *status.AlertsStatus {
	if l.Alerts.Alertmanager == nil {
		return nil
	}
	events, err := store.Events(ctx, 500)
	a := ReadAlerts(ctx, l, events, now)
	if err != nil && a.Error == "" {
		a.Error = "resolved alerts not read: " + err.Error()
	}
	return a
}

// pushedKinds are the event kinds pushed to Alertmanager, with the
// severity label they get.
var pushedKinds = map[string]string{
	notify.BackupFailed: "critical", notify.DrillFailed: "critical", notify.CheckFailed: "critical",
	notify.PruneFailed: "warning", notify.UpgradeFailed: "critical", notify.Overdue: "warning", notify.DiskFilling: "warning",
}

// AlertOf is the Alertmanager alert of a homelab event, and true, for
// the pushed kinds (alertname homelab_<kind>; labels lab, target and
// severity; annotations summary and description). A recovered event
// resolves the failure alert of its job (EndsAt = its time). A firing
// alert is posted once, without EndsAt: Alertmanager resolves it by
// itself after its resolve_timeout (default 5 minutes) unless a recovery
// came first. Other kinds give false.
func AlertOf(e notify.Event) (alertmanager.PostableAlert, bool) {
	kind, sev := e.Kind, pushedKinds[e.Kind]
	if e.Kind == notify.Recovered {
		kind = e.JobName() + "_failed"
		if sev = pushedKinds[kind]; sev == "" {
			return alertmanager.PostableAlert{}, false
		}
	} else if sev == "" {
		return alertmanager.PostableAlert{}, false
	}
	a := alertmanager.PostableAlert{
		Labels:      map[string]string{"alertname": "homelab_" + kind, "lab": e.Lab, "target": e.Target, "severity": sev},
		Annotations: map[string]string{"summary": notify.DefaultTitle(e)},
	}
	if d := joinNonEmpty(e.Error, e.Detail); d != "" {
		a.Annotations["description"] = d
	}
	if e.Kind == notify.Recovered {
		a.EndsAt = e.Time
	} else {
		a.StartsAt = e.Time
	}
	return a, true
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// EventSink is what the daemon sends events to (daemon.Notifier).
type EventSink interface {
	Notify(e notify.Event)
	Ping(url string, e notify.Event)
	Close(ctx context.Context) error
}

// AlertPusher passes every event to Next and, for the pushed kinds
// (AlertOf), posts it to Alertmanager in the background; a post that
// fails is logged. Close waits for the posts, then closes Next.
type AlertPusher struct {
	Next   EventSink
	Client *alertmanager.Client
	Log    *slog.Logger
	wg     sync.WaitGroup
}

// WithAlertPush wraps next in an AlertPusher when l pushes to an
// Alertmanager (alerts.push), else returns next.
func WithAlertPush(next EventSink, l *lab.Lab, log *slog.Logger) (EventSink, error) {
	if !l.Alerts.Push {
		return next, nil
	}
	c, err := AlertClient(l)
	if err != nil {
		return nil, err
	}
	return &AlertPusher{Next: next, Client: c, Log: log}, nil
}

// Notify passes e on and posts its alert.
func (p *AlertPusher) Notify(e notify.Event) {
	p.Next.Notify(e)
	a, ok := AlertOf(e)
	if !ok {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Client.Post(ctx, []alertmanager.PostableAlert{a}); err != nil && p.Log != nil {
			p.Log.Warn("push alert to alertmanager", "alert", a.Labels["alertname"], "target", e.Target, "err", err)
		}
	}()
}

// Ping passes on.
func (p *AlertPusher) Ping(url string, e notify.Event) { p.Next.Ping(url, e) }

// Close waits for the posts (until ctx ends) and closes Next.
func (p *AlertPusher) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("alert pushes unfinished: %w", ctx.Err())
	}
	return errors.Join(err, p.Next.Close(ctx))
}
