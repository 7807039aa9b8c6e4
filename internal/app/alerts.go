package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// ReadAlerts asks l's Alertmanager for the alerts active now, firing
// (Firing) or silenced or inhibited (Silenced, with who silenced them
// from its silences, and the names of the alerts that inhibit them), and
// takes those resolved in the last 24 h from events (the daemon's
// status.EventAlertResolved records, newest first). nil when the lab
// names no Alertmanager. An Alertmanager that does not answer is the
// status's Error (a warning), never an error; its silences not read
// leave the silenced alerts with their silences' IDs only.
func ReadAlerts(ctx context.Context, l *lab.Lab, events []catalog.Event, now time.Time) *status.AlertsStatus {
	am := l.Alerts.Alertmanager
	if am == nil {
		return nil
	}
	a := &status.AlertsStatus{URL: am.URL, Resolved: status.ResolvedFrom(events, now)}
	c, err := AlertClient(l)
	if err == nil {
		var active []alertmanager.Alert
		if active, err = c.Alerts(ctx); err == nil {
			a.Firing, a.Silenced = splitAlerts(ctx, c, active)
		}
	}
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// splitAlerts turns active into status alerts: the firing ones and the
// suppressed ones, these with their silences (read from c when any is
// silenced) and the names of the alerts inhibiting them.
func splitAlerts(ctx context.Context, c *alertmanager.Client, active []alertmanager.Alert) (firing, suppressed []status.Alert) {
	names := map[string]string{} // fingerprint → alertname
	var silences map[string]alertmanager.Silence
	for _, x := range active {
		names[x.Fingerprint] = x.Name()
		if len(x.Status.SilencedBy) > 0 && silences == nil {
			silences = map[string]alertmanager.Silence{}
			all, _ := c.Silences(ctx) // without them, the IDs say enough
			for _, s := range all {
				silences[s.ID] = s
			}
		}
	}
	for _, x := range active {
		sa := status.Alert{Fingerprint: x.Fingerprint, Name: x.Name(), Severity: x.Severity(), Summary: x.Summary(), Since: x.StartsAt}
		if !x.Suppressed() {
			firing = append(firing, sa)
			continue
		}
		for _, id := range x.Status.SilencedBy {
			s := silences[id]
			sa.SilencedBy = append(sa.SilencedBy, status.Silence{ID: id, CreatedBy: s.CreatedBy, Comment: s.Comment, EndsAt: s.EndsAt})
		}
		for _, fp := range x.Status.InhibitedBy {
			sa.InhibitedBy = append(sa.InhibitedBy, cmp.Or(names[fp], fp))
		}
		suppressed = append(suppressed, sa)
	}
	return firing, suppressed
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
	notify.ArchivingStuck: "critical",
}

// AlertOf is the Alertmanager alert of a homelab event, and true, for
// the pushed kinds (alertname homelab_<kind>; labels lab, target and
// severity; annotations summary and description). A recovered event
// gives the resolved failure alert of its job (EndsAt = its time); a
// firing one has StartsAt = its time and no EndsAt (AlertPusher sets
// EndsAt on each post). Other kinds give false.
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
		Labels:      map[string]string{"alertname": alertName(kind), "lab": e.Lab, "target": e.Target, "severity": sev},
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

func alertName(kind string) string { return "homelab_" + kind }

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

// DefaultAlertRepost is how often an AlertPusher posts its firing
// alerts again (AlertPusher.Interval's default).
const DefaultAlertRepost = time.Minute

// AlertPusher passes every event to Next and keeps homelab's alerts in
// Alertmanager as Prometheus does: it holds the set of firing alerts
// (one per alertname and target; AlertOf) and posts all of them every
// Interval with EndsAt = now + 4×Interval (Prometheus' rule), so
// Alertmanager keeps them firing while homelab does and ends them by
// itself within 4 intervals of homelab stopping. A recovery, or Keep
// when the daemon's state no longer has the alert, removes it from the
// set and posts it once more with EndsAt = its time; a good backup also
// ends its target's overdue alert. An event's post is not waited for:
// Notify wakes the loop. A post that fails is logged and the next round
// posts the same alerts again (a resolution is kept until it was
// posted). Create it with NewAlertPusher; Close stops the loop.
type AlertPusher struct {
	Next   EventSink
	Client *alertmanager.Client
	Log    *slog.Logger
	// Interval is the time between two posts of the firing alerts.
	Interval time.Duration
	// Now is the clock of EndsAt; time.Now.
	Now func() time.Time

	mu       sync.Mutex
	firing   map[alertKey]firingAlert
	resolved map[alertKey]alertmanager.PostableAlert // to post once more
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc // of the post in flight
	closed   sync.Once
}

type alertKey struct{ name, target string }

// firingAlert is a firing alert and the event it came from.
type firingAlert struct {
	a alertmanager.PostableAlert
	e notify.Event
}

func keyOf(a alertmanager.PostableAlert) alertKey {
	return alertKey{a.Labels["alertname"], a.Labels["target"]}
}

// NewAlertPusher starts the post loop of an AlertPusher over next and c
// (interval ≤ 0: DefaultAlertRepost). The loop posts its first round at
// once when alerts are firing (Restore, Notify) and then every interval.
func NewAlertPusher(next EventSink, c *alertmanager.Client, log *slog.Logger, interval time.Duration) *AlertPusher {
	if interval <= 0 {
		interval = DefaultAlertRepost
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &AlertPusher{Next: next, Client: c, Log: log, Interval: interval, Now: time.Now,
		firing: map[alertKey]firingAlert{}, resolved: map[alertKey]alertmanager.PostableAlert{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go p.run(ctx)
	return p
}

// WithAlertPush wraps next in an AlertPusher (posting every
// DefaultAlertRepost) when l pushes to an Alertmanager (alerts.push),
// else returns next.
func WithAlertPush(next EventSink, l *lab.Lab, log *slog.Logger) (EventSink, error) {
	if !l.Alerts.Push {
		return next, nil
	}
	c, err := AlertClient(l)
	if err != nil {
		return nil, err
	}
	return NewAlertPusher(next, c, log, DefaultAlertRepost), nil
}

// Notify passes e on and fires (replacing the one of the same alertname
// and target) or resolves its alert (AlertOf).
func (p *AlertPusher) Notify(e notify.Event) {
	p.Next.Notify(e)
	p.apply([]notify.Event{e}, true)
}

// Restore fires the alerts of events (AlertOf) that are not firing yet,
// without passing the events on: after a start or reload the daemon's
// failures as its status report has them, and the alerts of the pusher
// it replaces (Firing), so they stay firing.
func (p *AlertPusher) Restore(events []notify.Event) { p.apply(events, false) }

func (p *AlertPusher) apply(events []notify.Event, replace bool) {
	changed := false
	p.mu.Lock()
	for _, e := range events {
		a, ok := AlertOf(e)
		if !ok {
			continue
		}
		k := keyOf(a)
		if e.Kind != notify.Recovered {
			if _, ok := p.firing[k]; ok && !replace {
				continue
			}
			delete(p.resolved, k)
			p.firing[k] = firingAlert{a, e}
			changed = true
			continue
		}
		if f, ok := p.firing[k]; ok {
			f.a.EndsAt = a.EndsAt
			a = f.a
		}
		p.resolveLocked(k, a)
		if e.JobName() == "backup" {
			if f, ok := p.firing[alertKey{alertName(notify.Overdue), e.Target}]; ok {
				f.a.EndsAt = e.Time
				p.resolveLocked(keyOf(f.a), f.a)
			}
		}
		changed = true
	}
	p.mu.Unlock()
	if changed {
		p.wake()
	}
}

// Keep makes current the alerts of kind (homelab_<kind>) that fire: those
// not firing yet start, the others end now. The daemon calls it with its
// overdue targets and its filling filesystems.
func (p *AlertPusher) Keep(kind string, current []notify.Event) {
	want := map[alertKey]firingAlert{}
	for _, e := range current {
		if a, ok := AlertOf(e); ok && e.Kind == kind {
			want[keyOf(a)] = firingAlert{a, e}
		}
	}
	changed := false
	p.mu.Lock()
	for k, a := range want {
		if _, ok := p.firing[k]; !ok {
			delete(p.resolved, k)
			p.firing[k] = a
			changed = true
		}
	}
	for k, f := range p.firing {
		if _, ok := want[k]; !ok && k.name == alertName(kind) {
			f.a.EndsAt = p.Now()
			p.resolveLocked(k, f.a)
			changed = true
		}
	}
	p.mu.Unlock()
	if changed {
		p.wake()
	}
}

// Firing returns the events of the firing alerts, by kind and target.
func (p *AlertPusher) Firing() []notify.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []notify.Event
	for _, f := range p.firing {
		out = append(out, f.e)
	}
	slices.SortFunc(out, func(a, b notify.Event) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Target, b.Target))
	})
	return out
}

func (p *AlertPusher) resolveLocked(k alertKey, a alertmanager.PostableAlert) {
	delete(p.firing, k)
	p.resolved[k] = a
}

func (p *AlertPusher) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *AlertPusher) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.round(ctx) // what came last
			return
		case <-t.C:
		case <-p.kick:
		}
		p.round(ctx)
	}
}

// round posts the firing alerts with EndsAt = now + 4×Interval and the
// resolutions not posted yet; those it posted are forgotten.
func (p *AlertPusher) round(ctx context.Context) {
	p.mu.Lock()
	now := p.Now()
	var batch []alertmanager.PostableAlert
	for _, f := range p.firing {
		a := f.a
		a.EndsAt = now.Add(4 * p.Interval)
		batch = append(batch, a)
	}
	sent := map[alertKey]time.Time{}
	for k, a := range p.resolved {
		batch = append(batch, a)
		sent[k] = a.EndsAt
	}
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := p.Client.Post(pctx, batch)
	cancel()
	if err != nil {
		if p.Log != nil {
			p.Log.Warn("push alerts to alertmanager; posting them again in the next round", "alerts", len(batch), "err", err)
		}
		return
	}
	p.mu.Lock()
	for k, at := range sent {
		if a, ok := p.resolved[k]; ok && a.EndsAt.Equal(at) {
			delete(p.resolved, k)
		}
	}
	p.mu.Unlock()
}

// Ping passes on.
func (p *AlertPusher) Ping(url string, e notify.Event) { p.Next.Ping(url, e) }

// Close stops the loop after a last round (the alerts of the newest
// events), waiting for it until ctx ends (then the post is abandoned),
// and closes Next. The alerts still firing stay so in Alertmanager until
// their EndsAt: a next pusher (a reload, a restart) takes them over.
func (p *AlertPusher) Close(ctx context.Context) error {
	p.closed.Do(func() { close(p.stop) })
	var err error
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
		err = fmt.Errorf("alert pushes unfinished: %w", ctx.Err())
	}
	p.cancel()
	return errors.Join(err, p.Next.Close(ctx))
}
