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

// TestWriteAlertsPrintable: what an Alertmanager says (anyone who can
// post alerts or silences writes it) cannot drive the terminal: escape
// sequences, BEL and C1 controls are replaced, tabs and newlines become
// spaces, so the columns hold.
func TestWriteAlertsPrintable(t *testing.T) {
	var b strings.Builder
	writeAlerts(&b, &AlertsStatus{URL: "http://am", Error: "502: \x1b]0;owned\x07",
		Firing: []Alert{{Name: "Disk\x1b[2JFull", Severity: "crit\tical", Since: epoch.Add(-time.Hour), Summary: "\x1b[31mred\x1b[0m\nsecond line\u009b"}},
		Silenced: []Alert{{Name: "Other", Severity: "warning", Since: epoch.Add(-time.Hour),
			SilencedBy: []Silence{{ID: "s1", CreatedBy: "eve\x1b[1A", Comment: "hidden\rover", EndsAt: epoch.Add(time.Hour)}}}},
		Resolved: []Alert{{Name: "Gone\x07", Severity: "info", Summary: "ok\x1b", Resolved: epoch.Add(-time.Minute)}}}, epoch)
	out := b.String()
	for i, r := range out {
		if r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
			t.Fatalf("control character %U at %d in:\n%q", r, i, out)
		}
	}
	for _, want := range []string{"Disk\uFFFD[2JFull", "CRIT ICAL", "\uFFFD[31mred\uFFFD[0m second line\uFFFD", "eve\uFFFD[1A", "hidden over", "Gone\uFFFD", "502: \uFFFD]0;owned\uFFFD"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 7 {
		t.Errorf("%d lines, want 7 (a warning, a header and a row per table):\n%s", n, out)
	}
}
