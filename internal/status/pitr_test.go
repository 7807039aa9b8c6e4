package status

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestWindowStuck: archiving is stuck when a completed segment has
// waited longer than archive_timeout when the window was read; an idle
// cluster (nothing waiting), however old its newest archived segment, is
// not, and neither is an unreadable archive_status (-1).
func TestWindowStuck(t *testing.T) {
	read := time.Date(2026, 12, 6, 10, 41, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		w    Window
		want bool
	}{
		{"nothing waiting, archived long ago", Window{To: read.Add(-48 * time.Hour), Read: read, ArchiveTimeout: time.Minute}, false},
		{"waiting within archive_timeout", Window{Waiting: 1, WaitingSince: read.Add(-59 * time.Second), Read: read, ArchiveTimeout: time.Minute}, false},
		{"waiting past archive_timeout", Window{Waiting: 2, WaitingSince: read.Add(-61 * time.Second), Read: read, ArchiveTimeout: time.Minute}, true},
		{"a longer archive_timeout", Window{Waiting: 2, WaitingSince: read.Add(-5 * time.Minute), Read: read, ArchiveTimeout: 10 * time.Minute}, false},
		{"archive_status unreadable", Window{Waiting: -1, Read: read, ArchiveTimeout: time.Minute}, false},
	} {
		if got := c.w.Stuck(); got != c.want {
			t.Errorf("%s: Stuck() = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestWindowInReport: AddWindows puts a pgbackrest target's window in the
// report; the text says it in one line under the targets (with ARCHIVING
// STUCK and the verdict's count when stuck), the JSON has it under the
// target with stuck and lag_seconds; a stuck window makes the report
// unhealthy, the others leave it be.
func TestWindowInReport(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 45, 0, 0, time.UTC)
	base := func() Report {
		return Report{Lab: "pitr", Generated: now, Healthy: true, Targets: []TargetStatus{
			{Name: "db", Provider: "pgbackrest", State: StateOK}, {Name: "files", Provider: "restic", State: StateOK}}}
	}
	w := Window{From: time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 6, 10, 41, 7, 0, time.UTC),
		WAL: "00000001000000000000002A", Backups: 3, Read: now.Add(-time.Minute), ArchiveTimeout: time.Minute}

	r := base()
	r.AddWindows(map[string]Window{"db": w})
	if !r.Healthy || r.Targets[0].Window == nil || r.Targets[1].Window != nil {
		t.Fatalf("report %+v, want healthy with a window on db only", r)
	}
	var text bytes.Buffer
	if err := RenderText(&text, r, now); err != nil {
		t.Fatal(err)
	}
	if want := "db: recoverable window from 2026-12-06 02:00:00 to 2026-12-06 10:41:07 (newest WAL 3m ago)\n"; !strings.Contains(text.String(), want) {
		t.Errorf("text has no %q:\n%s", want, text.String())
	}
	var js bytes.Buffer
	if err := RenderJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Targets []struct {
			Name   string
			Window *struct {
				From, To   time.Time
				WAL        string
				Stuck      bool
				LagSeconds float64 `json:"lag_seconds"`
			}
		}
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	jw := out.Targets[0].Window
	if jw == nil || !jw.From.Equal(w.From) || !jw.To.Equal(w.To) || jw.WAL != w.WAL || jw.Stuck || jw.LagSeconds != 233 || out.Targets[1].Window != nil {
		t.Errorf("json %s, want db's window with lag_seconds 233 and none on files", js.String())
	}

	stuck := w
	stuck.Waiting, stuck.Oldest, stuck.WaitingSince = 4, "00000001000000000000002B", w.To.Add(30*time.Second)
	r = base()
	r.AddWindows(map[string]Window{"db": stuck})
	text.Reset()
	if err := RenderText(&text, r, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 archiving stuck", "ARCHIVING STUCK: 4 WAL segments waiting, 00000001000000000000002B since 10:41:37"} {
		if r.Healthy || !strings.Contains(text.String(), want) {
			t.Errorf("healthy %v; text has no %q:\n%s", r.Healthy, want, text.String())
		}
	}

	failed := w
	failed.Error = "target db: info: connection refused"
	if got := WindowText(failed, now); !strings.HasSuffix(got, "; not read: target db: info: connection refused") {
		t.Errorf("window text %q does not say why it was not read", got)
	}
}
