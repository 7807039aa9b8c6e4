package schedule

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the host has

	"github.com/robfig/cron/v3"

	"homelab/internal/lab"
)

var (
	berlin  = mustLoad("Europe/Berlin")
	newYork = mustLoad("America/New_York")
)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at parses an RFC 3339 time (offset included, so DST is never ambiguous)
// and returns it in loc.
func at(s string, loc *time.Location) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.In(loc)
}

func parse(t *testing.T, expr string) cron.Schedule {
	t.Helper()
	sched, err := lab.ParseSchedule(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	return sched
}

func key(s string) Key {
	kind, rest, _ := strings.Cut(s, ":")
	name, typ, _ := strings.Cut(rest, ":")
	return Key{Kind: Kind(kind), Name: name, Type: typ}
}

// spec builds a Spec from "kind:name" and a schedule expression.
func spec(t *testing.T, k, expr string) Spec {
	return Spec{Key: key(k), Expr: expr, Schedule: parse(t, expr)}
}

func lastFrom(m map[string]time.Time) LastSuccess {
	return func(k Key) (time.Time, bool) {
		t, ok := m[k.String()]
		return t, ok
	}
}

// show renders fires as "key slot [catch-up]", slots in RFC 3339 in loc.
func show(fires []Fire, loc *time.Location) []string {
	var out []string
	for _, f := range fires {
		s := f.Key.String() + " " + f.Slot.In(loc).Format(time.RFC3339)
		if f.CatchUp {
			s += " catch-up"
		}
		out = append(out, s)
	}
	return out
}

func TestKeyString(t *testing.T) {
	if got := (Key{Kind: KindBackup, Name: "db"}).String(); got != "backup:db" {
		t.Errorf("String() = %q, want backup:db", got)
	}
	if got := (Key{Kind: KindBackup, Name: "db", Type: "incr"}).String(); got != "backup:db:incr" {
		t.Errorf("String() = %q, want backup:db:incr", got)
	}
}

// step calls Due at now (after Reload, if reload is set) and checks the
// fires and what Next says afterwards ("" = no next time).
type step struct {
	now    string
	reload []Spec
	last   map[string]time.Time // for reload
	want   []string
	next   string
}

func runSteps(t *testing.T, s *Scheduler, loc *time.Location, steps []step) {
	t.Helper()
	for i, st := range steps {
		now := at(st.now, loc)
		if st.reload != nil {
			s.Reload(st.reload, now, lastFromOrNil(st.last))
		}
		if got := show(s.Due(now), loc); !slices.Equal(got, st.want) {
			t.Errorf("step %d: Due(%s) = %q, want %q", i, st.now, got, st.want)
		}
		next := ""
		if n, ok := s.Next(); ok {
			next = n.In(loc).Format(time.RFC3339)
		}
		if next != st.next {
			t.Errorf("step %d: after Due(%s), Next() = %q, want %q", i, st.now, next, st.next)
		}
	}
}

func lastFromOrNil(m map[string]time.Time) LastSuccess {
	if m == nil {
		return nil
	}
	return lastFrom(m)
}

func TestScheduler(t *testing.T) {
	const daily = "0 2 * * *"
	tests := []struct {
		name  string
		specs []string // "kind:name=expr"
		last  map[string]time.Time
		start string
		steps []step
	}{
		{
			name:  "normal operation",
			specs: []string{"backup:db=" + daily},
			last:  map[string]time.Time{"backup:db": at("2026-01-10T02:00:04+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", next: "2026-01-11T02:00:00+01:00"},
				{now: "2026-01-11T01:59:59+01:00", next: "2026-01-11T02:00:00+01:00"},
				{now: "2026-01-11T02:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00"}, next: "2026-01-12T02:00:00+01:00"},
				{now: "2026-01-11T02:00:30+01:00", next: "2026-01-12T02:00:00+01:00"},
				{now: "2026-01-12T02:00:01+01:00", want: []string{"backup:db 2026-01-12T02:00:00+01:00"}, next: "2026-01-13T02:00:00+01:00"},
			},
		},
		{
			name:  "never succeeded: catch-up once",
			specs: []string{"backup:db=" + daily},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", want: []string{"backup:db 2026-01-10T02:00:00+01:00 catch-up"}, next: "2026-01-11T02:00:00+01:00"},
				{now: "2026-01-10T12:00:01+01:00", next: "2026-01-11T02:00:00+01:00"},
				{now: "2026-01-11T02:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00"}, next: "2026-01-12T02:00:00+01:00"},
			},
		},
		{
			name:  "three days down: one catch-up for the latest slot",
			specs: []string{"backup:db=" + daily},
			last:  map[string]time.Time{"backup:db": at("2026-01-07T02:00:03+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", want: []string{"backup:db 2026-01-10T02:00:00+01:00 catch-up"}, next: "2026-01-11T02:00:00+01:00"},
				{now: "2026-01-10T13:00:00+01:00", next: "2026-01-11T02:00:00+01:00"},
			},
		},
		{
			name:  "last success one second before the slot: pending",
			specs: []string{"backup:db=" + daily},
			last:  map[string]time.Time{"backup:db": at("2026-01-10T01:59:59+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", want: []string{"backup:db 2026-01-10T02:00:00+01:00 catch-up"}, next: "2026-01-11T02:00:00+01:00"},
			},
		},
		{
			name:  "last success at the slot: not pending",
			specs: []string{"backup:db=" + daily},
			last:  map[string]time.Time{"backup:db": at("2026-01-10T02:00:00+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", next: "2026-01-11T02:00:00+01:00"},
			},
		},
		{
			name:  "pending and the next slot due at once: one fire",
			specs: []string{"backup:db=" + daily},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-11T03:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00 catch-up"}, next: "2026-01-12T02:00:00+01:00"},
			},
		},
		{
			name:  "forward clock jump over four slots: one fire",
			specs: []string{"backup:db=" + daily},
			last:  map[string]time.Time{"backup:db": at("2026-01-10T02:00:05+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-14T08:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00 catch-up"}, next: "2026-01-15T02:00:00+01:00"},
				{now: "2026-01-14T08:00:01+01:00", next: "2026-01-15T02:00:00+01:00"},
			},
		},
		{
			name:  "backward clock jump: the fired slot is not fired again",
			specs: []string{"backup:db=" + daily},
			last:  map[string]time.Time{"backup:db": at("2026-01-10T02:00:05+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-11T02:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00"}, next: "2026-01-12T02:00:00+01:00"},
				{now: "2026-01-11T01:00:00+01:00", next: "2026-01-12T02:00:00+01:00"}, // back an hour
				{now: "2026-01-11T02:00:00+01:00", next: "2026-01-12T02:00:00+01:00"},
				{now: "2026-01-10T02:00:00+01:00", next: "2026-01-12T02:00:00+01:00"}, // back a day
				{now: "2026-01-12T02:00:00+01:00", want: []string{"backup:db 2026-01-12T02:00:00+01:00"}, next: "2026-01-13T02:00:00+01:00"},
			},
		},
		{
			name: "order: by due time, then key",
			specs: []string{
				"check:repo=" + daily,
				"backup:db=" + daily,
				"drill:db=" + daily,
				"backup:app=0 1 * * *",
			},
			last: map[string]time.Time{
				"check:repo": at("2026-01-10T02:00:00+01:00", berlin),
				"backup:db":  at("2026-01-10T02:00:00+01:00", berlin),
				"drill:db":   at("2026-01-10T02:00:00+01:00", berlin),
				"backup:app": at("2026-01-10T01:00:00+01:00", berlin),
			},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-11T03:00:00+01:00", want: []string{
					"backup:app 2026-01-11T01:00:00+01:00",
					"backup:db 2026-01-11T02:00:00+01:00",
					"check:repo 2026-01-11T02:00:00+01:00",
					"drill:db 2026-01-11T02:00:00+01:00",
				}, next: "2026-01-12T01:00:00+01:00"},
			},
		},
		{
			// The daemon keeps the largest type of one target (a full
			// wins); the scheduler fires each at its own slots.
			name:  "typed backups of one target",
			specs: []string{"backup:db:full=0 0 * * 0", "backup:db:incr=0 */4 * * *"},
			last: map[string]time.Time{
				"backup:db:full": at("2026-01-11T00:00:05+01:00", berlin),
				"backup:db:incr": at("2026-01-17T20:00:05+01:00", berlin),
			},
			start: "2026-01-17T21:00:00+01:00", // a Saturday
			steps: []step{
				{now: "2026-01-18T00:00:00+01:00", want: []string{"backup:db:full 2026-01-18T00:00:00+01:00", "backup:db:incr 2026-01-18T00:00:00+01:00"}, next: "2026-01-18T04:00:00+01:00"},
				{now: "2026-01-18T04:00:00+01:00", want: []string{"backup:db:incr 2026-01-18T04:00:00+01:00"}, next: "2026-01-18T08:00:00+01:00"},
			},
		},
		{
			// Prev of "@every 5s" is now (12 steps of 5s from now-1m):
			// a job that never succeeded runs at once.
			name:  "@every 5s, never succeeded",
			specs: []string{"backup:db=@every 5s"},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", want: []string{"backup:db 2026-01-10T12:00:00+01:00 catch-up"}, next: "2026-01-10T12:00:05+01:00"},
				{now: "2026-01-10T12:00:04+01:00", next: "2026-01-10T12:00:05+01:00"},
				{now: "2026-01-10T12:00:05+01:00", want: []string{"backup:db 2026-01-10T12:00:05+01:00"}, next: "2026-01-10T12:00:10+01:00"},
				// The daemon woke 2s late: "@every" counts from the fire.
				{now: "2026-01-10T12:00:12+01:00", want: []string{"backup:db 2026-01-10T12:00:10+01:00"}, next: "2026-01-10T12:00:17+01:00"},
				{now: "2026-01-10T12:00:31+01:00", want: []string{"backup:db 2026-01-10T12:00:17+01:00 catch-up"}, next: "2026-01-10T12:00:36+01:00"},
			},
		},
		{
			name:  "@every 5s, succeeded 3s ago: not pending",
			specs: []string{"backup:db=@every 5s"},
			last:  map[string]time.Time{"backup:db": at("2026-01-10T11:59:57+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", next: "2026-01-10T12:00:05+01:00"},
				{now: "2026-01-10T12:00:05+01:00", want: []string{"backup:db 2026-01-10T12:00:05+01:00"}, next: "2026-01-10T12:00:10+01:00"},
			},
		},
		{
			name:  "@every 5s, succeeded 6s ago: pending",
			specs: []string{"backup:db=@every 5s"},
			last:  map[string]time.Time{"backup:db": at("2026-01-10T11:59:54+01:00", berlin)},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", want: []string{"backup:db 2026-01-10T12:00:00+01:00 catch-up"}, next: "2026-01-10T12:00:05+01:00"},
			},
		},
		{
			name:  "a schedule that never fires",
			specs: []string{"backup:db=0 0 30 2 *"},
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{
				{now: "2026-01-10T12:00:00+01:00", next: ""},
				{now: "2031-01-10T12:00:00+01:00", next: ""},
			},
		},
		{
			name:  "no jobs",
			start: "2026-01-10T12:00:00+01:00",
			steps: []step{{now: "2026-01-10T12:00:00+01:00", next: ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var specs []Spec
			for _, s := range tt.specs {
				k, expr, _ := strings.Cut(s, "=")
				specs = append(specs, spec(t, k, expr))
			}
			s := New(specs, at(tt.start, berlin), lastFrom(tt.last))
			runSteps(t, s, berlin, tt.steps)
		})
	}
}

// TestRobfigDST pins what robfig/cron's Next does at DST transitions; the
// corrections in nextSlot depend on it.
func TestRobfigDST(t *testing.T) {
	tests := []struct {
		name, expr string
		loc        *time.Location
		from, want string
	}{
		// Spring-forward: 02:30 does not exist on 2026-03-29 in Berlin,
		// and Next skips the whole day.
		{"berlin daily in the gap", "30 2 * * *", berlin, "2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"},
		{"berlin hourly over the gap", "30 * * * *", berlin, "2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"},
		// Fall-back: 01:30 happens twice on 2026-11-01 in New York, and
		// Next returns both.
		{"new york daily in the repeat", "30 1 * * *", newYork, "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"},
		{"new york daily after the repeat", "30 1 * * *", newYork, "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parse(t, tt.expr).Next(at(tt.from, tt.loc))
			if want := at(tt.want, tt.loc); !got.Equal(want) {
				t.Errorf("Next(%s) = %s, want %s", tt.from, got.Format(time.RFC3339), tt.want)
			}
		})
	}
}

// simulate runs the daemon's loop (sleep until Next, then Due) from start
// to end and returns every fire.
func simulate(t *testing.T, s *Scheduler, start, end time.Time) []Fire {
	t.Helper()
	var fires []Fire
	now := start
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("simulate: no progress")
		}
		next, ok := s.Next()
		if !ok || next.After(end) {
			return fires
		}
		if next.After(now) {
			now = next
		}
		fs := s.Due(now)
		if len(fs) == 0 {
			t.Fatalf("simulate: nothing due at %s, though Next said so", now)
		}
		fires = append(fires, fs...)
	}
}

func TestDST(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		name       string
		expr       string
		loc        *time.Location // of the times passed in
		start, end string         // the job last succeeded at start
		want       []string
	}{
		{
			name: "spring-forward: a daily slot in the gap fires once, at the end of the gap",
			expr: "30 2 * * *", loc: berlin,
			start: "2026-03-27T12:00:00+01:00", end: "2026-03-31T12:00:00+02:00",
			want: []string{
				"backup:db 2026-03-28T02:30:00+01:00",
				"backup:db 2026-03-29T03:00:00+02:00",
				"backup:db 2026-03-30T02:30:00+02:00",
				"backup:db 2026-03-31T02:30:00+02:00",
			},
		},
		{
			name: "spring-forward: a daily slot after the gap is untouched",
			expr: "0 3 * * *", loc: berlin,
			start: "2026-03-27T12:00:00+01:00", end: "2026-03-30T12:00:00+02:00",
			want: []string{
				"backup:db 2026-03-28T03:00:00+01:00",
				"backup:db 2026-03-29T03:00:00+02:00",
				"backup:db 2026-03-30T03:00:00+02:00",
			},
		},
		{
			name: "spring-forward: each listed hour fires once",
			expr: "30 1-3 * * *", loc: berlin,
			start: "2026-03-29T00:00:00+01:00", end: "2026-03-29T12:00:00+02:00",
			want: []string{
				"backup:db 2026-03-29T01:30:00+01:00",
				"backup:db 2026-03-29T03:00:00+02:00",
				"backup:db 2026-03-29T03:30:00+02:00",
			},
		},
		{
			name: "spring-forward: an every-hour spec skips the missing hour",
			expr: "30 * * * *", loc: berlin,
			start: "2026-03-29T00:15:00+01:00", end: "2026-03-29T04:00:00+02:00",
			want: []string{
				"backup:db 2026-03-29T00:30:00+01:00",
				"backup:db 2026-03-29T01:30:00+01:00",
				"backup:db 2026-03-29T03:30:00+02:00",
			},
		},
		{
			name: "spring-forward with CRON_TZ, times in UTC",
			expr: "CRON_TZ=Europe/Berlin 30 2 * * *", loc: utc,
			start: "2026-03-28T12:00:00Z", end: "2026-03-30T12:00:00Z",
			want: []string{
				"backup:db 2026-03-29T01:00:00Z",
				"backup:db 2026-03-30T00:30:00Z",
			},
		},
		{
			name: "fall-back: a daily slot in the repeated hour fires once",
			expr: "30 1 * * *", loc: newYork,
			start: "2026-10-30T12:00:00-04:00", end: "2026-11-03T12:00:00-05:00",
			want: []string{
				"backup:db 2026-10-31T01:30:00-04:00",
				"backup:db 2026-11-01T01:30:00-04:00",
				"backup:db 2026-11-02T01:30:00-05:00",
				"backup:db 2026-11-03T01:30:00-05:00",
			},
		},
		{
			name: "fall-back: two slots in the repeated hour fire once each",
			expr: "0,30 1 * * *", loc: newYork,
			start: "2026-10-31T12:00:00-04:00", end: "2026-11-01T12:00:00-05:00",
			want: []string{
				"backup:db 2026-11-01T01:00:00-04:00",
				"backup:db 2026-11-01T01:30:00-04:00",
			},
		},
		{
			name: "fall-back with CRON_TZ, times in UTC",
			expr: "CRON_TZ=America/New_York 30 1 * * *", loc: utc,
			start: "2026-10-31T12:00:00Z", end: "2026-11-02T12:00:00Z",
			want: []string{
				"backup:db 2026-11-01T05:30:00Z",
				"backup:db 2026-11-02T06:30:00Z",
			},
		},
		{
			name: "fall-back: an every-hour spec fires in both copies of the hour",
			expr: "*/30 * * * *", loc: newYork,
			start: "2026-11-01T00:45:00-04:00", end: "2026-11-01T02:10:00-05:00",
			want: []string{
				"backup:db 2026-11-01T01:00:00-04:00",
				"backup:db 2026-11-01T01:30:00-04:00",
				"backup:db 2026-11-01T01:00:00-05:00",
				"backup:db 2026-11-01T01:30:00-05:00",
				"backup:db 2026-11-01T02:00:00-05:00",
			},
		},
		{
			name: "fall-back: @every 1h is elapsed time",
			expr: "@every 1h", loc: newYork,
			start: "2026-11-01T00:00:00-04:00", end: "2026-11-01T02:00:00-05:00",
			want: []string{
				"backup:db 2026-11-01T01:00:00-04:00",
				"backup:db 2026-11-01T01:00:00-05:00",
				"backup:db 2026-11-01T02:00:00-05:00",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := at(tt.start, tt.loc), at(tt.end, tt.loc)
			s := New([]Spec{spec(t, "backup:db", tt.expr)}, start, lastFrom(map[string]time.Time{"backup:db": start}))
			got := show(simulate(t, s, start, end), tt.loc)
			if !slices.Equal(got, tt.want) {
				t.Errorf("fires:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestReload(t *testing.T) {
	db := func(t *testing.T) Spec { return spec(t, "backup:db", "0 2 * * *") }
	repo := func(t *testing.T) Spec { return spec(t, "check:repo", "0 3 * * *") }
	succeeded := map[string]time.Time{
		"backup:db":  at("2026-01-10T02:00:00+01:00", berlin),
		"check:repo": at("2026-01-10T03:00:00+01:00", berlin),
	}
	tests := []struct {
		name  string
		steps func(t *testing.T) []step
	}{
		{
			name: "unchanged job keeps its state: no second fire of the slot",
			steps: func(t *testing.T) []step {
				return []step{
					{now: "2026-01-11T02:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00"}, next: "2026-01-11T03:00:00+01:00"},
					// The run is still going, so the catalog has no newer success.
					{now: "2026-01-11T02:00:00+01:00", reload: []Spec{db(t), repo(t)}, last: succeeded, next: "2026-01-11T03:00:00+01:00"},
				}
			},
		},
		{
			name: "changed job is set up anew, with catch-up",
			steps: func(t *testing.T) []step {
				return []step{
					{now: "2026-01-11T02:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00"}, next: "2026-01-11T03:00:00+01:00"},
					{now: "2026-01-11T02:30:00+01:00", reload: []Spec{spec(t, "backup:db", "0 1 * * *"), repo(t)}, last: succeeded,
						want: []string{"backup:db 2026-01-11T01:00:00+01:00 catch-up"}, next: "2026-01-11T03:00:00+01:00"},
				}
			},
		},
		{
			name: "changed jitter is a changed job",
			steps: func(t *testing.T) []step {
				jittered := db(t)
				jittered.Jitter = time.Minute
				return []step{
					{now: "2026-01-11T02:00:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00"}, next: "2026-01-11T03:00:00+01:00"},
					{now: "2026-01-11T02:30:00+01:00", reload: []Spec{jittered, repo(t)}, last: map[string]time.Time{},
						want: []string{"backup:db 2026-01-11T02:00:00+01:00 catch-up"},
						next: "2026-01-11T03:00:00+01:00"},
				}
			},
		},
		{
			name: "new job added, removed job dropped",
			steps: func(t *testing.T) []step {
				return []step{
					{now: "2026-01-10T12:00:00+01:00", reload: []Spec{db(t), spec(t, "drill:db", "0 4 * * *")}, last: succeeded,
						want: []string{"drill:db 2026-01-10T04:00:00+01:00 catch-up"}, next: "2026-01-11T02:00:00+01:00"},
					{now: "2026-01-11T03:30:00+01:00", want: []string{"backup:db 2026-01-11T02:00:00+01:00"}, next: "2026-01-11T04:00:00+01:00"},
				}
			},
		},
		{
			name: "reload to nothing",
			steps: func(t *testing.T) []step {
				return []step{{now: "2026-01-10T12:00:00+01:00", reload: []Spec{}, next: ""}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New([]Spec{db(t), repo(t)}, at("2026-01-10T12:00:00+01:00", berlin), lastFrom(succeeded))
			runSteps(t, s, berlin, tt.steps(t))
		})
	}
}

func TestEntries(t *testing.T) {
	now := at("2026-01-10T12:00:00+01:00", berlin)
	s := New([]Spec{
		spec(t, "check:repo", "0 3 * * *"),
		spec(t, "backup:db", "0 2 * * *"),
		spec(t, "backup:app", "0 0 30 2 *"),
	}, now, lastFrom(map[string]time.Time{"backup:db": now}))
	s.Due(now)
	s.Due(at("2026-01-11T02:00:00+01:00", berlin))
	got := fmt.Sprint(s.Entries())
	want := fmt.Sprint([]Entry{
		{Key: key("backup:app"), Expr: "0 0 30 2 *"},
		{Key: key("backup:db"), Expr: "0 2 * * *", Next: at("2026-01-12T02:00:00+01:00", berlin), LastFired: at("2026-01-11T02:00:00+01:00", berlin)},
		{Key: key("check:repo"), Expr: "0 3 * * *", Next: at("2026-01-11T03:00:00+01:00", berlin), LastFired: at("2026-01-10T03:00:00+01:00", berlin)},
	})
	if got != want {
		t.Errorf("Entries() =\n%s\nwant\n%s", got, want)
	}
	s.Reload(nil, now, nil)
	if es := s.Entries(); len(es) != 0 {
		t.Errorf("after Reload(nil): Entries() = %v, want none", es)
	}
}

func TestJitter(t *testing.T) {
	slot := at("2026-01-11T02:00:00+01:00", berlin)
	keys := []Key{key("backup:db"), key("backup:app"), key("check:repo"), key("drill:db")}
	tests := []struct {
		name  string
		limit time.Duration
	}{
		{"second", time.Second},
		{"ten minutes", 10 * time.Minute},
		{"hour", time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[time.Duration]Key{}
			for _, k := range keys {
				for d := range 30 {
					slot := slot.AddDate(0, 0, d)
					off := Jitter(k, slot, tt.limit)
					if off < 0 || off >= tt.limit {
						t.Errorf("Jitter(%s, %s, %s) = %s, outside [0, %s)", k, slot, tt.limit, off, tt.limit)
					}
					if again := Jitter(k, slot, tt.limit); again != off {
						t.Errorf("Jitter(%s, %s) not stable: %s then %s", k, slot, off, again)
					}
				}
				off := Jitter(k, slot, tt.limit)
				if other, ok := seen[off]; ok {
					t.Errorf("Jitter(%s) = Jitter(%s) = %s", k, other, off)
				}
				seen[off] = k
			}
		})
	}
	if off := Jitter(keys[0], slot, 0); off != 0 {
		t.Errorf("Jitter(limit 0) = %s, want 0", off)
	}
}

func TestJitterScheduling(t *testing.T) {
	const limit = 10 * time.Minute
	start := at("2026-01-10T12:00:00+01:00", berlin)
	slot := at("2026-01-11T02:00:00+01:00", berlin)
	k := key("backup:db")
	fireAt := slot.Add(Jitter(k, slot, limit))
	if fireAt.Equal(slot) {
		t.Fatal("test needs a non-zero offset")
	}
	tests := []struct {
		name string
		last map[string]time.Time
		now  time.Time
		want []string
	}{
		{"before the offset", map[string]time.Time{"backup:db": start}, fireAt.Add(-time.Nanosecond), nil},
		{"at the offset", map[string]time.Time{"backup:db": start}, fireAt, []string{"backup:db 2026-01-11T02:00:00+01:00"}},
		{"catch-up has no jitter", nil, start, []string{"backup:db 2026-01-10T02:00:00+01:00 catch-up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := spec(t, "backup:db", "0 2 * * *")
			sp.Jitter = limit
			s := New([]Spec{sp}, start, lastFrom(tt.last))
			if tt.last != nil {
				if next, _ := s.Next(); !next.Equal(fireAt) {
					t.Errorf("Next() = %s, want %s", next, fireAt)
				}
			}
			if got := show(s.Due(tt.now), berlin); !slices.Equal(got, tt.want) {
				t.Errorf("Due(%s) = %q, want %q", tt.now, got, tt.want)
			}
		})
	}
}

// counting counts calls to Next.
type counting struct {
	cron.Schedule
	calls int
}

func (c *counting) Next(t time.Time) time.Time {
	c.calls++
	return c.Schedule.Next(t)
}

func TestPrev(t *testing.T) {
	tests := []struct {
		name, expr, now string
		want            string // "" = none
		maxCalls        int
	}{
		{"daily", "0 2 * * *", "2026-01-10T12:00:00+01:00", "2026-01-10T02:00:00+01:00", 10},
		{"at the slot", "0 2 * * *", "2026-01-10T02:00:00+01:00", "2026-01-10T02:00:00+01:00", 10},
		{"just before the slot", "0 2 * * *", "2026-01-10T01:59:59+01:00", "2026-01-09T02:00:00+01:00", 10},
		{"CRON_TZ", "CRON_TZ=America/New_York 0 2 * * *", "2026-01-10T12:00:00+01:00", "2026-01-10T08:00:00+01:00", 10},
		{"yearly", "0 0 1 1 *", "2026-06-15T12:00:00+02:00", "2026-01-01T00:00:00+01:00", 10},
		{"leap day", "0 0 29 2 *", "2026-06-15T12:00:00+02:00", "2024-02-29T00:00:00+01:00", 10},
		{"@every 5s", "@every 5s", "2026-01-10T12:00:00+01:00", "2026-01-10T12:00:00+01:00", 20},
		{"@every 7s", "@every 7s", "2026-01-10T12:00:00+01:00", "2026-01-10T11:59:56+01:00", 20},
		{"@every 1s, far future", "@every 1s", "2999-01-01T00:00:00+01:00", "2999-01-01T00:00:00+01:00", 70},
		{"never fires in 5y", "0 0 30 2 *", "2026-01-10T12:00:00+01:00", "", len(lookBack)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched := &counting{Schedule: parse(t, tt.expr)}
			p, ok := Prev(sched, at(tt.now, berlin))
			got := ""
			if ok {
				got = p.In(berlin).Format(time.RFC3339)
			}
			if got != tt.want {
				t.Errorf("Prev(%s) = %q, want %q", tt.now, got, tt.want)
			}
			if sched.calls > tt.maxCalls {
				t.Errorf("Prev(%s) called Next %d times, want at most %d", tt.now, sched.calls, tt.maxCalls)
			}
		})
	}
}
