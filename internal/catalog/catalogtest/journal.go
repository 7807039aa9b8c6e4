package catalogtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"homelab/internal/catalog"
)

// RunJournal runs the conformance suite of catalog.Journal. open must
// return a new, empty journal and close it when the test ends.
//
// It pins: sagas and journal rows come back as written, with times as the
// same instant in UTC and Params as the same JSON value; journal rows in
// execution order (forward rows by ascending seq, then compensation rows
// by descending seq); PutStep replaces the row of its (seq, phase); lists
// are newest first (by start, then insertion), Limit 0 means no limit;
// unknown sagas wrap catalog.ErrNotFound; concurrent writers lose nothing.
func RunJournal(t *testing.T, open func(t *testing.T) catalog.Journal) {
	tests := []struct {
		name string
		fn   func(t *testing.T, j catalog.Journal)
	}{
		{"Empty", testJournalEmpty},
		{"SagaRoundTrip", testSagaRoundTrip},
		{"SagaInvalid", testSagaInvalid},
		{"SagaState", testSagaState},
		{"Steps", testSteps},
		{"StepInvalid", testStepInvalid},
		{"Filters", testSagaFilters},
		{"Concurrent", testJournalConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// newSaga returns a running saga of kind upgrade with a two-step plan.
func newSaga(id, subject string, start time.Time) catalog.Saga {
	return catalog.Saga{
		ID: id, Kind: "upgrade", Subject: subject,
		Params: json.RawMessage(`{"from":"1.0.4","to":"1.0.5"}`),
		Plan:   []string{"backup", "set version"},
		State:  catalog.SagaRunning, Start: start,
	}
}

func create(t *testing.T, j catalog.Journal, s catalog.Saga) catalog.Saga {
	t.Helper()
	if err := j.CreateSaga(t.Context(), s); err != nil {
		t.Fatalf("CreateSaga: %v", err)
	}
	s.Start, s.End = s.Start.UTC(), s.End.UTC()
	return s
}

func put(t *testing.T, j catalog.Journal, id string, st catalog.SagaStep) catalog.SagaStep {
	t.Helper()
	if err := j.PutStep(t.Context(), id, st); err != nil {
		t.Fatalf("PutStep: %v", err)
	}
	st.Start, st.End = st.Start.UTC(), st.End.UTC()
	return st
}

// CheckSaga fails t unless got equals want, with Params compared as JSON
// values.
func CheckSaga(t *testing.T, got, want catalog.Saga) {
	t.Helper()
	if !jsonEqual(got.Params, want.Params) {
		t.Errorf("saga %s: params %s, want %s", want.ID, got.Params, want.Params)
	}
	got.Params, want.Params = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("saga %s:\ngot  %+v\nwant %+v", want.ID, got, want)
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func load(t *testing.T, j catalog.Journal, id string) catalog.Saga {
	t.Helper()
	s, err := j.Saga(t.Context(), id)
	if err != nil {
		t.Fatalf("Saga(%s): %v", id, err)
	}
	return s
}

func testJournalEmpty(t *testing.T, j catalog.Journal) {
	ctx := t.Context()
	if ss, err := j.Sagas(ctx, catalog.SagaFilter{}); err != nil || len(ss) != 0 {
		t.Errorf("Sagas = %v, %v; want none", ss, err)
	}
	if _, err := j.Saga(ctx, "nope"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Saga(nope): %v; want ErrNotFound", err)
	}
	if err := j.SetSagaState(ctx, "nope", catalog.SagaDone, at(1), ""); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("SetSagaState(nope): %v; want ErrNotFound", err)
	}
	st := catalog.SagaStep{Seq: 1, Name: "a", Phase: catalog.PhaseForward, State: catalog.StepStarted, Start: at(0)}
	if err := j.PutStep(ctx, "nope", st); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("PutStep(nope): %v; want ErrNotFound", err)
	}
}

func testSagaRoundTrip(t *testing.T, j catalog.Journal) {
	want := create(t, j, newSaga("s1", "gitlab", at(0)))
	CheckSaga(t, load(t, j, "s1"), want)

	// No params, no plan, already finished.
	bare := create(t, j, catalog.Saga{ID: "s2", Kind: "other", Subject: "web", State: catalog.SagaDone,
		Start: at(1), End: at(2).Add(time.Microsecond), Error: "none"})
	got := load(t, j, "s2")
	if len(got.Plan) == 0 {
		got.Plan = nil // an empty plan may come back empty or nil
	}
	CheckSaga(t, got, bare)
}

func testSagaInvalid(t *testing.T, j catalog.Journal) {
	ctx := t.Context()
	ok := newSaga("x", "gitlab", at(0))
	for name, mod := range map[string]func(*catalog.Saga){
		"no id":      func(s *catalog.Saga) { s.ID = "" },
		"no kind":    func(s *catalog.Saga) { s.Kind = "" },
		"no subject": func(s *catalog.Saga) { s.Subject = "" },
		"no start":   func(s *catalog.Saga) { s.Start = time.Time{} },
		"bad state":  func(s *catalog.Saga) { s.State = "sleeping" },
		"bad params": func(s *catalog.Saga) { s.Params = json.RawMessage(`{"from":`) },
	} {
		s := ok
		mod(&s)
		if err := j.CreateSaga(ctx, s); err == nil {
			t.Errorf("CreateSaga with %s: no error", name)
		}
	}
	if ss, err := j.Sagas(ctx, catalog.SagaFilter{}); err != nil || len(ss) != 0 {
		t.Errorf("after invalid creates: Sagas = %v, %v; want none", ss, err)
	}
	create(t, j, ok)
	if err := j.CreateSaga(ctx, ok); err == nil {
		t.Errorf("CreateSaga with a used ID: no error")
	}
}

func testSagaState(t *testing.T, j catalog.Journal) {
	ctx := t.Context()
	want := create(t, j, newSaga("s1", "gitlab", at(0)))
	for _, step := range []struct {
		state catalog.SagaState
		end   time.Time
		err   string
	}{
		{catalog.SagaCompensating, time.Time{}, "step 2: boom"},
		{catalog.SagaNeedsAttention, at(5), "step 2: boom; undo 2: bang"},
		{catalog.SagaCompensating, time.Time{}, "step 2: boom"},
		{catalog.SagaCompensated, at(9), "step 2: boom"},
	} {
		if err := j.SetSagaState(ctx, "s1", step.state, step.end, step.err); err != nil {
			t.Fatalf("SetSagaState(%s): %v", step.state, err)
		}
		want.State, want.End, want.Error = step.state, step.end.UTC(), step.err
		CheckSaga(t, load(t, j, "s1"), want)
	}
	if err := j.SetSagaState(ctx, "s1", "sleeping", at(10), ""); err == nil {
		t.Errorf("SetSagaState with an invalid state: no error")
	}
}

func testSteps(t *testing.T, j catalog.Journal) {
	want := create(t, j, newSaga("s1", "gitlab", at(0)))
	other := create(t, j, newSaga("s2", "gitlab", at(0)))
	fwd := func(seq int, name string, st catalog.StepState, start, end int, data map[string]string, err string) catalog.SagaStep {
		s := catalog.SagaStep{Seq: seq, Name: name, Phase: catalog.PhaseForward, State: st, Start: at(start), Data: data, Error: err}
		if end >= 0 {
			s.End = at(end)
		}
		return s
	}
	// Written in the order a runner writes them; each replaces the last
	// row of its (seq, phase).
	put(t, j, "s1", fwd(1, "backup", catalog.StepStarted, 0, -1, nil, ""))
	put(t, j, "s1", fwd(1, "backup", catalog.StepStarted, 0, -1, map[string]string{"snapshot": "abc"}, ""))
	b := put(t, j, "s1", fwd(1, "backup", catalog.StepDone, 0, 1, map[string]string{"snapshot": "abc"}, ""))
	put(t, j, "s1", fwd(2, "set version", catalog.StepStarted, 2, -1, map[string]string{"previous": "1.0.4"}, ""))
	sv := put(t, j, "s1", fwd(2, "set version", catalog.StepFailed, 2, 3, map[string]string{"previous": "1.0.4"}, "unhealthy"))
	put(t, j, "s1", catalog.SagaStep{Seq: 2, Name: "set version", Phase: catalog.PhaseCompensate, State: catalog.StepStarted, Start: at(4)})
	u2 := put(t, j, "s1", catalog.SagaStep{Seq: 2, Name: "set version", Phase: catalog.PhaseCompensate, State: catalog.StepDone,
		Start: at(4), End: at(5), Data: map[string]string{"restored": "abc", "odd \"key\"": "line\nbreak"}})
	u1 := put(t, j, "s1", catalog.SagaStep{Seq: 1, Name: "backup", Phase: catalog.PhaseCompensate, State: catalog.StepSkipped,
		Start: at(6), End: at(6)})
	// Another saga's rows stay its own.
	o := put(t, j, "s2", fwd(1, "backup", catalog.StepStarted, 0, -1, nil, ""))

	want.Steps = []catalog.SagaStep{b, sv, u2, u1}
	CheckSaga(t, load(t, j, "s1"), want)
	other.Steps = []catalog.SagaStep{o}
	CheckSaga(t, load(t, j, "s2"), other)

	// A step started again (a resumed compensation) loses its end and
	// error and keeps the data written with it.
	again := put(t, j, "s1", catalog.SagaStep{Seq: 2, Name: "set version", Phase: catalog.PhaseCompensate, State: catalog.StepStarted,
		Start: at(7), Data: u2.Data})
	want.Steps[2] = again
	CheckSaga(t, load(t, j, "s1"), want)

	// Sagas returns the journals too.
	ss, err := j.Sagas(t.Context(), catalog.SagaFilter{})
	if err != nil || len(ss) != 2 {
		t.Fatalf("Sagas = %d sagas, %v; want 2", len(ss), err)
	}
	CheckSaga(t, ss[0], other) // same start; inserted last
	CheckSaga(t, ss[1], want)
}

func testStepInvalid(t *testing.T, j catalog.Journal) {
	create(t, j, newSaga("s1", "gitlab", at(0)))
	ok := catalog.SagaStep{Seq: 1, Name: "a", Phase: catalog.PhaseForward, State: catalog.StepStarted, Start: at(0)}
	for name, mod := range map[string]func(*catalog.SagaStep){
		"seq 0":     func(s *catalog.SagaStep) { s.Seq = 0 },
		"no name":   func(s *catalog.SagaStep) { s.Name = "" },
		"no start":  func(s *catalog.SagaStep) { s.Start = time.Time{} },
		"bad phase": func(s *catalog.SagaStep) { s.Phase = "sideways" },
		"bad state": func(s *catalog.SagaStep) { s.State = "pending" },
	} {
		s := ok
		mod(&s)
		if err := j.PutStep(t.Context(), "s1", s); err == nil {
			t.Errorf("PutStep with %s: no error", name)
		}
	}
	if got := load(t, j, "s1"); len(got.Steps) != 0 {
		t.Errorf("after invalid steps: %+v; want none", got.Steps)
	}
}

func testSagaFilters(t *testing.T, j catalog.Journal) {
	ctx := t.Context()
	mk := func(id, kind, subject string, start int, state catalog.SagaState) catalog.Saga {
		s := newSaga(id, subject, at(start))
		s.Kind, s.State = kind, state
		return create(t, j, s)
	}
	// Inserted out of time order, with a tie on start.
	ss := []catalog.Saga{
		mk("a", "upgrade", "gitlab", 10, catalog.SagaDone),
		mk("b", "upgrade", "gitlab", 5, catalog.SagaCompensated),
		mk("c", "upgrade", "web", 20, catalog.SagaRunning),
		mk("d", "rollback", "gitlab", 20, catalog.SagaNeedsAttention),
		mk("e", "upgrade", "gitlab", 30, catalog.SagaCompensating),
	}
	a, b, c, d, e := ss[0], ss[1], ss[2], ss[3], ss[4]
	tests := []struct {
		f    catalog.SagaFilter
		want []catalog.Saga
	}{
		{catalog.SagaFilter{}, []catalog.Saga{e, d, c, a, b}},
		{catalog.SagaFilter{Limit: 2}, []catalog.Saga{e, d}},
		{catalog.SagaFilter{Kind: "upgrade"}, []catalog.Saga{e, c, a, b}},
		{catalog.SagaFilter{Subject: "gitlab"}, []catalog.Saga{e, d, a, b}},
		{catalog.SagaFilter{Kind: "upgrade", Subject: "gitlab", Limit: 2}, []catalog.Saga{e, a}},
		{catalog.SagaFilter{States: catalog.UnfinishedSagaStates}, []catalog.Saga{e, d, c}},
		{catalog.SagaFilter{Subject: "gitlab", States: []catalog.SagaState{catalog.SagaDone, catalog.SagaCompensated}}, []catalog.Saga{a, b}},
		{catalog.SagaFilter{Subject: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.f), func(t *testing.T) {
			got, err := j.Sagas(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d sagas, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				CheckSaga(t, got[i], tt.want[i])
			}
		})
	}
}

func testJournalConcurrent(t *testing.T, j catalog.Journal) {
	const writers, steps = 8, 20
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			if err := j.CreateSaga(ctx, newSaga(id, id, at(w))); err != nil {
				errs[w] = err
				return
			}
			for i := 1; i <= steps; i++ {
				for _, state := range []catalog.StepState{catalog.StepStarted, catalog.StepDone} {
					st := catalog.SagaStep{Seq: i, Name: fmt.Sprint("step ", i), Phase: catalog.PhaseForward,
						State: state, Start: at(i), Data: map[string]string{"writer": id}}
					if err := j.PutStep(ctx, id, st); err != nil {
						errs[w] = err
						return
					}
				}
			}
			errs[w] = j.SetSagaState(ctx, id, catalog.SagaDone, at(steps+1), "")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ss, err := j.Sagas(ctx, catalog.SagaFilter{States: []catalog.SagaState{catalog.SagaDone}})
	if err != nil || len(ss) != writers {
		t.Fatalf("Sagas = %d done, %v; want %d", len(ss), err, writers)
	}
	for _, s := range ss {
		if len(s.Steps) != steps {
			t.Errorf("saga %s: %d steps, want %d", s.ID, len(s.Steps), steps)
		}
		for i, st := range s.Steps {
			if st.Seq != i+1 || st.State != catalog.StepDone || st.Data["writer"] != s.ID {
				t.Errorf("saga %s: step %d: %+v", s.ID, i+1, st)
			}
		}
	}
}
