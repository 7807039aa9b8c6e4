package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"homelab/internal/alertmanager"
	"homelab/internal/app"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/status"
	"homelab/internal/testenv"
)

// await is testenv.Await.
func await(t *testing.T, what string, f func() bool) {
	t.Helper()
	testenv.Await(t, what, f)
}

// TestAlertmanager runs the daemon's poller and pusher against a real
// Alertmanager: an alert posted to it shows on status with its severity;
// homelab's backup failure arrives in it (and its recovery resolves it);
// an alert resolved in Alertmanager moves to the last 24 hours' list,
// recorded in the catalog so `homelab status` (app.ReadAlerts over the
// catalog's events) lists it too; and with Alertmanager stopped, status
// has a warning line and its verdict is unchanged.
func TestAlertmanager(t *testing.T) {
	amURL, stopAM := testenv.Alertmanager(t)
	ctx := t.Context()
	var sink app.EventSink
	f := newFixtureLab(t, "name: unit\nalerts:\n  alertmanager: {url: \""+amURL+"\"}\n  push: true\n", func(c *Config) {
		notes := c.NewNotifier
		c.NewNotifier = func(l *lab.Lab, log *slog.Logger) (Notifier, error) {
			n, err := notes(l, log)
			if err != nil {
				return nil, err
			}
			sink, err = app.WithAlertPush(n, l, log)
			return sink, err
		}
		c.ReadAlerts = app.ReadAlerts
		c.Now = time.Now
	})
	d, store, notes, l := f.d, f.store, f.notes, f.d.Lab()
	am, err := app.AlertClient(l)
	if err != nil {
		t.Fatal(err)
	}
	firingNames := func() []string {
		as, err := am.Firing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.Name()+":"+a.Labels["target"]+":"+a.Severity())
		}
		return out
	}

	// Someone else's alert, firing.
	if err := am.Post(ctx, []alertmanager.PostableAlert{{Labels: map[string]string{"alertname": "NodeDown", "severity": "critical"},
		Annotations: map[string]string{"summary": "nas is down"}}}); err != nil {
		t.Fatal(err)
	}
	await(t, "NodeDown firing in the daemon's poll", func() bool {
		d.PollAlerts(ctx)
		a := d.Alerts()
		return a != nil && a.Error == "" && len(a.Firing) == 1
	})
	rep := status.Report{Lab: "unit", Generated: time.Now(), Healthy: true}
	rep.AddAlerts(d.Alerts())
	text := render(t, rep)
	if !strings.Contains(text, "\nALERTS\nFIRING    SEVERITY  SINCE") || !regexpMatch(`NodeDown  CRITICAL  (just now|[0-9]+s ago)\s+nas is down`, text) {
		t.Errorf("status text:\n%s", text)
	}

	// homelab's own failure is pushed, beside the notification.
	sink.Notify(notify.Event{Kind: notify.BackupFailed, Lab: "unit", Target: "db", Job: "backup", Time: time.Now(), Error: "restic: exit 1"})
	await(t, "homelab_backup_failed in Alertmanager", func() bool {
		return slices.Contains(firingNames(), "homelab_backup_failed:db:critical")
	})
	if k := notes.kinds(); len(k) != 1 || k[0] != "backup_failed:db" {
		t.Errorf("notifications %v, want the backup_failed passed on", k)
	}
	sink.Notify(notify.Event{Kind: notify.Recovered, Lab: "unit", Target: "db", Job: "backup", Time: time.Now()})
	await(t, "homelab_backup_failed resolved by the recovery", func() bool {
		return !slices.Contains(firingNames(), "homelab_backup_failed:db:critical")
	})

	// NodeDown resolved: the next poll records it.
	d.PollAlerts(ctx) // sees only NodeDown firing
	if err := am.Post(ctx, []alertmanager.PostableAlert{{Labels: map[string]string{"alertname": "NodeDown", "severity": "critical"},
		EndsAt: time.Now().Add(-time.Second)}}); err != nil {
		t.Fatal(err)
	}
	await(t, "NodeDown resolved in the daemon's poll", func() bool {
		d.PollAlerts(ctx)
		a := d.Alerts()
		return a != nil && len(a.Firing) == 0 && len(a.Resolved) == 1
	})
	if r := d.Alerts().Resolved[0]; r.Name != "NodeDown" || r.Severity != "critical" || r.Summary != "nas is down" {
		t.Errorf("resolved %+v", r)
	}
	events, err := store.Events(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	cli := app.ReadAlerts(ctx, l, events, time.Now())
	if cli.Error != "" || len(cli.Resolved) != 1 || cli.Resolved[0].Name != "NodeDown" {
		t.Errorf("homelab status's alerts: %+v", cli)
	}
	// A day later it is out of the list.
	if late := app.ReadAlerts(ctx, l, events, time.Now().Add(status.ResolvedWindow+time.Minute)); len(late.Resolved) != 0 {
		t.Errorf("resolved a day later: %+v", late.Resolved)
	}

	// Alertmanager down: a warning line; Healthy untouched.
	stopAM()
	d.PollAlerts(ctx)
	a := d.Alerts()
	if a.Error == "" || len(a.Resolved) != 1 {
		t.Fatalf("alertmanager down: %+v", a)
	}
	rep = status.Report{Lab: "unit", Generated: time.Now(), Healthy: true}
	rep.AddAlerts(a)
	text = render(t, rep)
	if !rep.Healthy || !strings.Contains(text, "healthy: no backup targets\n") || !strings.Contains(text, "WARNING: alertmanager "+amURL+" did not answer: ") || !strings.Contains(text, "connection refused") {
		t.Errorf("healthy %t:\n%s", rep.Healthy, text)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sink.Close(cctx); err != nil {
		t.Error(err)
	}
}

// TestAlertSilencedIsNotResolved runs the daemon's poller against a real
// Alertmanager: an alert silenced there (through its API) is still
// active, so the daemon lists it as silenced, with who silenced it, in
// status text and JSON, and records no resolution; an alert inhibited by
// another is listed so too. Resolved while silenced, the alert is
// recorded resolved, and the one it inhibited fires again.
func TestAlertSilencedIsNotResolved(t *testing.T) {
	amURL, _ := testenv.Alertmanager(t)
	ctx := t.Context()
	f := newFixtureLab(t, "name: unit\nalerts:\n  alertmanager: {url: \""+amURL+"\"}\n", func(c *Config) {
		c.ReadAlerts = app.ReadAlerts
		c.Now = time.Now
	})
	d, store := f.d, f.store
	am, err := app.AlertClient(d.Lab())
	if err != nil {
		t.Fatal(err)
	}
	names := func(as []status.Alert) string {
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	poll := func(what, firing, silenced, resolved string) *status.AlertsStatus {
		t.Helper()
		var a *status.AlertsStatus
		await(t, what, func() bool {
			d.PollAlerts(ctx)
			a = d.Alerts()
			if a != nil && names(a.Resolved) != resolved && !strings.HasPrefix(resolved, names(a.Resolved)) {
				t.Fatalf("%s: resolved %q, want %q (firing %q, silenced %q)", what, names(a.Resolved), resolved, names(a.Firing), names(a.Silenced))
			}
			return a != nil && a.Error == "" && names(a.Firing) == firing && names(a.Silenced) == silenced && names(a.Resolved) == resolved
		})
		return a
	}
	resolvedEvents := func() []catalog.Event {
		t.Helper()
		events, err := store.Events(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(events, func(e catalog.Event) bool { return e.Kind != status.EventAlertResolved })
	}

	// NodeDown firing; testenv's Alertmanager has it inhibit ServiceDown.
	nodeDown := map[string]string{"alertname": "NodeDown", "severity": "critical", "instance": "nas"}
	if err := am.Post(ctx, []alertmanager.PostableAlert{{Labels: nodeDown, Annotations: map[string]string{"summary": "nas is down"}},
		{Labels: map[string]string{"alertname": "ServiceDown", "severity": "warning", "instance": "nas"}}}); err != nil {
		t.Fatal(err)
	}
	a := poll("NodeDown firing, ServiceDown inhibited", "NodeDown", "ServiceDown", "")
	if s := a.Silenced[0]; len(s.SilencedBy) != 0 || !slices.Equal(s.InhibitedBy, []string{"NodeDown"}) || s.Why(time.Now()) != "inhibited by NodeDown" {
		t.Errorf("ServiceDown %+v, want inhibited by NodeDown", s)
	}

	// The operator silences NodeDown: still active, not resolved.
	start := time.Now()
	id, err := am.PostSilence(ctx, alertmanager.Silence{Matchers: []alertmanager.Matcher{{Name: "alertname", Value: "NodeDown", IsEqual: true}},
		StartsAt: start, EndsAt: start.Add(time.Hour), CreatedBy: "alice", Comment: "swapping the disk"})
	if err != nil {
		t.Fatal(err)
	}
	a = poll("NodeDown silenced", "", "NodeDown,ServiceDown", "")
	d.PollAlerts(ctx) // and again: still no resolution
	if ev := resolvedEvents(); len(ev) != 0 {
		t.Errorf("resolutions recorded for silenced alerts: %+v", ev)
	}
	var silenced status.Alert
	for _, x := range d.Alerts().Silenced {
		if x.Name == "NodeDown" {
			silenced = x
		}
	}
	if sb := silenced.SilencedBy; silenced.Severity != "critical" || silenced.Summary != "nas is down" || len(sb) != 1 || sb[0].ID != id ||
		sb[0].CreatedBy != "alice" || sb[0].Comment != "swapping the disk" || sb[0].EndsAt.Sub(start.Add(time.Hour)).Abs() > time.Millisecond {
		t.Errorf("silenced NodeDown %+v", silenced)
	}
	rep := status.Report{Lab: "unit", Generated: time.Now(), Healthy: true}
	rep.AddAlerts(a)
	text := render(t, rep)
	if !strings.Contains(text, "\nALERTS\nnone firing\nSILENCED     SEVERITY  SINCE") ||
		!regexpMatch(`\nNodeDown     critical  (just now|[0-9]+s ago)\s+silenced by alice, ends in [0-9hm ]+: swapping the disk\n`, text) ||
		!regexpMatch(`\nServiceDown  warning   (just now|[0-9]+s ago)\s+inhibited by NodeDown\n`, text) {
		t.Errorf("status text:\n%s", text)
	}
	var js bytes.Buffer
	if err := status.RenderJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"firing":[],"silenced":[{`) || !regexpMatch(`\{"name":"NodeDown","severity":"critical","summary":"nas is down","since":"[^"]+","silenced_by":\[\{"id":"`+id+`","created_by":"alice","comment":"swapping the disk","ends_at":"[^"]+"\}\]\}`, js.String()) ||
		!strings.Contains(js.String(), `{"name":"ServiceDown","severity":"warning","summary":"","since":"`) ||
		!strings.Contains(js.String(), `"inhibited_by":["NodeDown"]}`) || !strings.Contains(js.String(), `],"resolved":[]}`) {
		t.Errorf("status JSON: %s", js.String())
	}

	// NodeDown resolved while silenced: recorded; ServiceDown fires.
	if err := am.Post(ctx, []alertmanager.PostableAlert{{Labels: nodeDown, EndsAt: time.Now().Add(-time.Second)}}); err != nil {
		t.Fatal(err)
	}
	poll("NodeDown resolved, ServiceDown firing", "ServiceDown", "", "NodeDown")
	if ev := resolvedEvents(); len(ev) != 1 || ev[0].Target != "NodeDown" || ev[0].Message != "critical: nas is down" {
		t.Errorf("resolutions recorded: %+v, want NodeDown's", ev)
	}
}

func render(t *testing.T, r status.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := status.RenderText(&b, r, r.Generated); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// The pusher is what the daemon keeps its alerts with.
var _ AlertKeeper = (*app.AlertPusher)(nil)

// amProxy stands in front of a real Alertmanager and answers 503 while
// down, counting the posts it saw up and down.
type amProxy struct {
	down          atomic.Bool
	posts, failed atomic.Int64
}

func newAMProxy(t *testing.T, amURL string) (*amProxy, string) {
	u, err := url.Parse(amURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &amProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		post := r.Method == http.MethodPost
		if p.down.Load() {
			if post {
				p.failed.Add(1)
			}
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
		if post {
			p.posts.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// TestAlertPushKeepsAlertsFiring runs the daemon's AlertPusher against a
// real Alertmanager, re-posting every 300 ms: a failure stays firing past
// the EndsAt of its first post (so only the re-posts keep it), and its
// recovery resolves it; an overdue target's alert fires and is resolved
// when the daemon finds the target no longer overdue (no event for
// that); an alert posted while Alertmanager answers 503 arrives once it
// answers again; a reload's new pusher takes the firing alerts over; and
// a new daemon and pusher over a catalog whose target's
// last backup failed post that alert at their first look.
func TestAlertPushKeepsAlertsFiring(t *testing.T) {
	amURL, _ := testenv.Alertmanager(t)
	proxy, proxyURL := newAMProxy(t, amURL)
	ctx := t.Context()
	var pusher *app.AlertPusher
	withPusher := func(c *Config) {
		notes := c.NewNotifier
		c.NewNotifier = func(l *lab.Lab, log *slog.Logger) (Notifier, error) {
			n, err := notes(l, log)
			if err != nil {
				return nil, err
			}
			client, err := app.AlertClient(l)
			if err != nil {
				return nil, err
			}
			pusher = app.NewAlertPusher(n, client, log, 300*time.Millisecond)
			return pusher, nil
		}
	}
	labText := testLab + "alerts:\n  alertmanager: {url: \"" + proxyURL + "\"}\n  push: true\n"
	f := newFixtureLab(t, labText, withPusher)
	first := pusher
	am, err := alertmanager.New(amURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	firing := func(name, target string) *alertmanager.Alert {
		as, err := am.Firing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Name() == name && a.Labels["target"] == target {
				return &a
			}
		}
		return nil
	}

	// A failure stays firing after the EndsAt its first post gave it.
	first.Notify(notify.Event{Kind: notify.BackupFailed, Lab: "unit", Target: "db", Job: "backup", Time: time.Now(), Error: "restic: exit 1"})
	var a0 *alertmanager.Alert
	await(t, "homelab_backup_failed in Alertmanager", func() bool {
		a0 = firing("homelab_backup_failed", "db")
		return a0 != nil
	})
	posted := proxy.posts.Load()
	await(t, "the first post's EndsAt passed and three more rounds posted", func() bool {
		return time.Now().After(a0.EndsAt) && proxy.posts.Load() >= posted+3
	})
	a1 := firing("homelab_backup_failed", "db")
	if a1 == nil || !a1.EndsAt.After(a0.EndsAt) || !a1.StartsAt.Equal(a0.StartsAt) {
		t.Fatalf("after the re-posts: %+v, first %+v", a1, a0)
	}
	first.Notify(notify.Event{Kind: notify.Recovered, Lab: "unit", Target: "db", Job: "backup", Time: time.Now()})
	await(t, "homelab_backup_failed resolved by the recovery", func() bool {
		return firing("homelab_backup_failed", "db") == nil
	})

	// Overdue: fired by the daemon's look, ended by its next one.
	f.backupAt(t, "db", f.now.Add(-72*time.Hour))
	f.d.watchOverdue(ctx)
	await(t, "homelab_overdue in Alertmanager", func() bool { return firing("homelab_overdue", "db") != nil })
	f.backupAt(t, "db", f.now.Add(-time.Hour))
	f.d.watchOverdue(ctx)
	if got := firingKinds(first); len(got) != 0 {
		t.Errorf("pusher still firing %v", got)
	}
	await(t, "homelab_overdue resolved once db is not overdue", func() bool { return firing("homelab_overdue", "db") == nil })

	// Alertmanager down for a round: the alert arrives when it is back.
	proxy.down.Store(true)
	first.Notify(notify.Event{Kind: notify.DrillFailed, Lab: "unit", Target: "db", Job: "drill", Time: time.Now(), Error: "restore differs"})
	await(t, "a post refused", func() bool { return proxy.failed.Load() > 0 })
	if firing("homelab_drill_failed", "db") != nil {
		t.Fatal("drill_failed in Alertmanager while its posts were refused")
	}
	proxy.down.Store(false)
	await(t, "homelab_drill_failed in Alertmanager after it is back", func() bool {
		return firing("homelab_drill_failed", "db") != nil
	})
	first.Notify(notify.Event{Kind: notify.Recovered, Lab: "unit", Target: "db", Job: "drill", Time: time.Now()})
	await(t, "homelab_drill_failed resolved", func() bool { return firing("homelab_drill_failed", "db") == nil })

	// A reload: the new generation's pusher takes the alerts over.
	first.Notify(notify.Event{Kind: notify.CheckFailed, Lab: "unit", Target: "local", Job: "check", Time: time.Now(), Error: "pack damaged"})
	await(t, "homelab_check_failed in Alertmanager", func() bool { return firing("homelab_check_failed", "local") != nil })
	f.d.reload(ctx)
	reloaded := pusher
	if reloaded == first {
		t.Fatal("the reload kept the pusher")
	}
	if got := firingKinds(reloaded); !slices.Equal(got, []string{"check_failed:local"}) {
		t.Fatalf("after the reload firing %v, want the check failure taken over", got)
	}
	posted = proxy.posts.Load()
	await(t, "three rounds of the reloaded pusher", func() bool { return proxy.posts.Load() >= posted+3 })
	if firing("homelab_check_failed", "local") == nil {
		t.Error("check_failed no longer firing after the reload")
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, p := range []*app.AlertPusher{first, reloaded} {
		if err := p.Close(cctx); err != nil {
			t.Fatal(err)
		}
	}

	// A restart: db's last backup failed in the catalog; the new daemon's
	// first look gives its pusher the alert, and it stays firing.
	r, err := f.store.StartRun(ctx, catalog.Run{RunID: "failed-run", Kind: catalog.KindBackup, Target: "db", Start: f.now.Add(-10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	r.End, r.Result, r.Error = f.now.Add(-9*time.Minute), catalog.ResultFailed, "restic: exit 1"
	if err := f.store.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	g := newFixtureLab(t, labText, withPusher)
	g.store.Close()
	g.d.cfg.Catalog, g.d.cfg.Now = f.store, f.d.cfg.Now
	second := pusher
	g.d.watchOverdue(ctx)
	if got := firingKinds(second); !slices.Equal(got, []string{"backup_failed:db"}) {
		t.Fatalf("restored pusher firing %v", got)
	}
	var b0 *alertmanager.Alert
	await(t, "the restored homelab_backup_failed in Alertmanager", func() bool {
		b0 = firing("homelab_backup_failed", "db")
		return b0 != nil
	})
	if b0.Annotations["description"] != "restic: exit 1" {
		t.Errorf("restored alert %+v", b0)
	}
	posted = proxy.posts.Load()
	await(t, "the restored alert's first EndsAt passed and three more rounds posted", func() bool {
		return time.Now().After(b0.EndsAt) && proxy.posts.Load() >= posted+3
	})
	if firing("homelab_backup_failed", "db") == nil {
		t.Error("restored alert no longer firing after the re-posts")
	}
	if k := g.notes.kinds(); len(k) != 0 {
		t.Errorf("the restore notified %v", k)
	}
	if err := second.Close(cctx); err != nil {
		t.Fatal(err)
	}
}

// firingKinds are the kind:target of the alerts p has firing.
func firingKinds(p *app.AlertPusher) []string {
	var out []string
	for _, e := range p.Firing() {
		out = append(out, e.Kind+":"+e.Target)
	}
	return out
}

// eventCounter is a Catalog that counts its Events calls.
type eventCounter struct {
	Catalog
	calls atomic.Int32
}

func (c *eventCounter) Events(ctx context.Context, limit int) ([]catalog.Event, error) {
	c.calls.Add(1)
	return c.Catalog.Events(ctx, limit)
}

// TestPollAlertsWithoutAlertmanager: a lab that names no Alertmanager is
// not polled: neither ReadAlerts nor the catalog's events are asked (the
// poller runs every 30 s in every daemon), and there are no alerts.
func TestPollAlertsWithoutAlertmanager(t *testing.T) {
	var counter *eventCounter
	var reads atomic.Int32
	f := newFixtureLab(t, "name: unit\n", func(c *Config) {
		counter = &eventCounter{Catalog: c.Catalog}
		c.Catalog = counter
		c.ReadAlerts = func(ctx context.Context, l *lab.Lab, events []catalog.Event, now time.Time) *status.AlertsStatus {
			reads.Add(1)
			return app.ReadAlerts(ctx, l, events, now)
		}
	})
	f.d.PollAlerts(t.Context())
	if n := counter.calls.Load(); n != 0 {
		t.Errorf("catalog events read %d times by a poll without an Alertmanager, want 0", n)
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("ReadAlerts called %d times without an Alertmanager, want 0", n)
	}
	if a := f.d.Alerts(); a != nil {
		t.Errorf("Alerts() = %+v, want nil", a)
	}
}
