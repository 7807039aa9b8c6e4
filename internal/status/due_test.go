package status

import (
	"testing"
	"time"

	"homelab/internal/lab"
)

// TestDueCache: the remembered results are dueBy's, for each schedule,
// end of the last good backup and zone (a schedule without a zone is read
// in the zone of last, so two zones give two answers).
func TestDueCache(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err) // status_test.go embeds time/tzdata
	}
	last := time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC)
	var c dueCache
	for _, spec := range []string{"0 3 * * *", "CRON_TZ=America/New_York 0 3 * * *", "@every 6h", "0 4 1 * *"} {
		for _, l := range []time.Time{last, last.In(paris), last.Add(time.Hour)} {
			sched, err := lab.ParseSchedule(spec)
			if err != nil {
				t.Fatal(err)
			}
			want, wantOK := dueBy(sched, l)
			for i := range 2 { // computed, then remembered
				got, ok, err := c.get(spec, l)
				if err != nil || ok != wantOK || !got.Equal(want) || got.Location() != want.Location() {
					t.Errorf("%q after %v, call %d: %v %v %v, want %v %v", spec, l, i, got, ok, err, want, wantOK)
				}
			}
		}
	}
	a, _, _ := c.get("0 3 * * *", last)
	b, _, _ := c.get("0 3 * * *", last.In(paris))
	if a.Equal(b) {
		t.Errorf("same due time %v in UTC and in Paris", a)
	}
	if _, _, err := c.get("0 3 * *", last); err == nil {
		t.Error("a bad schedule: no error")
	}
}
