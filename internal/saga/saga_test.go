package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
	"homelab/internal/lock"
	"homelab/internal/saga"
)

// epoch is the tests' clock start, in a non-UTC zone on purpose.
var epoch = time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))

// clock is a fake clock that advances a second at each reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: epoch} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// openCatalog opens the catalog at path and closes it when the test ends.
func openCatalog(t *testing.T, path string) *catalog.SQLite {
	t.Helper()
	s, err := catalog.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newRunner(t *testing.T, j catalog.Journal) *saga.Runner {
	return &saga.Runner{Journal: j, StateDir: t.TempDir(), Now: newClock().Now}
}

// recorder records the calls of steps, in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recorder) check(t *testing.T, want ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(r.calls, want) {
		t.Errorf("calls:\ngot  %q\nwant %q", r.calls, want)
	}
	r.calls = nil
}

// step returns a step whose Do and Undo record "do <name>" and
// "undo <name>" and return doErr and undoErr.
func (r *recorder) step(name string, doErr, undoErr error) saga.Step {
	return saga.Step{
		Name: name,
		Do: func(ctx context.Context, sc *saga.StepContext) error {
			r.add("do %s", name)
			return doErr
		},
		Undo: func(ctx context.Context, sc *saga.StepContext) error {
			r.add("undo %s", name)
			return undoErr
		},
	}
}

func noUndo(s saga.Step) saga.Step {
	s.Undo = nil
	return s
}

// rows describes a journal in one line per row, e.g. "do 2 b failed:
// boom", "undo 1 a done", checking that the times are set.
func rows(t *testing.T, rec saga.Record) []string {
	t.Helper()
	var out []string
	for _, st := range rec.Steps {
		verb := "do"
		if st.Phase == catalog.PhaseCompensate {
			verb = "undo"
		}
		line := fmt.Sprintf("%s %d %s %s", verb, st.Seq, st.Name, st.State)
		if st.Error != "" {
			line += ": " + st.Error
		}
		out = append(out, line)
		if st.Start.IsZero() || (st.State != catalog.StepStarted) == st.End.IsZero() || (!st.End.IsZero() && st.End.Before(st.Start)) {
			t.Errorf("row %q: start %v, end %v", line, st.Start, st.End)
		}
	}
	return out
}

// checkJournal checks rec's rows and that the journal holds rec.
func checkJournal(t *testing.T, j catalog.Journal, rec saga.Record, want ...string) {
	t.Helper()
	if got := rows(t, rec); !reflect.DeepEqual(got, want) {
		t.Errorf("journal rows:\ngot  %q\nwant %q", got, want)
	}
	stored, err := j.Saga(t.Context(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	catalogtest.CheckSaga(t, stored, rec)
}

func TestRunDone(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	var progress []string
	r.Progress = func(id string, st saga.StepRecord) {
		progress = append(progress, fmt.Sprintf("%s %d %s %s", st.Phase, st.Seq, st.Name, st.State))
	}
	var seen []string
	steps := []saga.Step{
		noUndo(saga.Step{Name: "backup", Do: func(ctx context.Context, sc *saga.StepContext) error {
			seen = append(seen, sc.SagaID(), sc.Subject(), string(sc.Params()), sc.Step(), string(sc.Phase()))
			return sc.Set("snapshot", "snap-1")
		}}),
		{Name: "set version", Do: func(ctx context.Context, sc *saga.StepContext) error {
			snap, ok := sc.Get("backup", "snapshot")
			rc.add("do set version after %s %v", snap, ok)
			if err := sc.Set("previous", "1.0.4"); err != nil {
				return err
			}
			return sc.Set("previous", "1.0.4-b") // a second Set of a key replaces it
		}, Undo: func(ctx context.Context, sc *saga.StepContext) error { return errors.New("not called") }},
		rc.step("wait healthy", nil, nil),
	}
	params := map[string]string{"from": "1.0.4", "to": "1.0.5"}
	rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Params: params, Steps: steps})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	rc.check(t, "do set version after snap-1 true", "do wait healthy")
	if rec.State != saga.Done || rec.Error != "" || rec.Start.IsZero() || !rec.End.After(rec.Start) {
		t.Errorf("record: %+v; want done with start and end", rec)
	}
	if want := []string{"backup", "set version", "wait healthy"}; !reflect.DeepEqual(rec.Plan, want) {
		t.Errorf("plan %q, want %q", rec.Plan, want)
	}
	if want := []string{rec.ID, "gitlab", `{"from":"1.0.4","to":"1.0.5"}`, "backup", "forward"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("step context: %q, want %q", seen, want)
	}
	checkJournal(t, j, rec, "do 1 backup done", "do 2 set version done", "do 3 wait healthy done")
	if got, want := rec.Steps[0].Data, map[string]string{"snapshot": "snap-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("backup data %v, want %v", got, want)
	}
	if got, want := rec.Steps[1].Data, map[string]string{"previous": "1.0.4-b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("set version data %v, want %v", got, want)
	}
	wantProgress := []string{
		"forward 1 backup started", "forward 1 backup done",
		"forward 2 set version started", "forward 2 set version done",
		"forward 3 wait healthy started", "forward 3 wait healthy done",
	}
	if !reflect.DeepEqual(progress, wantProgress) {
		t.Errorf("progress:\ngot  %q\nwant %q", progress, wantProgress)
	}
	if ss, err := saga.Unfinished(t.Context(), j); err != nil || len(ss) != 0 {
		t.Errorf("Unfinished = %v, %v; want none", ss, err)
	}
	// The subject is free again: another saga runs.
	if _, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps[2:]}); err != nil {
		t.Errorf("second Run: %v", err)
	}
}

var errBoom = errors.New("boom")

// TestRunFailureCompensates fails each step of an upgrade-like saga in
// turn: the steps that began are undone in reverse, the failed one first,
// each undo journalled (skipped for steps without an Undo).
func TestRunFailureCompensates(t *testing.T) {
	names := []string{"backup", "set version", "wait healthy", "post"}
	tests := []struct {
		fail  int // 1-based
		calls []string
		rows  []string
		state saga.State
	}{
		{1, []string{"do backup"},
			[]string{"do 1 backup failed: boom", "undo 1 backup skipped"}, saga.Failed},
		{2, []string{"do backup", "do set version", "undo set version"},
			[]string{"do 1 backup done", "do 2 set version failed: boom", "undo 2 set version done", "undo 1 backup skipped"}, saga.Compensated},
		{3, []string{"do backup", "do set version", "do wait healthy", "undo set version"},
			[]string{"do 1 backup done", "do 2 set version done", "do 3 wait healthy failed: boom",
				"undo 3 wait healthy skipped", "undo 2 set version done", "undo 1 backup skipped"}, saga.Compensated},
		{4, []string{"do backup", "do set version", "do wait healthy", "do post", "undo post", "undo set version"},
			[]string{"do 1 backup done", "do 2 set version done", "do 3 wait healthy done", "do 4 post failed: boom",
				"undo 4 post done", "undo 3 wait healthy skipped", "undo 2 set version done", "undo 1 backup skipped"}, saga.Compensated},
	}
	for _, tt := range tests {
		t.Run(names[tt.fail-1], func(t *testing.T) {
			j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
			r := newRunner(t, j)
			var rc recorder
			var steps []saga.Step
			for i, name := range names {
				var err error
				if i+1 == tt.fail {
					err = errBoom
				}
				s := rc.step(name, err, nil)
				if name == "backup" || name == "wait healthy" {
					s = noUndo(s)
				}
				steps = append(steps, s)
			}
			rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
			rc.check(t, tt.calls...)
			var se *saga.Error
			if !errors.As(err, &se) {
				t.Fatalf("Run: %v; want a *saga.Error", err)
			}
			if se.Step != names[tt.fail-1] || !se.Started || !errors.Is(err, errBoom) || se.State != tt.state ||
				se.CompensationErr != nil || se.JournalErr != nil || se.ID != rec.ID {
				t.Errorf("error %+v", se)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), fmt.Sprintf("step %q failed: boom", names[tt.fail-1])) {
				t.Errorf("error %q does not name the step and cause", err)
			}
			if rec.State != tt.state || rec.Error != fmt.Sprintf("step %q failed: boom", names[tt.fail-1]) || rec.End.IsZero() {
				t.Errorf("record state %s, error %q, end %v", rec.State, rec.Error, rec.End)
			}
			checkJournal(t, j, rec, tt.rows...)
		})
	}
}

// TestCompensationFailure: an Undo fails, the saga stops in
// needs_attention (earlier steps are not undone), refuses new sagas on its
// subject, and a Resume after the cause is fixed finishes compensating
// where it stopped.
func TestCompensationFailure(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	errBang := errors.New("bang")
	steps := []saga.Step{rc.step("a", nil, nil), rc.step("b", nil, errBang), rc.step("c", errBoom, nil)}
	rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
	rc.check(t, "do a", "do b", "do c", "undo c", "undo b")
	var se *saga.Error
	if !errors.As(err, &se) {
		t.Fatalf("Run: %v; want a *saga.Error", err)
	}
	t.Log(err)
	if se.State != saga.NeedsAttention || se.Step != "c" || se.UndoStep != "b" ||
		!errors.Is(err, errBoom) || !errors.Is(err, errBang) {
		t.Errorf("error %+v", se)
	}
	for _, want := range []string{`step "c" failed: boom`, `undo of step "b" failed: bang`, "needs attention"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if rec.State != saga.NeedsAttention || rec.End.IsZero() || rec.Error != `step "c" failed: boom` {
		t.Errorf("record: %s, %q, end %v", rec.State, rec.Error, rec.End)
	}
	checkJournal(t, j, rec, "do 1 a done", "do 2 b done", "do 3 c failed: boom", "undo 3 c done", "undo 2 b failed: bang")
	if got, want := saga.Describe(rec), `UTC: step "c" failed: boom; undo of step 2 "b" failed: bang`; !strings.HasSuffix(got, want) ||
		!strings.HasPrefix(got, "upgrade gitlab (saga "+rec.ID+"): needs_attention since 2026-11-23 ") {
		t.Errorf("Describe = %q, want needs_attention since ... %q", got, want)
	}

	// Unfinished lists it; a new saga on the subject is refused.
	if ss, err := saga.Unfinished(t.Context(), j); err != nil || len(ss) != 1 || ss[0].ID != rec.ID {
		t.Errorf("Unfinished = %v, %v; want %s", ss, err, rec.ID)
	}
	_, err = r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
	var ue *saga.UnfinishedError
	if !errors.Is(err, saga.ErrUnfinished) || !errors.As(err, &ue) || ue.Record.ID != rec.ID {
		t.Errorf("Run with an unfinished saga: %v; want ErrUnfinished naming %s", err, rec.ID)
	}
	t.Log(err)
	rc.check(t)

	// Forward is refused: compensation has begun.
	if _, err := r.Resume(t.Context(), rec.ID, steps, saga.Forward); !errors.Is(err, saga.ErrUnsafeResume) {
		t.Errorf("Resume(Forward) of a saga that needs attention: %v; want ErrUnsafeResume", err)
	}
	// Still failing: needs attention again, nothing else undone.
	if _, err := r.Resume(t.Context(), rec.ID, steps, saga.Compensate); !errors.Is(err, errBang) {
		t.Errorf("Resume with the cause not fixed: %v; want bang", err)
	}
	rc.check(t, "undo b")
	// Fixed.
	steps[1] = rc.step("b", nil, nil)
	rec, err = r.Resume(t.Context(), rec.ID, steps, saga.Compensate)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	rc.check(t, "undo b", "undo a")
	if rec.State != saga.Compensated || rec.Error != `step "c" failed: boom` {
		t.Errorf("record after Resume: %s, %q", rec.State, rec.Error)
	}
	checkJournal(t, j, rec, "do 1 a done", "do 2 b done", "do 3 c failed: boom", "undo 3 c done", "undo 2 b done", "undo 1 a done")
	// A second Resume does nothing.
	again, err := r.Resume(t.Context(), rec.ID, steps, saga.Compensate)
	rc.check(t)
	if err != nil {
		t.Fatalf("second Resume: %v", err)
	}
	catalogtest.CheckSaga(t, again, rec)
}

// TestDataSurvivesReopen: what steps Set, forward and in compensation, is
// in the catalog after it is closed and opened again, and Undo reads
// what Do recorded.
func TestDataSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	j := openCatalog(t, path)
	r := newRunner(t, j)
	var rc recorder
	steps := []saga.Step{
		noUndo(saga.Step{Name: "backup", Do: func(ctx context.Context, sc *saga.StepContext) error {
			return sc.Set("snapshot", "snap-1")
		}}),
		{Name: "set version", Do: func(ctx context.Context, sc *saga.StepContext) error {
			if err := sc.Set("previous", "1.0.4"); err != nil {
				return err
			}
			return errors.New("container did not start")
		}, Undo: func(ctx context.Context, sc *saga.StepContext) error {
			prev, _ := sc.Get("set version", "previous")
			snap, _ := sc.Get("backup", "snapshot")
			_, ok := sc.Get("nope", "snapshot")
			rc.add("undo to %s from %s, %v", prev, snap, ok)
			return sc.Set("restored", snap)
		}},
	}
	rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
	if err == nil || rec.State != saga.Compensated {
		t.Fatalf("Run: %s, %v; want compensated", rec.State, err)
	}
	rc.check(t, "undo to 1.0.4 from snap-1, false")
	j.Close()

	j = openCatalog(t, path)
	stored, err := j.Saga(t.Context(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	catalogtest.CheckSaga(t, stored, rec)
	want := []map[string]string{{"snapshot": "snap-1"}, {"previous": "1.0.4"}, {"restored": "snap-1"}, nil}
	if len(stored.Steps) != len(want) {
		t.Fatalf("rows %q", rows(t, stored))
	}
	for i, st := range stored.Steps {
		if !reflect.DeepEqual(st.Data, want[i]) {
			t.Errorf("row %d (%s %s): data %v, want %v", i, st.Phase, st.Name, st.Data, want[i])
		}
	}
}

// TestCancelDuringStep: cancelling the context during a step fails it;
// the compensation runs on a context that is not cancelled but has a
// deadline.
func TestCancelDuringStep(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	r.UndoTimeout = time.Minute
	var rc recorder
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	undo := func(name string) func(context.Context, *saga.StepContext) error {
		return func(ctx context.Context, sc *saga.StepContext) error {
			dl, ok := ctx.Deadline()
			rc.add("undo %s: ctx err %v, deadline %v", name, ctx.Err(), ok && time.Until(dl) <= time.Minute)
			return nil
		}
	}
	started := make(chan struct{})
	go func() {
		<-started
		cancel()
	}()
	steps := []saga.Step{
		{Name: "a", Do: func(context.Context, *saga.StepContext) error { return nil }, Undo: undo("a")},
		{Name: "b", Do: func(ctx context.Context, sc *saga.StepContext) error {
			close(started)
			<-ctx.Done()
			return fmt.Errorf("wait healthy: %w", ctx.Err())
		}, Undo: undo("b")},
		rc.step("c", nil, nil),
	}
	rec, err := r.Run(ctx, saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
	if !errors.Is(err, context.Canceled) || rec.State != saga.Compensated {
		t.Fatalf("Run: %s, %v; want compensated, context.Canceled", rec.State, err)
	}
	t.Log(err)
	rc.check(t, "undo b: ctx err <nil>, deadline true", "undo a: ctx err <nil>, deadline true")
	checkJournal(t, j, rec, "do 1 a done", "do 2 b failed: wait healthy: context canceled", "undo 2 b done", "undo 1 a done")
}

// TestCancelBetweenSteps: cancelled after a step, the run stops before the
// next, which is not journalled, and compensates.
func TestCancelBetweenSteps(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := rc.step("a", nil, nil)
	a.Do = func(context.Context, *saga.StepContext) error {
		rc.add("do a")
		cancel()
		return nil
	}
	rec, err := r.Run(ctx, saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: []saga.Step{a, rc.step("b", nil, nil)}})
	rc.check(t, "do a", "undo a")
	var se *saga.Error
	if !errors.As(err, &se) || se.Step != "b" || se.Started || !errors.Is(err, context.Canceled) || se.State != saga.Compensated {
		t.Fatalf("Run: %v (%+v)", err, se)
	}
	if want := `upgrade gitlab (saga ` + rec.ID + `): stopped before step "b": context canceled; compensated: every change was undone`; err.Error() != want {
		t.Errorf("error %q\nwant %q", err, want)
	}
	checkJournal(t, j, rec, "do 1 a done", "undo 1 a done")
}

// TestPanicCompensates: a panicking step fails and is compensated.
func TestPanicCompensates(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	b := rc.step("b", nil, nil)
	b.Do = func(context.Context, *saga.StepContext) error { panic("nil map") }
	rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: []saga.Step{rc.step("a", nil, nil), b}})
	rc.check(t, "do a", "undo b", "undo a")
	if rec.State != saga.Compensated || err == nil || !strings.Contains(err.Error(), "panic: nil map") {
		t.Errorf("Run: %s, %v; want compensated after a panic", rec.State, err)
	}
}

// flakyJournal fails the PutStep calls that fail says to.
type flakyJournal struct {
	catalog.Journal
	fail func(st catalog.SagaStep) bool
}

var errJournal = errors.New("disk full")

func (f flakyJournal) PutStep(ctx context.Context, id string, st catalog.SagaStep) error {
	if f.fail(st) {
		return errJournal
	}
	return f.Journal.PutStep(ctx, id, st)
}

// TestJournalFailure: a step does not begin unless its start is
// journalled; a step whose end cannot be journalled is undone; undos run
// even if they cannot be journalled.
func TestJournalFailure(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(st catalog.SagaStep) bool
		calls   []string
		started bool
		rows    []string // in the catalog
	}{
		{"before step", func(st catalog.SagaStep) bool {
			return st.Seq == 2 && st.Phase == catalog.PhaseForward && st.State == catalog.StepStarted
		}, []string{"do a", "undo a"}, false, []string{"do 1 a done", "undo 1 a done"}},
		{"after step", func(st catalog.SagaStep) bool {
			return st.Seq == 2 && st.Phase == catalog.PhaseForward && st.State == catalog.StepDone
		}, []string{"do a", "do b", "undo b", "undo a"}, true,
			[]string{"do 1 a done", "do 2 b started", "undo 2 b done", "undo 1 a done"}},
		{"compensation", func(st catalog.SagaStep) bool {
			return st.Phase == catalog.PhaseCompensate || (st.Seq == 2 && st.State == catalog.StepDone)
		}, []string{"do a", "do b", "undo b", "undo a"}, true,
			[]string{"do 1 a done", "do 2 b started"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
			r := newRunner(t, flakyJournal{db, tt.fail})
			var rc recorder
			rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab",
				Steps: []saga.Step{rc.step("a", nil, nil), rc.step("b", nil, nil), rc.step("c", nil, nil)}})
			rc.check(t, tt.calls...)
			t.Log(err)
			var se *saga.Error
			if !errors.As(err, &se) || se.Step != "b" || se.Started != tt.started || !errors.Is(err, errJournal) ||
				se.State != saga.Compensated || rec.State != saga.Compensated {
				t.Fatalf("Run: %s, %v (%+v)", rec.State, err, se)
			}
			if (se.JournalErr != nil) != (tt.name == "compensation") {
				t.Errorf("JournalErr %v", se.JournalErr)
			}
			stored, err := db.Saga(t.Context(), rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(t, stored); !reflect.DeepEqual(got, tt.rows) || stored.State != saga.Compensated {
				t.Errorf("journal: %s %q, want compensated %q", stored.State, got, tt.rows)
			}
		})
	}
}

func TestRunInvalid(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	do := func(context.Context, *saga.StepContext) error { return nil }
	ok := saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: []saga.Step{{Name: "a", Do: do}, {Name: "b", Do: do}}}
	for name, mod := range map[string]func(*saga.Saga){
		"no kind":      func(s *saga.Saga) { s.Kind = "" },
		"no subject":   func(s *saga.Saga) { s.Subject = "" },
		"bad subject":  func(s *saga.Saga) { s.Subject = "a/b" },
		"no steps":     func(s *saga.Saga) { s.Steps = nil },
		"unnamed step": func(s *saga.Saga) { s.Steps = []saga.Step{{Do: do}} },
		"same names":   func(s *saga.Saga) { s.Steps = []saga.Step{{Name: "a", Do: do}, {Name: "a", Do: do}} },
		"no do":        func(s *saga.Saga) { s.Steps = []saga.Step{{Name: "a"}} },
		"bad params":   func(s *saga.Saga) { s.Params = func() {} },
	} {
		s := ok
		mod(&s)
		if _, err := r.Run(t.Context(), s); err == nil {
			t.Errorf("Run with %s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if ss, err := saga.History(t.Context(), j, "", "", 0); err != nil || len(ss) != 0 {
		t.Errorf("History = %v, %v; want nothing journalled", ss, err)
	}
	if _, err := (&saga.Runner{Journal: j}).Run(t.Context(), ok); err == nil {
		t.Errorf("Run without a state dir: no error")
	}
}

// TestLocked: a saga does not start, nor resume, while another process
// (here another lock) holds its subject.
func TestLocked(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	steps := []saga.Step{rc.step("a", nil, nil), rc.step("b", errBoom, errBoom)}
	rec, _ := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
	rc.check(t, "do a", "do b", "undo b")

	l, err := lock.Acquire(t.Context(), r.StateDir, saga.LockName("gitlab"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps}); !errors.Is(err, lock.ErrBusy) {
		t.Errorf("Run of a locked subject: %v; want ErrBusy", err)
	}
	if _, err := r.Resume(t.Context(), rec.ID, steps, saga.Compensate); !errors.Is(err, lock.ErrBusy) {
		t.Errorf("Resume of a locked subject: %v; want ErrBusy", err)
	}
	rc.check(t)
	// Another subject is free.
	if _, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "web", Steps: steps[:1]}); err != nil {
		t.Errorf("Run of another subject: %v", err)
	}
}

func TestResumeChecks(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	steps := []saga.Step{rc.step("a", nil, nil), rc.step("b", errBoom, errBoom)}
	rec, _ := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
	rc.check(t, "do a", "do b", "undo b")
	for name, s := range map[string][]saga.Step{
		"reversed": {steps[1], steps[0]},
		"fewer":    steps[:1],
		"more":     append(steps[:2:2], rc.step("c", nil, nil)),
	} {
		if _, err := r.Resume(t.Context(), rec.ID, s, saga.Compensate); !errors.Is(err, saga.ErrPlanMismatch) {
			t.Errorf("Resume with %s steps: %v; want ErrPlanMismatch", name, err)
		}
	}
	if _, err := r.Resume(t.Context(), "nope", steps, saga.Compensate); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Resume of an unknown saga: %v; want ErrNotFound", err)
	}
	if _, err := r.Resume(t.Context(), rec.ID, steps, saga.Mode(7)); err == nil {
		t.Errorf("Resume with an unknown mode: no error")
	}
	rc.check(t)
}

// TestHistory lists sagas newest first with their journals, by kind and
// subject.
func TestHistory(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	run := func(kind, subject string, fail bool) saga.Record {
		var err error
		if fail {
			err = errBoom
		}
		rec, _ := r.Run(t.Context(), saga.Saga{Kind: kind, Subject: subject,
			Params: map[string]string{"to": "1.0.5"}, Steps: []saga.Step{rc.step("a", nil, nil), rc.step("b", err, nil)}})
		return rec
	}
	g1 := run("upgrade", "gitlab", false)
	w1 := run("upgrade", "web", false)
	g2 := run("upgrade", "gitlab", true)
	gr := run("rollback", "gitlab", false)
	g3 := run("upgrade", "gitlab", false)
	tests := []struct {
		kind, subject string
		limit         int
		want          []saga.Record
	}{
		{"upgrade", "gitlab", 0, []saga.Record{g3, g2, g1}},
		{"upgrade", "gitlab", 2, []saga.Record{g3, g2}},
		{"", "gitlab", 0, []saga.Record{g3, gr, g2, g1}},
		{"upgrade", "", 0, []saga.Record{g3, g2, w1, g1}},
		{"", "", 1, []saga.Record{g3}},
		{"upgrade", "nope", 0, nil},
	}
	for _, tt := range tests {
		got, err := saga.History(t.Context(), j, tt.kind, tt.subject, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("History(%q, %q, %d): %d sagas, want %d", tt.kind, tt.subject, tt.limit, len(got), len(tt.want))
		}
		for i := range got {
			catalogtest.CheckSaga(t, got[i], tt.want[i])
		}
	}
	if got := rows(t, g2); !reflect.DeepEqual(got, []string{"do 1 a done", "do 2 b failed: boom", "undo 2 b done", "undo 1 a done"}) {
		t.Errorf("g2 rows %q", got)
	}
	var params map[string]string
	if err := json.Unmarshal(g2.Params, &params); err != nil || params["to"] != "1.0.5" {
		t.Errorf("params %s: %v", g2.Params, err)
	}
}

func TestDescribe(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 11, 23, 10, 0, s, 0, time.UTC) }
	base := saga.Record{ID: "S", Kind: "upgrade", Subject: "gitlab", Start: at(0)}
	fwd := func(seq int, name string, st catalog.StepState) saga.StepRecord {
		return saga.StepRecord{Seq: seq, Name: name, Phase: catalog.PhaseForward, State: st, Start: at(seq)}
	}
	tests := []struct {
		mod  func(r *saga.Record)
		want string
	}{
		{func(r *saga.Record) { r.State = saga.Done; r.End = at(9) }, `upgrade gitlab (saga S): done`},
		{func(r *saga.Record) {
			r.State, r.Steps = saga.Running, []saga.StepRecord{fwd(1, "backup", "done"), fwd(2, "set version", "started")}
		}, `upgrade gitlab (saga S): running since 2026-11-23 10:00:00 UTC, step 2 "set version" started`},
		{func(r *saga.Record) { r.State = saga.Running }, `upgrade gitlab (saga S): running since 2026-11-23 10:00:00 UTC`},
		{func(r *saga.Record) {
			r.State, r.Error = saga.Compensating, `step "b" failed: boom`
			r.Steps = []saga.StepRecord{fwd(1, "a", "done"), fwd(2, "b", "failed"),
				{Seq: 2, Name: "b", Phase: catalog.PhaseCompensate, State: "started", Start: at(5)}}
		}, `upgrade gitlab (saga S): compensating since 2026-11-23 10:00:00 UTC, undo of step 2 "b" started: step "b" failed: boom`},
		{func(r *saga.Record) {
			r.State, r.Error, r.End = saga.Compensated, `interrupted during step "b"`, at(9)
		}, `upgrade gitlab (saga S): compensated: interrupted during step "b"`},
	}
	for _, tt := range tests {
		r := base
		tt.mod(&r)
		if got := saga.Describe(r); got != tt.want {
			t.Errorf("Describe:\ngot  %s\nwant %s", got, tt.want)
		}
	}
}

// TestResolve: a saga that needs attention, closed as put right by hand,
// is resolved (final) with its error kept, runs no step, is no longer
// unfinished, and a new saga on the subject may start; resolving again
// changes nothing.
func TestResolve(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	steps := []saga.Step{rc.step("a", nil, errors.New("bang")), rc.step("b", errBoom, nil)}
	rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps})
	if rec.State != saga.NeedsAttention {
		t.Fatalf("setup: %s, %v", rec.State, err)
	}
	rc.check(t, "do a", "do b", "undo b", "undo a")
	got, err := r.Resolve(t.Context(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc.check(t)
	if got.State != saga.Resolved || !got.State.Final() || got.Error != `step "b" failed: boom; resolved by hand` || got.End.IsZero() {
		t.Errorf("resolved record: %s, %q, end %v", got.State, got.Error, got.End)
	}
	if ss, err := saga.Unfinished(t.Context(), j); err != nil || len(ss) != 0 {
		t.Errorf("Unfinished after Resolve = %v, %v", ss, err)
	}
	again, err := r.Resolve(t.Context(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	catalogtest.CheckSaga(t, again, got)
	steps[1] = rc.step("b", nil, nil)
	if rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "gitlab", Steps: steps}); err != nil || rec.State != saga.Done {
		t.Errorf("a new saga after Resolve: %s, %v", rec.State, err)
	}
}

// TestCovers: an unfinished saga that covers subjects besides its own (a
// lab snapshot restore covering the lab's services) refuses a saga on any
// of them, naming itself and its --resume; a saga that covers a subject
// with an unfinished saga is refused too; subjects neither covers run;
// once it is finished they all run. The covers are journalled in the
// params, beside the caller's own.
func TestCovers(t *testing.T) {
	j := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	r := newRunner(t, j)
	var rc recorder
	stuck := []saga.Step{rc.step("a", nil, errors.New("bang")), rc.step("b", errBoom, nil)}
	wide, err := r.Run(t.Context(), saga.Saga{Kind: "snapshot restore", Subject: "lab-snapshots",
		Params: map[string]string{"name": "before"}, Covers: []string{"app", "db"}, Steps: stuck})
	if wide.State != saga.NeedsAttention {
		t.Fatalf("setup: %s, %v", wide.State, err)
	}
	if got := saga.Covered(wide); !slices.Equal(got, []string{"app", "db"}) {
		t.Errorf("Covered = %v, want [app db]", got)
	}
	var p struct{ Name string }
	if err := json.Unmarshal(wide.Params, &p); err != nil || p.Name != "before" {
		t.Errorf("params %s: the caller's own are lost", wide.Params)
	}
	ok := []saga.Step{rc.step("x", nil, nil)}
	want := "finish it first with homelab snapshot restore --resume " + wide.ID
	for _, subject := range []string{"app", "db"} {
		_, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: subject, Steps: ok})
		var ue *saga.UnfinishedError
		if !errors.As(err, &ue) || ue.Record.ID != wide.ID || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "covers "+subject) {
			t.Errorf("upgrade of %s under the unfinished restore: %v; want refused, %q", subject, err, want)
		}
	}
	if rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "web", Steps: ok}); err != nil || rec.State != saga.Done {
		t.Errorf("upgrade of web, which the restore does not cover: %s, %v", rec.State, err)
	}

	// A saga that covers the subject of an unfinished one is refused.
	up, _ := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "cache", Steps: stuck})
	if _, err := r.Run(t.Context(), saga.Saga{Kind: "snapshot create", Subject: "other", Params: struct{}{}, Covers: []string{"cache"}, Steps: ok}); !errors.Is(err, saga.ErrUnfinished) ||
		!strings.Contains(err.Error(), "homelab upgrade --resume "+up.ID) {
		t.Errorf("a saga covering cache, whose upgrade is unfinished: %v; want refused naming %s", err, up.ID)
	}
	if _, err := r.Run(t.Context(), saga.Saga{Kind: "k", Subject: "s", Params: []int{1}, Covers: []string{"x"}, Steps: ok}); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("covers with params that are not an object: %v", err)
	}

	for _, id := range []string{wide.ID, up.ID} {
		if _, err := r.Resolve(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if rec, err := r.Run(t.Context(), saga.Saga{Kind: "upgrade", Subject: "app", Steps: ok}); err != nil || rec.State != saga.Done {
		t.Errorf("upgrade of app once the restore is finished: %s, %v", rec.State, err)
	}
}
