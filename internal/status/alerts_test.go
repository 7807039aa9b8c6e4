package status

import (
	"strings"
	"testing"
	"time"
)

// TestAlertWhy: what suppresses an alert, with its silences' authors,
// ends (relative) and comments, or their IDs when they were not read.
func TestAlertWhy(t *testing.T) {
	for _, c := range []struct {
		name string
		a    Alert
		want string
	}{
		{"silenced", Alert{SilencedBy: []Silence{{ID: "s1", CreatedBy: "alice", Comment: "swapping\nthe disk", EndsAt: epoch.Add(90 * time.Minute)}}},
			"silenced by alice, ends in 1h 30m: swapping the disk"},
		{"silences not read", Alert{SilencedBy: []Silence{{ID: "s1"}}}, "silenced (silence s1)"},
		{"silenced and inhibited", Alert{SilencedBy: []Silence{{ID: "s1", EndsAt: epoch.Add(time.Hour)}}, InhibitedBy: []string{"NodeDown", "PowerLost"}},
			"silenced, ends in 1h; inhibited by NodeDown, PowerLost"},
		{"state alone", Alert{}, "suppressed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.a.Why(epoch); got != c.want {
				t.Errorf("Why = %q, want %q", got, c.want)
			}
		})
	}
}

// TestWriteAlertsSilenced: silenced alerts are their own table, after
// "none firing" when none fires: they are not resolved.
func TestWriteAlertsSilenced(t *testing.T) {
	var b strings.Builder
	writeAlerts(&b, &AlertsStatus{Silenced: []Alert{{Name: "DiskFull", Severity: "warning", Since: epoch.Add(-2 * time.Hour),
		SilencedBy: []Silence{{ID: "s1", CreatedBy: "alice", EndsAt: epoch.Add(time.Hour)}}}}}, epoch)
	want := "none firing\n" +
		"SILENCED  SEVERITY  SINCE   WHY\n" +
		"DiskFull  warning   2h ago  silenced by alice, ends in 1h\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
