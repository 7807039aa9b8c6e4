package alertmanager_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"homelab/internal/alertmanager"
	"homelab/internal/testenv"
)

// firing waits until Alertmanager holds n firing alerts and returns them.
func firing(t *testing.T, c *alertmanager.Client, n int) []alertmanager.Alert {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		as, err := c.Firing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == n {
			return as
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d alerts firing, want %d: %+v", len(as), n, as)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newClient starts a real Alertmanager (testenv.Alertmanager) and
// returns a client of it and the function that stops it.
func newClient(t *testing.T) (*alertmanager.Client, func()) {
	t.Helper()
	url, stop := testenv.Alertmanager(t)
	c, err := alertmanager.New(url, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return c, stop
}

// TestClient posts alerts to a real Alertmanager, reads them back firing
// with their labels and annotations, resolves one by posting it with an
// end in the past, and names the failure when Alertmanager is gone.
func TestClient(t *testing.T) {
	c, stop := newClient(t)
	ctx := t.Context()
	now := time.Now()
	if err := c.Post(ctx, []alertmanager.PostableAlert{
		{Labels: map[string]string{"alertname": "DiskFull", "severity": "critical", "instance": "nas"}, Annotations: map[string]string{"summary": "/srv is full"}, StartsAt: now.Add(-time.Minute)},
		{Labels: map[string]string{"alertname": "HighLoad", "severity": "warning"}, Annotations: map[string]string{"description": "load 9"}},
	}); err != nil {
		t.Fatal(err)
	}
	as := firing(t, c, 2)
	byName := map[string]alertmanager.Alert{}
	for _, a := range as {
		byName[a.Name()] = a
	}
	if d := byName["DiskFull"]; d.Severity() != "critical" || d.Summary() != "/srv is full" || d.Fingerprint == "" || d.Status.State != "active" || d.StartsAt.Sub(now.Add(-time.Minute)).Abs() > time.Millisecond {
		t.Errorf("DiskFull: %+v", d)
	}
	if h := byName["HighLoad"]; h.Severity() != "warning" || h.Summary() != "load 9" {
		t.Errorf("HighLoad: %+v", h)
	}
	if err := c.Post(ctx, []alertmanager.PostableAlert{{Labels: map[string]string{"alertname": "HighLoad", "severity": "warning"}, EndsAt: now.Add(-time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if as := firing(t, c, 1); as[0].Name() != "DiskFull" {
		t.Errorf("after resolving HighLoad: %+v", as)
	}
	if err := c.Post(ctx, []alertmanager.PostableAlert{{Labels: map[string]string{}}}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("an alert without labels: %v", err)
	}
	stop()
	if _, err := c.Firing(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("alertmanager stopped: %v", err)
	}
}

// TestSilencedAndInhibited: a real Alertmanager's silenced and inhibited
// alerts are in Alerts, suppressed, with the silence's ID and the
// inhibiting alert's fingerprint, and not in Firing; Silences lists the
// silence with its author; an expired silence leaves its alert firing.
func TestSilencedAndInhibited(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	now := time.Now()
	// testenv's NodeDown inhibits the ServiceDown of its instance.
	if err := c.Post(ctx, []alertmanager.PostableAlert{
		{Labels: map[string]string{"alertname": "NodeDown", "instance": "nas"}},
		{Labels: map[string]string{"alertname": "ServiceDown", "instance": "nas"}},
		{Labels: map[string]string{"alertname": "DiskFull", "instance": "nas"}},
	}); err != nil {
		t.Fatal(err)
	}
	id, err := c.PostSilence(ctx, alertmanager.Silence{Matchers: []alertmanager.Matcher{{Name: "alertname", Value: "DiskFull", IsEqual: true}},
		StartsAt: now, EndsAt: now.Add(time.Hour), CreatedBy: "alice", Comment: "swapping the disk"})
	if err != nil || id == "" {
		t.Fatalf("post silence: %q, %v", id, err)
	}
	byName := map[string]alertmanager.Alert{}
	testenv.Await(t, "DiskFull silenced and ServiceDown inhibited", func() bool {
		as, err := c.Alerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clear(byName)
		for _, a := range as {
			byName[a.Name()] = a
		}
		return len(as) == 3 && byName["DiskFull"].Suppressed() && byName["ServiceDown"].Suppressed()
	})
	if d := byName["DiskFull"].Status; d.State != "suppressed" || len(d.SilencedBy) != 1 || d.SilencedBy[0] != id || len(d.InhibitedBy) != 0 {
		t.Errorf("DiskFull status %+v, want silenced by %s", d, id)
	}
	if s := byName["ServiceDown"].Status; len(s.SilencedBy) != 0 || len(s.InhibitedBy) != 1 || s.InhibitedBy[0] != byName["NodeDown"].Fingerprint {
		t.Errorf("ServiceDown status %+v, want inhibited by NodeDown %s", s, byName["NodeDown"].Fingerprint)
	}
	if n := byName["NodeDown"]; n.Suppressed() || n.Status.State != "active" {
		t.Errorf("NodeDown status %+v, want active", n.Status)
	}
	if as := firing(t, c, 1); as[0].Name() != "NodeDown" {
		t.Errorf("firing %+v, want NodeDown only", as)
	}
	ss, err := c.Silences(ctx)
	if err != nil || len(ss) != 1 {
		t.Fatalf("silences %+v, %v", ss, err)
	}
	if s := ss[0]; s.ID != id || s.CreatedBy != "alice" || s.Comment != "swapping the disk" || s.Status == nil || s.Status.State != "active" ||
		s.EndsAt.Sub(now.Add(time.Hour)).Abs() > time.Millisecond || len(s.Matchers) != 1 || s.Matchers[0] != (alertmanager.Matcher{Name: "alertname", Value: "DiskFull", IsEqual: true}) {
		t.Errorf("silence %+v", s)
	}
	if err := c.ExpireSilence(ctx, id); err != nil {
		t.Fatal(err)
	}
	if as := firing(t, c, 2); as[0].Name()+as[1].Name() != "DiskFullNodeDown" && as[0].Name()+as[1].Name() != "NodeDownDiskFull" {
		t.Errorf("firing after the silence expired %+v, want DiskFull and NodeDown", as)
	}
	if err := c.ExpireSilence(ctx, "no-such-silence"); err == nil {
		t.Error("expiring an unknown silence: no error")
	}
}
