package saga

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"homelab/internal/catalog"
	"homelab/internal/lock"
)

// Unfinished returns the sagas that are not over (running, compensating,
// needs_attention), newest first, with their journals. Run without the
// subject's lock, it cannot tell a saga whose process died from one a live
// process is running; Resume can (see the package documentation).
func Unfinished(ctx context.Context, j catalog.Journal) ([]Record, error) {
	recs, err := j.Sagas(ctx, catalog.SagaFilter{States: catalog.UnfinishedSagaStates})
	if err != nil {
		return nil, fmt.Errorf("unfinished sagas: %w", err)
	}
	return recs, nil
}

// History returns the sagas of kind on subject (empty: any), newest first,
// at most limit (0: all), each with its journal: forward rows by step,
// then compensations in the order they ran.
func History(ctx context.Context, j catalog.Journal, kind, subject string, limit int) ([]Record, error) {
	recs, err := j.Sagas(ctx, catalog.SagaFilter{Kind: kind, Subject: subject, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("saga history: %w", err)
	}
	return recs, nil
}

// Resume finishes the unfinished saga with ID id, with its steps rebuilt
// by the caller from the record's Params: the same names in the same
// order, else an error wrapping ErrPlanMismatch. It takes the subject's
// lock first, so it fails (matching lock.ErrBusy, unless Wait) while a
// live process runs a saga on the subject, and reads the journal under it.
//
// A saga already done, failed or compensated is left alone: Resume
// returns its record and nil, so resuming twice is harmless.
//
// mode Compensate puts the saga in compensating and undoes, in reverse,
// each step whose forward row exists and whose compensation is not done or
// skipped (see the package documentation); it returns the record in state
// compensated (or failed, if no step needed undoing) and nil, or in
// needs_attention with an *Error naming the Undo that failed. The saga's
// error keeps why it did not finish; a saga that died running gets
// "interrupted during step ..." (or after, or before any step).
//
// mode Forward runs the steps left, as Run would (compensating if one
// fails), if the journal shows that is safe; otherwise it returns an
// error wrapping ErrUnsafeResume and changes nothing.
func (r *Runner) Resume(ctx context.Context, id string, steps []Step, mode Mode) (Record, error) {
	if mode != Compensate && mode != Forward {
		return Record{}, fmt.Errorf("resume saga %s: unknown mode %v", id, mode)
	}
	if r.Journal == nil {
		return Record{}, errors.New("saga runner: journal and state dir are required")
	}
	rec, err := r.Journal.Saga(ctx, id)
	if err != nil {
		return Record{}, fmt.Errorf("resume saga: %w", err)
	}
	release, err := r.lock(ctx, rec.Subject)
	if err != nil {
		return Record{}, fmt.Errorf("resume saga %s: %w", id, err)
	}
	rec, err = r.resume(ctx, id, steps, mode)
	if rerr := release(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return rec, err
}

func (r *Runner) resume(ctx context.Context, id string, steps []Step, mode Mode) (Record, error) {
	// Again, under the lock: another Resume may have finished it.
	rec, err := r.Journal.Saga(ctx, id)
	if err != nil {
		return Record{}, fmt.Errorf("resume saga: %w", err)
	}
	if rec.State.Final() {
		return rec, nil
	}
	if err := validate(steps); err != nil {
		return rec, fmt.Errorf("resume saga %s: %w", id, err)
	}
	if got := names(steps); !slices.Equal(got, rec.Plan) {
		return rec, fmt.Errorf("resume saga %s: %w: journalled %q, given %q", id, ErrPlanMismatch, rec.Plan, got)
	}
	x := newExecution(ctx, r, rec, steps)
	if mode == Forward {
		from, err := forwardFrom(rec, steps)
		if err != nil {
			return rec, fmt.Errorf("resume saga %s: %w", id, err)
		}
		return x.runForward(ctx, from)
	}
	msg := rec.Error
	if msg == "" {
		msg = interrupted(rec)
	}
	e := x.compensation(msg, &Error{Err: errors.New(msg)})
	if e.State == NeedsAttention || e.JournalErr != nil {
		return x.record(), e
	}
	return x.record(), nil
}

// Resolve closes the unfinished saga id without running anything: an
// operator has put its subject right by hand (restored the data, set the
// version) and says so. It takes the subject's lock, as Resume does (an
// error if a live process holds it), and puts the saga in state resolved
// with its error kept and "; resolved by hand" added, so that it is no
// longer reported, its restore points are no longer kept from prune
// (PinnedSnapshots), and a new saga on the subject may start. A saga
// already over is returned as it is, with nil.
func (r *Runner) Resolve(ctx context.Context, id string) (Record, error) {
	if r.Journal == nil {
		return Record{}, errors.New("saga runner: journal and state dir are required")
	}
	rec, err := r.Journal.Saga(ctx, id)
	if err != nil {
		return Record{}, fmt.Errorf("resolve saga: %w", err)
	}
	release, err := r.lock(ctx, rec.Subject)
	if err != nil {
		return Record{}, fmt.Errorf("resolve saga %s: %w", id, err)
	}
	defer release()
	if rec, err = r.Journal.Saga(ctx, id); err != nil || rec.State.Final() {
		return rec, err
	}
	msg := rec.Error
	if msg == "" {
		msg = interrupted(rec)
	}
	msg += "; resolved by hand"
	end := r.now()
	if err := r.Journal.SetSagaState(context.WithoutCancel(ctx), id, Resolved, end, msg); err != nil {
		return rec, err
	}
	return r.Journal.Saga(context.WithoutCancel(ctx), id)
}

// forwardFrom returns the index of the first step a forward Resume runs,
// or an error wrapping ErrUnsafeResume saying why it may not.
func forwardFrom(rec Record, steps []Step) (int, error) {
	if rec.State != Running {
		return 0, fmt.Errorf("%w: the saga is %s: its compensation has begun", ErrUnsafeResume, rec.State)
	}
	fwd := map[int]StepRecord{}
	for _, st := range rec.Steps {
		if st.Phase == catalog.PhaseCompensate {
			return 0, fmt.Errorf("%w: step %q has been compensated", ErrUnsafeResume, st.Name)
		}
		fwd[st.Seq] = st
	}
	for i, s := range steps {
		st, ok := fwd[i+1]
		switch {
		case !ok:
			return i, nil
		case st.State == catalog.StepDone:
			continue
		case st.State == catalog.StepStarted && s.Retryable:
			return i, nil
		case st.State == catalog.StepStarted:
			return 0, fmt.Errorf("%w: step %q was interrupted midway and may not run again", ErrUnsafeResume, s.Name)
		default:
			return 0, fmt.Errorf("%w: step %q %s", ErrUnsafeResume, s.Name, st.State)
		}
	}
	return len(steps), nil
}

// interrupted says where a saga that died running stopped.
func interrupted(rec Record) string {
	var last *StepRecord
	for i := range rec.Steps {
		if rec.Steps[i].Phase == catalog.PhaseForward {
			last = &rec.Steps[i]
		}
	}
	switch {
	case last == nil:
		return "interrupted before any step"
	case last.State == catalog.StepStarted:
		return fmt.Sprintf("interrupted during step %q", last.Name)
	default:
		return fmt.Sprintf("interrupted after step %q (%s)", last.Name, last.State)
	}
}

// SnapshotKey is the journal key (StepContext.Set) under which a step
// records the ID of a snapshot of a backup target that the saga needs to
// finish or undo (an upgrade's restore point). Retention (backup prune)
// keeps every snapshot so recorded by an unfinished saga: see
// PinnedSnapshots.
func SnapshotKey(target string) string { return "snapshot:" + target }

// PinnedSnapshots returns the IDs of target's snapshots recorded under
// SnapshotKey by the forward steps of recs (the unfinished sagas), in
// journal order, without repeats.
func PinnedSnapshots(recs []Record, target string) []string {
	var out []string
	for _, r := range recs {
		for _, st := range r.Steps {
			if id, ok := st.Data[SnapshotKey(target)]; ok && st.Phase == catalog.PhaseForward && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// InProgress reports whether a process is at work on the unfinished saga
// r now (it holds the subject's lock: lock.Held, which does not take it),
// as opposed to a saga whose process died or that waits for an operator;
// holder describes that process. Errors reading the lock table count as
// not in progress: the saga is then reported as unfinished, which errs on
// the side of attention.
func InProgress(stateDir string, r Record) (bool, string) {
	if r.State.Final() {
		return false, ""
	}
	held, holder, err := lock.Held(stateDir, LockName(r.Subject))
	if err != nil {
		return false, ""
	}
	return held, holder
}
