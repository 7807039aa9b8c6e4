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

// TestClient posts alerts to a real Alertmanager, reads them back firing
// with their labels and annotations, resolves one by posting it with an
// end in the past, and names the failure when Alertmanager is gone.
func TestClient(t *testing.T) {
	url, stop := testenv.Alertmanager(t)
	c, err := alertmanager.New(url, "", "")
	if err != nil {
		t.Fatal(err)
	}
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
