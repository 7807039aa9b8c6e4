package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/alertmanager"
	"homelab/internal/app"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/status"
	"homelab/internal/testenv"
)

// await calls f until it returns true, failing the test after a minute.
func await(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within a minute: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
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

func render(t *testing.T, r status.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := status.RenderText(&b, r, r.Generated); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
