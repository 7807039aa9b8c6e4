package status

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // CRON_TZ and clock zones without a system zoneinfo

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
	"homelab/internal/lab"
)

// epoch is the fixed "now" of the tests: a Monday morning.
var epoch = time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)

// at is epoch plus h hours and m minutes (negative for the past).
func at(h, m int) time.Time {
	return epoch.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

func openCatalog(t *testing.T) *catalog.SQLite {
	t.Helper()
	s, err := catalog.Open(t.Context(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// run is a backup run to record: it ends at end after taking 5 minutes
// (a running run started at end).
type run struct {
	result catalog.Result
	end    time.Time
	bytes  int64
	err    string
}

func addRuns(t *testing.T, s catalog.Store, target string, runs ...run) {
	t.Helper()
	for i, r := range runs {
		cr := catalog.Run{
			RunID: fmt.Sprintf("%s-%d", target, i), Kind: catalog.KindBackup, Target: target,
			SnapshotID: fmt.Sprintf("%08x", i+1), Start: r.end.Add(-5 * time.Minute), End: r.end,
			Bytes: r.bytes, BytesAdded: r.bytes / 10, Files: 42, Result: r.result, Error: r.err,
		}
		if r.result == catalog.ResultRunning {
			cr.Start, cr.End = r.end, time.Time{}
		}
		if _, err := s.StartRun(t.Context(), cr); err != nil {
			t.Fatal(err)
		}
	}
}

// drill is a restore drill to record, ending at end.
type drill struct {
	result catalog.Result
	end    time.Time
	rto    time.Duration
	err    string
}

func addDrills(t *testing.T, s catalog.Store, target string, drills ...drill) {
	t.Helper()
	for i, d := range drills {
		if _, err := s.RecordDrill(t.Context(), catalog.Drill{
			RunID: fmt.Sprintf("%s-drill-%d", target, i), Target: target, SnapshotID: "00000001",
			Start: d.end.Add(-d.rto - time.Second), End: d.end, RTO: d.rto, Result: d.result, Error: d.err,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// oneTarget is a lab with one restic target "files" on schedule.
func oneTarget(schedule string) *lab.Lab {
	return &lab.Lab{
		Name:         "devlab",
		Repositories: map[string]*lab.Repository{"local": {Name: "local", URL: "/srv/restic", PasswordFile: "/etc/pass"}},
		Backups: map[string]*lab.Backup{"files": {
			Name: "files", Provider: lab.ProviderRestic, Repository: "local", Schedule: schedule,
		}},
	}
}

func TestBuildTarget(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	ok := catalog.ResultOK
	failed := catalog.ResultFailed
	tests := []struct {
		name     string
		schedule string
		now      time.Time // epoch when zero
		runs     []run
		drills   []drill
		// want
		state       string
		overdue     bool
		due         time.Time // zero: DueBy nil
		healthy     bool
		lastRunID   string
		lastGoodID  string
		lastDrillOK bool
	}{
		{
			name: "ok: backed up after today's slot", schedule: "0 2 * * *",
			runs:  []run{{result: ok, end: at(-24, 0)}, {result: ok, end: at(-8, -10)}}, // 02:05 today
			state: StateOK, due: time.Date(2026, 11, 24, 4, 24, 0, 0, time.UTC), healthy: true,
			lastRunID: "files-1", lastGoodID: "files-1",
		},
		{
			name: "overdue: today's 02:00 slot missed", schedule: "0 2 * * *",
			runs:  []run{{result: ok, end: at(-32, -10)}}, // 02:05 yesterday
			state: StateOverdue, overdue: true, due: time.Date(2026, 11, 23, 4, 24, 0, 0, time.UTC),
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			name: "slot missed but within 10% grace", schedule: "0 9 * * *",
			runs:  []run{{result: ok, end: at(-25, -11)}}, // 09:04 yesterday; slot 09:00 today, due 11:24
			state: StateOK, due: time.Date(2026, 11, 23, 11, 24, 0, 0, time.UTC), healthy: true,
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			name: "hourly: within the 10 minute floor", schedule: "10 * * * *",
			runs:  []run{{result: ok, end: at(-1, -3)}}, // 09:12; slot 10:10, due 10:20
			state: StateOK, due: at(0, 5), healthy: true,
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			name: "hourly: due exactly now is not yet overdue", schedule: "5 * * * *",
			runs:  []run{{result: ok, end: at(-1, -8)}}, // 09:07; slot 10:05, due 10:15
			state: StateOK, due: epoch, healthy: true,
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			name: "hourly: past the 10 minute floor", schedule: "0 * * * *",
			runs:  []run{{result: ok, end: at(-1, -13)}}, // 09:02; slot 10:00, due 10:10
			state: StateOverdue, overdue: true, due: at(0, -5),
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			name: "@every descriptor", schedule: "@every 6h",
			runs:  []run{{result: ok, end: at(-7, 0)}}, // next at -1h, grace 36m
			state: StateOverdue, overdue: true, due: at(-1, 36),
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			name: "never backed up", schedule: "0 2 * * *",
			state: StateNever, overdue: true,
		},
		{
			name: "never backed up ok, only failures", schedule: "0 2 * * *",
			runs:  []run{{result: failed, end: at(-8, 0), err: "boom"}},
			state: StateNever, overdue: true, lastRunID: "files-0",
		},
		{
			name: "manual, never run", schedule: "",
			state: StateManual, healthy: true,
		},
		{
			name: "manual, backed up long ago", schedule: "",
			runs:  []run{{result: ok, end: at(-24*90, 0)}},
			state: StateOK, healthy: true, lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			name: "manual, last run failed", schedule: "",
			runs:  []run{{result: ok, end: at(-48, 0)}, {result: failed, end: at(-1, 0)}},
			state: StateFailing, lastRunID: "files-1", lastGoodID: "files-0",
		},
		{
			name: "failing within RPO", schedule: "0 2 * * *",
			runs:  []run{{result: ok, end: at(-8, -10)}, {result: failed, end: at(-1, 0), err: "restic: exit status 1"}},
			state: StateFailing, due: time.Date(2026, 11, 24, 4, 24, 0, 0, time.UTC),
			lastRunID: "files-1", lastGoodID: "files-0",
		},
		{
			name: "failing and overdue is overdue", schedule: "0 2 * * *",
			runs:  []run{{result: ok, end: at(-32, -10)}, {result: failed, end: at(-8, 0)}},
			state: StateOverdue, overdue: true, due: time.Date(2026, 11, 23, 4, 24, 0, 0, time.UTC),
			lastRunID: "files-1", lastGoodID: "files-0",
		},
		{
			name: "partial counts as good", schedule: "0 2 * * *",
			runs:  []run{{result: ok, end: at(-32, -10)}, {result: catalog.ResultPartial, end: at(-8, -10)}},
			state: StateOK, due: time.Date(2026, 11, 24, 4, 24, 0, 0, time.UTC), healthy: true,
			lastRunID: "files-1", lastGoodID: "files-1",
		},
		{
			name: "interrupted after a good backup is not failing", schedule: "0 2 * * *",
			runs:  []run{{result: ok, end: at(-8, -10)}, {result: catalog.ResultInterrupted, end: at(-1, 0)}},
			state: StateOK, due: time.Date(2026, 11, 24, 4, 24, 0, 0, time.UTC), healthy: true,
			lastRunID: "files-1", lastGoodID: "files-0",
		},
		{
			name: "running now after a good backup", schedule: "0 2 * * *",
			runs:  []run{{result: ok, end: at(-8, -10)}, {result: catalog.ResultRunning, end: at(0, -2)}},
			state: StateOK, due: time.Date(2026, 11, 24, 4, 24, 0, 0, time.UTC), healthy: true,
			lastRunID: "files-1", lastGoodID: "files-0",
		},
		{
			name: "drill ok", schedule: "0 2 * * *",
			runs:   []run{{result: ok, end: at(-8, -10)}},
			drills: []drill{{result: failed, end: at(-48, 0)}, {result: ok, end: at(-2, 0), rto: 4 * time.Second}},
			state:  StateOK, due: time.Date(2026, 11, 24, 4, 24, 0, 0, time.UTC), healthy: true,
			lastRunID: "files-0", lastGoodID: "files-0", lastDrillOK: true,
		},
		{
			name: "last drill failed: not healthy", schedule: "0 2 * * *",
			runs:   []run{{result: ok, end: at(-8, -10)}},
			drills: []drill{{result: ok, end: at(-48, 0), rto: time.Second}, {result: failed, end: at(-2, 0), err: "check failed"}},
			state:  StateOK, due: time.Date(2026, 11, 24, 4, 24, 0, 0, time.UTC),
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			// 02:00 in New York is 07:00 UTC. A backup at 03:00 UTC (22:00
			// in New York) is due by today's New York slot (07:00 UTC) plus
			// 2h24m; read in UTC it would not be due before tomorrow.
			name: "CRON_TZ schedule", schedule: "CRON_TZ=America/New_York 0 2 * * *",
			runs:  []run{{result: ok, end: at(-7, -15)}},
			state: StateOverdue, overdue: true, due: time.Date(2026, 11, 23, 9, 24, 0, 0, time.UTC),
			lastRunID: "files-0", lastGoodID: "files-0",
		},
		{
			// Without CRON_TZ the schedule is read in the clock's zone:
			// 02:00 in Paris is 01:00 UTC. A backup at 02:30 Paris today
			// is due tomorrow at 01:00 UTC plus grace; read in UTC it
			// would have missed today's 02:00 UTC slot.
			name: "schedule in the clock's zone", schedule: "0 2 * * *",
			now:   time.Date(2026, 11, 23, 10, 15, 0, 0, paris),
			runs:  []run{{result: ok, end: time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC)}},
			state: StateOK, due: time.Date(2026, 11, 24, 3, 24, 0, 0, time.UTC), healthy: true,
			lastRunID: "files-0", lastGoodID: "files-0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openCatalog(t)
			addRuns(t, s, "files", tt.runs...)
			addDrills(t, s, "files", tt.drills...)
			now := tt.now
			if now.IsZero() {
				now = epoch
			}
			r, err := Build(t.Context(), oneTarget(tt.schedule), s, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Targets) != 1 {
				t.Fatalf("got %d targets, want 1", len(r.Targets))
			}
			ts := r.Targets[0]
			if ts.State != tt.state || ts.Overdue != tt.overdue {
				t.Errorf("state %q overdue %v, want %q %v", ts.State, ts.Overdue, tt.state, tt.overdue)
			}
			switch {
			case tt.due.IsZero() && ts.DueBy != nil:
				t.Errorf("due by %v, want nil", ts.DueBy)
			case !tt.due.IsZero() && (ts.DueBy == nil || !ts.DueBy.Equal(tt.due)):
				t.Errorf("due by %v, want %v", ts.DueBy, tt.due)
			}
			if r.Healthy != tt.healthy {
				t.Errorf("healthy %v, want %v", r.Healthy, tt.healthy)
			}
			if want := btoi(tt.overdue); r.Overdue != want {
				t.Errorf("report overdue %d, want %d", r.Overdue, want)
			}
			if got := runID(ts.LastRun); got != tt.lastRunID {
				t.Errorf("last run %q, want %q", got, tt.lastRunID)
			}
			if got := runID(ts.LastGood); got != tt.lastGoodID {
				t.Errorf("last good %q, want %q", got, tt.lastGoodID)
			}
			if len(tt.drills) == 0 {
				if ts.LastDrill != nil {
					t.Errorf("last drill %+v, want nil", ts.LastDrill)
				}
			} else if ts.LastDrill == nil || (ts.LastDrill.Result == catalog.ResultOK) != tt.lastDrillOK {
				t.Errorf("last drill %+v, want ok=%v", ts.LastDrill, tt.lastDrillOK)
			}
			if ts.Name != "files" || ts.Provider != "restic" || ts.Repository != "local" || ts.Schedule != tt.schedule {
				t.Errorf("identity %q %q %q %q", ts.Name, ts.Provider, ts.Repository, ts.Schedule)
			}
			if !r.Generated.Equal(now) || r.Lab != "devlab" {
				t.Errorf("report %q at %v", r.Lab, r.Generated)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func runID(r *catalog.Run) string {
	if r == nil {
		return ""
	}
	return r.RunID
}

func TestBuildSeveralTargets(t *testing.T) {
	s := openCatalog(t)
	l := oneTarget("0 2 * * *")
	l.Backups["db"] = &lab.Backup{Name: "db", Provider: lab.ProviderPostgres, Repository: "local", Schedule: "0 3 * * *"}
	l.Backups["adhoc"] = &lab.Backup{Name: "adhoc", Provider: lab.ProviderRestic, Repository: "local"}
	addRuns(t, s, "files", run{result: catalog.ResultOK, end: at(-8, -10)})
	addRuns(t, s, "db", run{result: catalog.ResultOK, end: at(-56, 0)})
	// Runs of a target no longer in the lab are ignored.
	addRuns(t, s, "gone", run{result: catalog.ResultFailed, end: at(-1, 0)})

	r, err := Build(t.Context(), l, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ts := range r.Targets {
		got = append(got, ts.Name+"="+ts.State)
	}
	if want := "[adhoc=manual db=overdue files=ok]"; fmt.Sprint(got) != want {
		t.Errorf("targets %v, want %s", got, want)
	}
	if r.Overdue != 1 || r.Healthy {
		t.Errorf("overdue %d healthy %v, want 1 false", r.Overdue, r.Healthy)
	}
}

// typedRun is a run of a pgbackrest target with per-type schedules, as
// the backup manager records it: a run ID naming the type asked for
// (backup.TypedRunID) and, when it made one, the backup's label.
type typedRun struct {
	typ    string // full, diff, incr
	result catalog.Result
	end    time.Time
}

func addTypedRuns(t testing.TB, s catalog.Store, target string, runs ...typedRun) {
	t.Helper()
	for i, r := range runs {
		cr := catalog.Run{
			RunID: backup.TypedRunID(fmt.Sprintf("%s-%d", target, i), r.typ), Kind: catalog.KindBackup, Target: target,
			Provider: lab.ProviderPgBackRest, Start: r.end.Add(-5 * time.Minute), End: r.end, Result: r.result,
		}
		if r.result == catalog.ResultFailed {
			cr.Error = "target " + target + ": " + r.typ + " backup: exit 82"
		} else {
			full := r.end.Add(-5 * time.Minute).Format("20060102-150405")
			cr.SnapshotID = map[string]string{"full": full + "F", "diff": full + "F_" + full + "D", "incr": full + "F_" + full + "I"}[r.typ]
		}
		if _, err := s.StartRun(t.Context(), cr); err != nil {
			t.Fatal(err)
		}
	}
}

// typedLab is a lab with pgbackrest target db on per-type schedules: a
// weekly full on Mondays at 01:00, an incr every 4 hours.
func typedLab() *lab.Lab {
	return &lab.Lab{Name: "devlab", Backups: map[string]*lab.Backup{"db": {Name: "db", Provider: lab.ProviderPgBackRest,
		PgBackRest: &lab.PgBackRest{Schedules: lab.PgBackRestSchedules{Full: "0 1 * * 1", Incr: "0 */4 * * *"}}}}}
}

// TestBuildTypedSchedules: a pgbackrest target backed up on per-type
// schedules only (no schedule of its own) is due by the soonest of them:
// the incr every 4 hours, not the weekly full.
func TestBuildTypedSchedules(t *testing.T) {
	s := openCatalog(t)
	l := typedLab()
	addTypedRuns(t, s, "db", typedRun{"full", catalog.ResultOK, at(-10, -10)}) // 00:05: the 04:00 and 08:00 incr slots missed
	r, err := Build(t.Context(), l, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	ts := r.Targets[0]
	// The 04:00 slot, plus 10% of the 4-hour interval.
	if want := time.Date(2026, 11, 23, 4, 24, 0, 0, time.UTC); ts.State != StateOverdue || ts.DueBy == nil || !ts.DueBy.Equal(want) {
		t.Errorf("state %s due %v, want overdue, due %s", ts.State, ts.DueBy, want)
	}
	if got := fmt.Sprint(ts.TypeProblems()); got != "[incr overdue]" {
		t.Errorf("problems %s, want [incr overdue]", got)
	}
	if ts.Schedule != "0 1 * * 1, 0 */4 * * *" {
		t.Errorf("schedule %q", ts.Schedule)
	}
}

// TestBuildTypedFullFailing: the weekly full of Monday 01:00 failed, and
// the incr backups since succeeded. The incr does not hold a full: the
// target stays failing, for its full, until a full succeeds; its due is
// the full's (a week after the last good full, plus 10%).
func TestBuildTypedFullFailing(t *testing.T) {
	s := openCatalog(t)
	l := typedLab()
	addTypedRuns(t, s, "db",
		typedRun{"full", catalog.ResultOK, at(-7*24-9, -10)},   // last Monday 01:05
		typedRun{"incr", catalog.ResultFailed, at(-7*24-5, 0)}, // cleared by the full below
		typedRun{"full", catalog.ResultFailed, at(-9, -10)},    // today 01:05
		typedRun{"incr", catalog.ResultOK, at(-2, -10)},        // today 08:05
	)
	r, err := Build(t.Context(), l, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	ts := r.Targets[0]
	if ts.State != StateFailing || ts.Overdue || !ts.Failed() || r.Healthy {
		t.Fatalf("state %s overdue %v failed %v healthy %v, want failing, not overdue, failed, unhealthy", ts.State, ts.Overdue, ts.Failed(), r.Healthy)
	}
	if got := fmt.Sprint(ts.TypeProblems()); got != "[full failing]" {
		t.Errorf("problems %s, want [full failing]", got)
	}
	full, incr := ts.Types[0], ts.Types[1]
	if full.Type != "full" || full.Failed == nil || full.LastGood == nil || !full.LastGood.End.Equal(at(-7*24-9, -10)) {
		t.Errorf("full %+v, want failing, last good a week ago", full)
	}
	if incr.Type != "incr" || incr.State != StateOK || incr.Failed != nil || !incr.LastGood.End.Equal(at(-2, -10)) {
		t.Errorf("incr %+v, want ok, last good today 08:05", incr)
	}
	// Today 01:00, plus 10% of a week.
	if due, want := ts.ProblemDue(), time.Date(2026, 11, 23, 17, 48, 0, 0, time.UTC); due == nil || !due.Equal(want) {
		t.Errorf("due %v, want %s", due, want)
	}
	if got, want := stateText(ts, epoch), "FULL FAILING (due in 7h 33m)"; got != want {
		t.Errorf("state text %q, want %q", got, want)
	}

	// A good full clears it.
	addTypedRuns(t, s, "db", typedRun{"full", catalog.ResultOK, at(-1, 0)})
	if r, err = Build(t.Context(), l, s, epoch); err != nil {
		t.Fatal(err)
	}
	if ts := r.Targets[0]; ts.State != StateOK || ts.Failed() || ts.TypeProblems() != nil || !r.Healthy {
		t.Errorf("after a good full: state %s failed %v problems %v healthy %v, want ok", ts.State, ts.Failed(), ts.TypeProblems(), r.Healthy)
	}
}

// TestBuildTypedFullOverdue: the last good full is two weeks old while
// the incr backups are recent: the target is overdue, for its full.
func TestBuildTypedFullOverdue(t *testing.T) {
	s := openCatalog(t)
	l := typedLab()
	addTypedRuns(t, s, "db",
		typedRun{"full", catalog.ResultOK, at(-14*24-9, -10)},
		typedRun{"incr", catalog.ResultOK, at(-2, -10)},
	)
	r, err := Build(t.Context(), l, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	ts := r.Targets[0]
	if ts.State != StateOverdue || !ts.Overdue || r.Overdue != 1 || r.Healthy {
		t.Fatalf("state %s overdue %v (%d) healthy %v, want overdue", ts.State, ts.Overdue, r.Overdue, r.Healthy)
	}
	if got := fmt.Sprint(ts.TypeProblems()); got != "[full overdue]" {
		t.Errorf("problems %s, want [full overdue]", got)
	}
	if ts.Types[1].State != StateOK {
		t.Errorf("incr %s, want ok", ts.Types[1].State)
	}
	// Last Monday 01:00, plus 10% of a week.
	want := time.Date(2026, 11, 16, 17, 48, 0, 0, time.UTC)
	if due := ts.ProblemDue(); due == nil || !due.Equal(want) {
		t.Errorf("due %v, want %s", due, want)
	}
	var js bytes.Buffer
	if err := RenderJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{`"problems":["full overdue"]`, `"type":"full","schedule":"0 1 * * 1","state":"overdue","overdue":true,"due_by":"2026-11-16T17:48:00Z"`} {
		if !strings.Contains(js.String(), sub) {
			t.Errorf("JSON lacks %s:\n%s", sub, js.String())
		}
	}
}

// TestBuildTypedLongHistory: a quarterly full and an hourly incr, whose
// first attempt fails every fifth hour: the good full of October 1st has
// some 1500 runs after it, and a failed full of this morning. The full
// is still seen, failing but not overdue, however many runs came since.
func TestBuildTypedLongHistory(t *testing.T) {
	s := openCatalog(t)
	l := typedLab()
	l.Backups["db"].PgBackRest.Schedules = lab.PgBackRestSchedules{Full: "0 1 1 */3 *", Incr: "5 * * * *"}
	goodFull := time.Date(2026, 10, 1, 1, 10, 0, 0, time.UTC)
	runs := []typedRun{{"full", catalog.ResultOK, goodFull}}
	for end, h := goodFull.Add(time.Hour), 0; end.Before(epoch); end, h = end.Add(time.Hour), h+1 {
		if h%5 == 0 {
			runs = append(runs, typedRun{"incr", catalog.ResultFailed, end.Add(-2 * time.Minute)})
		}
		runs = append(runs, typedRun{"incr", catalog.ResultOK, end})
	}
	failedFull := time.Date(2026, 11, 23, 1, 20, 0, 0, time.UTC) // between the incr of 01:10 and 02:10
	i := slices.IndexFunc(runs, func(r typedRun) bool { return r.end.After(failedFull) })
	runs = slices.Insert(runs, i, typedRun{"full", catalog.ResultFailed, failedFull})
	if len(runs) < 1500 {
		t.Fatalf("%d runs, want more than 1500", len(runs))
	}
	addTypedRuns(t, s, "db", runs...)

	r, err := Build(t.Context(), l, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	ts := r.Targets[0]
	full, incr := ts.Types[0], ts.Types[1]
	if full.Type != "full" || full.LastGood == nil || !full.LastGood.End.Equal(goodFull) || full.Failed == nil || !full.Failed.End.Equal(failedFull) {
		t.Fatalf("full: last good %s, failed %s; want the full of %s, the failed one of %s", runID(full.LastGood), runID(full.Failed), goodFull, failedFull)
	}
	if incr.Type != "incr" || incr.State != StateOK || incr.Failed != nil || !incr.LastGood.End.Equal(runs[len(runs)-1].end) {
		t.Errorf("incr %+v, want ok, last good the newest run", incr)
	}
	if ts.State != StateFailing || ts.Overdue || fmt.Sprint(ts.TypeProblems()) != "[full failing]" {
		t.Errorf("state %s overdue %v problems %v, want failing for the full, not overdue", ts.State, ts.Overdue, ts.TypeProblems())
	}
	// January 1st 01:00, plus 10% of the 90 days to April 1st.
	if got, want := stateText(ts, epoch), "FULL FAILING (due in 47d 14h)"; got != want {
		t.Errorf("state text %q, want %q", got, want)
	}
}

func TestBuildNoTargets(t *testing.T) {
	r, err := Build(t.Context(), &lab.Lab{Name: "empty"}, openCatalog(t), epoch)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Targets) != 0 || len(r.Failures) != 0 || !r.Healthy || r.Overdue != 0 {
		t.Errorf("got %+v", r)
	}
}

func TestFailures(t *testing.T) {
	s := openCatalog(t)
	ctx := t.Context()
	add := func(e catalog.Event) {
		t.Helper()
		if err := s.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// 13 errors, one a minute from 09:00, between info and warn events.
	for i := range 13 {
		add(catalog.Event{Time: at(-1, 15+i), Level: "info", Kind: "backup_done", Target: "files"})
		add(catalog.Event{Time: at(-1, 15+i).Add(10 * time.Second), Level: "error", Kind: "backup_failed",
			Target: "files", Message: fmt.Sprintf("failure %d", i)})
		add(catalog.Event{Time: at(-1, 15+i).Add(20 * time.Second), Level: "warn", Kind: "backup_partial", Target: "files"})
	}
	r, err := Build(ctx, oneTarget(""), s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Failures) != MaxFailures {
		t.Fatalf("got %d failures, want %d", len(r.Failures), MaxFailures)
	}
	for i, e := range r.Failures {
		if want := fmt.Sprintf("failure %d", 12-i); e.Message != want || e.Level != "error" {
			t.Errorf("failure %d: %s %q, want error %q", i, e.Level, e.Message, want)
		}
	}
	// Failures do not make a lab unhealthy by themselves: the targets'
	// last runs and drills do.
	if !r.Healthy {
		t.Error("not healthy")
	}
}

func TestBuildBadSchedule(t *testing.T) {
	s := openCatalog(t)
	addRuns(t, s, "files", run{result: catalog.ResultOK, end: at(-1, 0)})
	_, err := Build(t.Context(), oneTarget("not a schedule"), s, epoch)
	if err == nil {
		t.Fatal("no error for a bad schedule")
	}
	t.Log(err)
}

func TestBuildCanceled(t *testing.T) {
	s := openCatalog(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Build(ctx, oneTarget("0 2 * * *"), s, epoch); err == nil {
		t.Fatal("no error with a canceled context")
	}
}

// storeOnly hides the catalog's Lookup: Build falls back to reading all
// runs and drills.
type storeOnly struct{ catalog.Store }

// TestBuildMatchesPointQueries checks each target's last run, last good
// run and last drill against the catalog's own newest-first lists, and
// the report against one built from a store without catalog.Lookup.
func TestBuildMatchesPointQueries(t *testing.T) {
	s := openCatalog(t)
	ctx := t.Context()
	names, err := catalogtest.Fill(ctx, s, 9, 30, epoch)
	if err != nil {
		t.Fatal(err)
	}
	// Ties on start, broken by ID: t01's newest run is the failed one,
	// t02's newest good one the partial one.
	addRuns(t, s, "t01", run{result: catalog.ResultOK, end: at(1, 0)}, run{result: catalog.ResultFailed, end: at(1, 0)})
	addRuns(t, s, "t02", run{result: catalog.ResultOK, end: at(1, 0)}, run{result: catalog.ResultPartial, end: at(1, 0)})
	l := &lab.Lab{Name: "big", Backups: map[string]*lab.Backup{}}
	for i, name := range append(names, "never") {
		b := &lab.Backup{Name: name, Provider: lab.ProviderRestic, Repository: "repo", Schedule: "0 3 * * *"}
		if i%3 == 2 {
			b.Schedule = ""
		}
		l.Backups[name] = b
	}
	r, err := Build(ctx, l, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	first := func(runs []catalog.Run, err error) *catalog.Run {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 0 {
			return nil
		}
		return &runs[0]
	}
	for _, ts := range r.Targets {
		last := first(s.Runs(ctx, catalog.RunFilter{Target: ts.Name, Kind: catalog.KindBackup, Limit: 1}))
		if last != nil && last.Result == catalog.ResultRunning {
			// No process holds the target's lock: Build shows it
			// interrupted (TestBuildAbandonedRun).
			c := *last
			c.Result, c.Error = catalog.ResultInterrupted, "the homelab process running it is gone"
			last = &c
		}
		good := first(s.Runs(ctx, catalog.RunFilter{Target: ts.Name, Kind: catalog.KindBackup, Result: catalog.ResultOK, Limit: 1}))
		if p := first(s.Runs(ctx, catalog.RunFilter{Target: ts.Name, Kind: catalog.KindBackup, Result: catalog.ResultPartial, Limit: 1})); p != nil &&
			(good == nil || p.Start.After(good.Start) || p.Start.Equal(good.Start) && p.ID > good.ID) {
			good = p
		}
		drills, err := s.Drills(ctx, catalog.DrillFilter{Target: ts.Name, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		var drill *catalog.Drill
		if len(drills) > 0 {
			drill = &drills[0]
		}
		if !reflect.DeepEqual(ts.LastRun, last) || !reflect.DeepEqual(ts.LastGood, good) || !reflect.DeepEqual(ts.LastDrill, drill) {
			t.Errorf("%s: last run %s, good %s, drill %+v; want %s, %s, %+v",
				ts.Name, runID(ts.LastRun), runID(ts.LastGood), ts.LastDrill, runID(last), runID(good), drill)
		}
	}
	byName := map[string]TargetStatus{}
	for _, ts := range r.Targets {
		byName[ts.Name] = ts
	}
	if got := byName["t01"].LastRun; got == nil || got.Result != catalog.ResultFailed || !got.Start.Equal(at(1, -5)) {
		t.Errorf("t01: last run %+v, want the failed run of the tie", got)
	}
	if got := byName["t02"].LastGood; got == nil || got.Result != catalog.ResultPartial || !got.Start.Equal(at(1, -5)) {
		t.Errorf("t02: last good %+v, want the partial run of the tie", got)
	}
	fallback, err := Build(ctx, l, storeOnly{s}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fallback, r) {
		t.Errorf("report from a store without Lookup differs:\n got %+v\nwant %+v", fallback, r)
	}
}

// BenchmarkStatusBuild builds the status of a lab of 50 targets with 100
// backup runs and 10 drills each (catalogtest.Fill), as `homelab status`,
// the status page and every /metrics scrape do.
func BenchmarkStatusBuild(b *testing.B) {
	s, l := benchLab(b)
	for b.Loop() {
		if _, err := Build(b.Context(), l, s, epoch); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLab is a catalog filled by catalogtest.Fill with 50 targets of
// 100 days, and their lab.
func benchLab(b *testing.B) (*catalog.SQLite, *lab.Lab) {
	s, err := catalog.Open(b.Context(), filepath.Join(b.TempDir(), "c.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	names, err := catalogtest.Fill(b.Context(), s, 50, 100, epoch)
	if err != nil {
		b.Fatal(err)
	}
	l := &lab.Lab{Name: "bench", Backups: map[string]*lab.Backup{}}
	for _, name := range names {
		l.Backups[name] = &lab.Backup{Name: name, Provider: lab.ProviderRestic, Repository: "repo", Schedule: "0 3 * * *"}
	}
	return s, l
}

// BenchmarkStatusBuildTyped is BenchmarkStatusBuild plus three pgbackrest
// targets on per-type schedules with 1500 runs each: a good full, then
// hourly incr backups (the first attempt failing every fifth hour).
func BenchmarkStatusBuildTyped(b *testing.B) {
	s, l := benchLab(b)
	for _, name := range []string{"pg1", "pg2", "pg3"} {
		l.Backups[name] = &lab.Backup{Name: name, Provider: lab.ProviderPgBackRest,
			PgBackRest: &lab.PgBackRest{Schedules: lab.PgBackRestSchedules{Full: "0 1 1 */3 *", Incr: "5 * * * *"}}}
		runs := []typedRun{{"full", catalog.ResultOK, at(-1250, 0)}}
		for h := range 1249 {
			if h%5 == 0 {
				runs = append(runs, typedRun{"incr", catalog.ResultFailed, at(-1249+h, -2)})
			}
			runs = append(runs, typedRun{"incr", catalog.ResultOK, at(-1249+h, 0)})
		}
		addTypedRuns(b, s, name, runs...)
	}
	for b.Loop() {
		if _, err := Build(b.Context(), l, s, epoch); err != nil {
			b.Fatal(err)
		}
	}
}
