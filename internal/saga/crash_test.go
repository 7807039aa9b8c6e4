package saga_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/saga"
)

// The crash tests run a saga in a second process (this test binary run
// again with helperEnv set, see TestHelperProcess), which tells the test
// "ready" at a chosen point and then blocks until the test SIGKILLs it, as
// a power cut or kill -9 would end it. The test then finds the saga
// unfinished and resumes it from the journal, with the same steps built
// again.
const (
	helperEnv      = "HOMELAB_SAGA_HELPER"       // the crash point, below
	helperDBEnv    = "HOMELAB_SAGA_HELPER_DB"    // catalog path
	helperStateEnv = "HOMELAB_SAGA_HELPER_STATE" // state dir (locks)
)

// The crash points.
const (
	midStep      = "mid-step"      // during step two's Do, after it recorded "previous"
	betweenSteps = "between-steps" // after step two is journalled done, before three
	midUndo      = "mid-undo"      // three failed; during step two's Undo, after it recorded "restoring"
)

// TestHelperProcess is not a test: it is the crashing process of the
// crash tests, when run by them with helperEnv set.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return // only a helper when re-executed by the test that needs it
	}
	err := helper(mode, os.Getenv(helperDBEnv), os.Getenv(helperStateEnv))
	fmt.Fprintln(os.Stderr, "helper: the saga ended, it should have been killed:", err)
	os.Exit(1)
}

// ready tells the test to kill this process, and waits for it.
func ready() {
	fmt.Println("ready")
	time.Sleep(time.Hour)
}

func helper(mode, path, stateDir string) error {
	j, err := catalog.Open(context.Background(), path)
	if err != nil {
		return err
	}
	r := &saga.Runner{Journal: j, StateDir: stateDir}
	if mode == betweenSteps {
		r.Progress = func(id string, st saga.StepRecord) {
			if st.Name == "two" && st.Phase == catalog.PhaseForward && st.State == catalog.StepDone {
				ready()
			}
		}
	}
	steps := []saga.Step{
		{Name: "one", Do: func(ctx context.Context, sc *saga.StepContext) error {
			return sc.Set("snapshot", "snap-1")
		}, Undo: func(ctx context.Context, sc *saga.StepContext) error { return nil }},
		{Name: "two", Do: func(ctx context.Context, sc *saga.StepContext) error {
			if err := sc.Set("previous", "1.0.4"); err != nil {
				return err
			}
			if mode == midStep {
				ready()
			}
			return nil
		}, Undo: func(ctx context.Context, sc *saga.StepContext) error {
			snap, _ := sc.Get("one", "snapshot")
			if err := sc.Set("restoring", snap); err != nil {
				return err
			}
			if mode == midUndo {
				ready()
			}
			return nil
		}},
		{Name: "three", Do: func(ctx context.Context, sc *saga.StepContext) error {
			if mode == midUndo {
				return errors.New("unhealthy")
			}
			return nil
		}, Undo: func(ctx context.Context, sc *saga.StepContext) error { return nil }},
	}
	_, err = r.Run(context.Background(), saga.Saga{
		ID: "crashed", Kind: "upgrade", Subject: "gitlab", Params: map[string]string{"to": "1.0.5"}, Steps: steps,
	})
	return err
}

// crash runs the helper process to the crash point mode and SIGKILLs it
// there. It returns the catalog and state dir it used.
func crash(t *testing.T, mode string) (path, stateDir string) {
	t.Helper()
	dir := t.TempDir()
	path, stateDir = filepath.Join(dir, "catalog.db"), filepath.Join(dir, "state")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDBEnv+"="+path, helperStateEnv+"="+stateDir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if kerr := cmd.Process.Kill(); kerr != nil { // SIGKILL
		t.Fatal(kerr)
	}
	werr := cmd.Wait()
	if err != nil || line != "ready\n" {
		t.Fatalf("helper: %q, %v; want ready", line, err)
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != -1 { // -1: killed by a signal
		t.Fatalf("helper: %v; want killed", werr)
	}
	return path, stateDir
}

// resumeSteps are the helper's steps built again by the test: they record
// their calls with the data that the journal gives them.
func resumeSteps(rc *recorder) []saga.Step {
	get := func(sc *saga.StepContext, step, key string) string {
		v, ok := sc.Get(step, key)
		if !ok {
			return "(none)"
		}
		return v
	}
	var steps []saga.Step
	for _, name := range []string{"one", "two", "three"} {
		steps = append(steps, saga.Step{
			Name: name,
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				rc.add("do %s", name)
				return nil
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				rc.add("undo %s: snapshot %s, previous %s", name, get(sc, "one", "snapshot"), get(sc, "two", "previous"))
				return nil
			},
		})
	}
	return steps
}

// unfinished checks that the journal at path shows the one saga of the
// helper, unfinished in state, with rows want; it returns the saga.
func unfinished(t *testing.T, j catalog.Journal, state saga.State, want ...string) saga.Record {
	t.Helper()
	recs, err := saga.Unfinished(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != "crashed" || recs[0].State != state {
		t.Fatalf("Unfinished: %+v; want saga crashed, %s", recs, state)
	}
	if got := rows(t, recs[0]); !reflect.DeepEqual(got, want) {
		t.Fatalf("journal after the crash:\ngot  %q\nwant %q", got, want)
	}
	t.Log(saga.Describe(recs[0]))
	return recs[0]
}

// TestCrashMidStepCompensates: killed during a step, the saga is found
// running with that step started; a forward resume is refused; Resume
// compensates it with the data recorded before the crash; a second
// Resume does nothing.
func TestCrashMidStepCompensates(t *testing.T) {
	path, stateDir := crash(t, midStep)
	j := openCatalog(t, path)
	rec := unfinished(t, j, saga.Running, "do 1 one done", "do 2 two started")
	if got, want := rec.Steps[1].Data, map[string]string{"previous": "1.0.4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("data of the interrupted step %v, want %v", got, want)
	}
	var rc recorder
	r := &saga.Runner{Journal: j, StateDir: stateDir, Now: newClock().Now}
	steps := resumeSteps(&rc)

	if _, err := r.Resume(t.Context(), rec.ID, steps, saga.Forward); !errors.Is(err, saga.ErrUnsafeResume) {
		t.Errorf("Resume(Forward): %v; want ErrUnsafeResume", err)
	} else {
		t.Log(err)
	}
	rc.check(t)

	// The dead helper's lock is gone: Resume gets it.
	got, err := r.Resume(t.Context(), rec.ID, steps, saga.Compensate)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	rc.check(t, "undo two: snapshot snap-1, previous 1.0.4", "undo one: snapshot snap-1, previous 1.0.4")
	if got.State != saga.Compensated || got.Error != `interrupted during step "two"` || got.End.IsZero() {
		t.Errorf("after Resume: %s, %q, end %v", got.State, got.Error, got.End)
	}
	checkJournal(t, j, got, "do 1 one done", "do 2 two started", "undo 2 two done", "undo 1 one done")

	again, err := r.Resume(t.Context(), rec.ID, steps, saga.Compensate)
	rc.check(t)
	if err != nil || again.State != saga.Compensated {
		t.Errorf("second Resume: %s, %v; want compensated, nothing done", again.State, err)
	}
	if recs, err := saga.Unfinished(t.Context(), j); err != nil || len(recs) != 0 {
		t.Errorf("Unfinished after Resume: %v, %v; want none", recs, err)
	}
}

// TestCrashMidStepRetryable: killed during a Retryable step, the saga
// resumes forward from that step.
func TestCrashMidStepRetryable(t *testing.T) {
	path, stateDir := crash(t, midStep)
	j := openCatalog(t, path)
	rec := unfinished(t, j, saga.Running, "do 1 one done", "do 2 two started")
	var rc recorder
	r := &saga.Runner{Journal: j, StateDir: stateDir, Now: newClock().Now}
	steps := resumeSteps(&rc)
	steps[1].Retryable = true
	got, err := r.Resume(t.Context(), rec.ID, steps, saga.Forward)
	if err != nil {
		t.Fatalf("Resume(Forward): %v", err)
	}
	rc.check(t, "do two", "do three")
	if got.State != saga.Done {
		t.Errorf("after Resume(Forward): %s", got.State)
	}
	checkJournal(t, j, got, "do 1 one done", "do 2 two done", "do 3 three done")
	if d := got.Steps[1].Data; d["previous"] != "1.0.4" {
		t.Errorf("data of the step run again: %v; want what its first run recorded", d)
	}
}

// TestCrashBetweenStepsResumesForward: killed between two steps, the saga
// may resume forward: only the steps left run.
func TestCrashBetweenStepsResumesForward(t *testing.T) {
	path, stateDir := crash(t, betweenSteps)
	j := openCatalog(t, path)
	rec := unfinished(t, j, saga.Running, "do 1 one done", "do 2 two done")
	var rc recorder
	r := &saga.Runner{Journal: j, StateDir: stateDir, Now: newClock().Now}
	got, err := r.Resume(t.Context(), rec.ID, resumeSteps(&rc), saga.Forward)
	if err != nil {
		t.Fatalf("Resume(Forward): %v", err)
	}
	rc.check(t, "do three")
	if got.State != saga.Done || got.Error != "" {
		t.Errorf("after Resume(Forward): %s, %q", got.State, got.Error)
	}
	checkJournal(t, j, got, "do 1 one done", "do 2 two done", "do 3 three done")
	if _, err := r.Resume(t.Context(), rec.ID, resumeSteps(&rc), saga.Forward); err != nil {
		t.Errorf("second Resume: %v", err)
	}
	rc.check(t)
}

// TestCrashBetweenStepsCompensates: the default resume of the same crash
// undoes both done steps.
func TestCrashBetweenStepsCompensates(t *testing.T) {
	path, stateDir := crash(t, betweenSteps)
	j := openCatalog(t, path)
	rec := unfinished(t, j, saga.Running, "do 1 one done", "do 2 two done")
	var rc recorder
	r := &saga.Runner{Journal: j, StateDir: stateDir, Now: newClock().Now}
	got, err := r.Resume(t.Context(), rec.ID, resumeSteps(&rc), saga.Compensate)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	rc.check(t, "undo two: snapshot snap-1, previous 1.0.4", "undo one: snapshot snap-1, previous 1.0.4")
	if got.State != saga.Compensated || got.Error != `interrupted after step "two" (done)` {
		t.Errorf("after Resume: %s, %q", got.State, got.Error)
	}
}

// TestCrashMidUndo: killed while compensating, the saga is found
// compensating; Resume continues where it stopped (the interrupted Undo
// again, then the earlier steps; not the Undo already done), and keeps
// why the saga failed.
func TestCrashMidUndo(t *testing.T) {
	path, stateDir := crash(t, midUndo)
	j := openCatalog(t, path)
	rec := unfinished(t, j, saga.Compensating,
		"do 1 one done", "do 2 two done", "do 3 three failed: unhealthy", "undo 3 three done", "undo 2 two started")
	var rc recorder
	r := &saga.Runner{Journal: j, StateDir: stateDir, Now: newClock().Now}
	steps := resumeSteps(&rc)
	if _, err := r.Resume(t.Context(), rec.ID, steps, saga.Forward); !errors.Is(err, saga.ErrUnsafeResume) {
		t.Errorf("Resume(Forward) of a compensating saga: %v; want ErrUnsafeResume", err)
	}
	got, err := r.Resume(t.Context(), rec.ID, steps, saga.Compensate)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	rc.check(t, "undo two: snapshot snap-1, previous 1.0.4", "undo one: snapshot snap-1, previous 1.0.4")
	if got.State != saga.Compensated || got.Error != `step "three" failed: unhealthy` {
		t.Errorf("after Resume: %s, %q", got.State, got.Error)
	}
	checkJournal(t, j, got, "do 1 one done", "do 2 two done", "do 3 three failed: unhealthy",
		"undo 3 three done", "undo 2 two done", "undo 1 one done")
	// What the interrupted Undo recorded is kept.
	if d := got.Steps[4].Data; d["restoring"] != "snap-1" {
		t.Errorf("data of the resumed undo: %v", d)
	}
	if _, err := r.Resume(t.Context(), rec.ID, steps, saga.Compensate); err != nil {
		t.Errorf("second Resume: %v", err)
	}
	rc.check(t)
}
