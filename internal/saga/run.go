package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"homelab/internal/catalog"
)

// execution is one run (or resume) of a saga: its steps and an in-memory
// copy of its record that every journal write updates first, so the
// record returned says what happened even if the journal could not.
type execution struct {
	r     *Runner
	steps []Step
	// base outlives the caller's cancellation: journal writes and Undos
	// run on it.
	base context.Context

	mu  sync.Mutex // guards rec (StepContext.Set may be called from any goroutine)
	rec Record
	// journalErrs are the journal writes that failed without stopping
	// the saga.
	journalErrs []error
}

func newExecution(ctx context.Context, r *Runner, rec Record, steps []Step) *execution {
	return &execution{r: r, steps: steps, base: context.WithoutCancel(ctx), rec: rec}
}

// row returns the index in x.rec.Steps of the row (seq, phase), or -1.
// x.mu must be held.
func (x *execution) row(seq int, phase catalog.StepPhase) int {
	for i, st := range x.rec.Steps {
		if st.Seq == seq && st.Phase == phase {
			return i
		}
	}
	return -1
}

// get returns a copy of the row (seq, phase) and whether there is one.
func (x *execution) get(seq int, phase catalog.StepPhase) (StepRecord, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := x.row(seq, phase)
	if i < 0 {
		return StepRecord{}, false
	}
	st := x.rec.Steps[i]
	st.Data = maps.Clone(st.Data)
	return st, true
}

// put replaces (or appends) the row st in the record, then journals it.
// Rows are appended in the journal's order: forward rows by ascending
// seq, then compensations by descending seq. It reports progress if
// notify is set.
func (x *execution) put(st StepRecord, notify bool) error {
	x.mu.Lock()
	err := x.putLocked(st)
	x.mu.Unlock()
	if notify && x.r.Progress != nil {
		x.r.Progress(x.rec.ID, st)
	}
	return err
}

// putLocked is put without the progress report; x.mu must be held.
func (x *execution) putLocked(st StepRecord) error {
	if i := x.row(st.Seq, st.Phase); i >= 0 {
		x.rec.Steps[i] = st
	} else {
		x.rec.Steps = append(x.rec.Steps, st)
	}
	ctx, cancel := context.WithTimeout(x.base, JournalTimeout)
	defer cancel()
	if err := x.r.Journal.PutStep(ctx, x.rec.ID, st); err != nil {
		x.r.log().Warn("saga journal write failed", "saga", x.rec.ID, "step", st.Name, "phase", st.Phase, "state", st.State, "err", err)
		return err
	}
	return nil
}

// drop removes the row (seq, phase) from the record.
func (x *execution) drop(seq int, phase catalog.StepPhase) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if i := x.row(seq, phase); i >= 0 {
		x.rec.Steps = slices.Delete(x.rec.Steps, i, i+1)
	}
}

// putOrNote is put for rows whose journal failure does not stop the saga:
// the error is kept for Error.JournalErr.
func (x *execution) putOrNote(st StepRecord) {
	if err := x.put(st, true); err != nil {
		x.journalErrs = append(x.journalErrs, err)
	}
}

// setState records the saga's state and error, with the end time if the
// saga stopped (a final state or needs_attention), then journals them; a
// journal failure is kept for Error.JournalErr.
func (x *execution) setState(state State, msg string) {
	x.mu.Lock()
	x.rec.State, x.rec.Error, x.rec.End = state, msg, time.Time{}
	if state.Final() || state == NeedsAttention {
		x.rec.End = x.r.now()
	}
	rec := x.rec
	x.mu.Unlock()
	ctx, cancel := context.WithTimeout(x.base, JournalTimeout)
	defer cancel()
	if err := x.r.Journal.SetSagaState(ctx, rec.ID, state, rec.End, msg); err != nil {
		x.r.log().Warn("saga journal write failed", "saga", rec.ID, "state", state, "err", err)
		x.journalErrs = append(x.journalErrs, err)
	}
}

// record returns a copy of the record.
func (x *execution) record() Record {
	x.mu.Lock()
	defer x.mu.Unlock()
	rec := x.rec
	rec.Steps = make([]StepRecord, len(x.rec.Steps))
	for i, st := range x.rec.Steps {
		st.Data = maps.Clone(st.Data)
		rec.Steps[i] = st
	}
	return rec
}

// failure is why the forward run stopped at steps[index].
type failure struct {
	index   int
	started bool // the step began: its Do ran, at least in part
	err     error
}

// forward runs the steps from index from on, each journalled started
// before its Do and done or failed after; it returns nil if all are done.
// It stops before a step if ctx is done or the started row cannot be
// journalled (the step did not begin), and at a step whose Do fails or
// whose done row cannot be journalled (the step began: it did, at least
// in part, what it does).
func (x *execution) forward(ctx context.Context, from int) *failure {
	for i := from; i < len(x.steps); i++ {
		s := x.steps[i]
		if err := ctx.Err(); err != nil {
			return &failure{index: i, err: err}
		}
		st := StepRecord{Seq: i + 1, Name: s.Name, Phase: catalog.PhaseForward, State: catalog.StepStarted, Start: x.r.now()}
		if prev, ok := x.get(st.Seq, st.Phase); ok {
			st.Data = prev.Data // a Retryable step run again keeps what it recorded
		}
		if err := x.put(st, true); err != nil {
			x.drop(st.Seq, st.Phase) // Do did not run
			return &failure{index: i, err: fmt.Errorf("journal: %w", err)}
		}
		err := x.call(ctx, s.Do, i, catalog.PhaseForward)
		st, _ = x.get(st.Seq, st.Phase) // with what Do Set
		st.End = x.r.now()
		if err != nil {
			st.State, st.Error = catalog.StepFailed, err.Error()
			x.putOrNote(st)
			return &failure{index: i, started: true, err: err}
		}
		st.State = catalog.StepDone
		if err := x.put(st, true); err != nil {
			return &failure{index: i, started: true, err: fmt.Errorf("step done, but the journal could not record it: %w", err)}
		}
	}
	return nil
}

// compensate undoes, from the last step back, every step whose forward
// row exists and whose compensation is not journalled done or skipped:
// steps without an Undo are journalled skipped; the others started, then
// done or failed. It stops at the first Undo that fails and returns its
// step and error. changed reports whether any step has been undone (now
// or by an earlier run): if not, nothing had changed.
func (x *execution) compensate() (changed bool, failedStep string, err error) {
	for i := len(x.steps) - 1; i >= 0; i-- {
		s, seq := x.steps[i], i+1
		if _, ok := x.get(seq, catalog.PhaseForward); !ok {
			continue // never began
		}
		prev, ok := x.get(seq, catalog.PhaseCompensate)
		if ok && prev.State == catalog.StepDone {
			changed = true
			continue
		}
		if ok && prev.State == catalog.StepSkipped {
			continue
		}
		now := x.r.now()
		st := StepRecord{Seq: seq, Name: s.Name, Phase: catalog.PhaseCompensate, Start: now}
		if s.Undo == nil {
			st.State, st.End = catalog.StepSkipped, now
			x.putOrNote(st)
			continue
		}
		st.State, st.Data = catalog.StepStarted, prev.Data
		// Undo even if this row cannot be journalled: the forward row
		// already tells a later Resume to undo this step, and Undo is
		// idempotent.
		x.putOrNote(st)
		uctx, cancel := context.WithTimeout(x.base, x.r.undoTimeout())
		uerr := x.call(uctx, s.Undo, i, catalog.PhaseCompensate)
		cancel()
		st, _ = x.get(seq, catalog.PhaseCompensate)
		st.End = x.r.now()
		if uerr != nil {
			st.State, st.Error = catalog.StepFailed, uerr.Error()
			x.putOrNote(st)
			return changed, s.Name, uerr
		}
		st.State = catalog.StepDone
		x.putOrNote(st)
		changed = true
	}
	return changed, "", nil
}

// call runs f (a Do or an Undo of steps[i]) with a StepContext, turning a
// panic into an error: the saga is then compensated instead of left
// running by a crashed process.
func (x *execution) call(ctx context.Context, f func(context.Context, *StepContext) error, i int, phase catalog.StepPhase) (err error) {
	defer func() {
		if p := recover(); p != nil {
			x.r.log().Error("saga step panicked", "saga", x.rec.ID, "step", x.steps[i].Name, "phase", phase,
				"panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f(ctx, &StepContext{x: x, seq: i + 1, name: x.steps[i].Name, phase: phase})
}

// runForward runs the steps from index from on and, if one fails,
// compensates; it sets the saga's final state and returns the record and
// the outcome (see Runner.Run).
func (x *execution) runForward(ctx context.Context, from int) (Record, error) {
	f := x.forward(ctx, from)
	if f == nil {
		x.setState(Done, "")
		if err := errors.Join(x.journalErrs...); err != nil {
			return x.record(), x.newError(&Error{State: Done, JournalErr: err})
		}
		return x.record(), nil
	}
	e := &Error{Step: x.steps[f.index].Name, Started: f.started, Err: f.err}
	msg := fmt.Sprintf("step %q failed: %v", e.Step, f.err)
	if !f.started {
		msg = fmt.Sprintf("stopped before step %q: %v", e.Step, f.err)
	}
	e = x.compensation(msg, e)
	return x.record(), e
}

// compensation puts the saga in compensating with msg as its error,
// compensates, sets the outcome (compensated, failed or needs_attention)
// and returns e with it filled in.
func (x *execution) compensation(msg string, e *Error) *Error {
	x.setState(Compensating, msg)
	changed, undoStep, uerr := x.compensate()
	switch {
	case uerr != nil:
		// msg stays the reason the saga did not finish; the Undo's
		// failure is in its journal row.
		e.State, e.UndoStep, e.CompensationErr = NeedsAttention, undoStep, uerr
	case changed:
		e.State = Compensated
	default:
		e.State = Failed
	}
	x.setState(e.State, msg)
	e.JournalErr = errors.Join(x.journalErrs...)
	return x.newError(e)
}

// newError fills in e's saga.
func (x *execution) newError(e *Error) *Error {
	e.ID, e.Kind, e.Subject = x.rec.ID, x.rec.Kind, x.rec.Subject
	return e
}

// StepContext is what a running Do or Undo knows of its saga: its
// identity, params, and the data steps recorded in the journal.
type StepContext struct {
	x     *execution
	seq   int
	name  string
	phase catalog.StepPhase
}

// SagaID returns the saga's ID (for tagging what a step makes with it).
func (c *StepContext) SagaID() string { return c.x.rec.ID }

// Subject returns the saga's subject.
func (c *StepContext) Subject() string { return c.x.rec.Subject }

// Params returns the saga's params as journalled (JSON); nil if none.
func (c *StepContext) Params() json.RawMessage { return c.x.rec.Params }

// Step returns the name of the running step.
func (c *StepContext) Step() string { return c.name }

// Phase returns catalog.PhaseForward in a Do, catalog.PhaseCompensate in
// an Undo.
func (c *StepContext) Phase() catalog.StepPhase { return c.phase }

// Set records key = value in the running step's journal row (the forward
// row in a Do, the compensation row in an Undo) and journals it before it
// returns, durably: a Do records there what its Undo, a later step or a
// resume after a crash needs, before the side effect that needs it. An
// error means the value may not be in the journal (it is in this
// process's record); the step should fail rather than go on without it.
func (c *StepContext) Set(key, value string) error {
	c.x.mu.Lock()
	defer c.x.mu.Unlock()
	i := c.x.row(c.seq, c.phase)
	if i < 0 { // cannot happen: the row is put before the step is called
		return fmt.Errorf("set %s of step %q: no journal row", key, c.name)
	}
	st := c.x.rec.Steps[i]
	st.Data = maps.Clone(st.Data)
	if st.Data == nil {
		st.Data = map[string]string{}
	}
	st.Data[key] = value
	if err := c.x.putLocked(st); err != nil {
		return fmt.Errorf("set %s of step %q: %w", key, c.name, err)
	}
	return nil
}

// Get returns the value of key that the Do of step (a step's name; the
// running step's own, in its Undo) recorded with Set, in this run or,
// for a resumed saga, before the crash; false if there is none.
func (c *StepContext) Get(step, key string) (string, bool) {
	c.x.mu.Lock()
	defer c.x.mu.Unlock()
	for _, st := range c.x.rec.Steps {
		if st.Name == step && st.Phase == catalog.PhaseForward {
			v, ok := st.Data[key]
			return v, ok
		}
	}
	return "", false
}
