package saga

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"homelab/internal/catalog"
)

var (
	// ErrUnfinished is matched by an *UnfinishedError.
	ErrUnfinished = errors.New("unfinished saga")
	// ErrUnsafeResume is returned (wrapped, with the reason) by a forward
	// Resume that the journal shows is not safe; nothing was changed.
	ErrUnsafeResume = errors.New("cannot resume forward")
	// ErrPlanMismatch is returned (wrapped) by Resume when the steps given
	// are not those journalled (names, in order).
	ErrPlanMismatch = errors.New("steps do not match the journal")
)

// UnfinishedError is Run's refusal to start a saga on a subject that has
// an unfinished one, or that an unfinished saga covers, or while it
// covers the subject of one (Saga.Covers). It matches ErrUnfinished.
type UnfinishedError struct {
	Record Record
	// Via is the subject covered that they share; empty when Record is
	// on the same subject.
	Via string
}

// Error names the saga and how to finish it: a saga's kind reads as the
// command that resumes it (homelab upgrade --resume ID, homelab snapshot
// restore --resume ID).
func (e *UnfinishedError) Error() string {
	via := ""
	if e.Via != "" {
		via = fmt.Sprintf(", which covers %s too", e.Via)
	}
	return fmt.Sprintf("unfinished saga: %s%s; finish it first with homelab %s --resume %s", Describe(e.Record), via, e.Record.Kind, e.Record.ID)
}

// Is reports whether target is ErrUnfinished.
func (e *UnfinishedError) Is(target error) bool { return target == ErrUnfinished }

// Error is a saga that did not finish done: a step failed (or the run
// was interrupted before one), and how compensation went. It unwraps to
// Err, CompensationErr and JournalErr, so errors.Is(err,
// context.Canceled) tells an interrupted run.
type Error struct {
	ID, Kind, Subject string
	// Step is the step that failed, or before which the run stopped
	// (Started false); empty for a Resume that only compensated.
	Step string
	// Started says whether Step began (and so was undone too).
	Started bool
	// Err is why Step failed; for a Resume that only compensated, the
	// journalled reason the saga did not finish.
	Err error
	// UndoStep is the step whose Undo failed, and CompensationErr why;
	// empty and nil if compensation succeeded.
	UndoStep        string
	CompensationErr error
	// State is the saga's state now: failed, compensated or
	// needs_attention; done if only JournalErr is set.
	State State
	// JournalErr holds journal writes that failed without stopping the
	// saga (during compensation, or of its final state): the journal may
	// show it unfinished though it is not, and a Resume would then redo
	// the compensation, which is idempotent.
	JournalErr error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (saga %s)", e.Kind, e.Subject, e.ID)
	switch {
	case e.Step != "" && e.Started:
		fmt.Fprintf(&b, ": step %q failed: %v", e.Step, e.Err)
	case e.Step != "":
		fmt.Fprintf(&b, ": stopped before step %q: %v", e.Step, e.Err)
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	switch e.State {
	case Compensated:
		b.WriteString("; compensated: every change was undone")
	case Failed:
		b.WriteString("; nothing to undo")
	case NeedsAttention:
		fmt.Fprintf(&b, "; undo of step %q failed: %v; the saga needs attention: fix the cause and resume it", e.UndoStep, e.CompensationErr)
	case Done:
		b.WriteString("; done")
	}
	if e.JournalErr != nil {
		// One line: the first failure, and how many more (errors.Join
		// would put each on its own line).
		first, more := e.JournalErr, 0
		if j, ok := e.JournalErr.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
			first, more = j.Unwrap()[0], len(j.Unwrap())-1
		}
		fmt.Fprintf(&b, "; the journal may not show this: %v", first)
		if more > 0 {
			fmt.Fprintf(&b, " (and %d more journal write failures)", more)
		}
	}
	return b.String()
}

// Unwrap returns the errors that are set of Err, CompensationErr and
// JournalErr.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.CompensationErr, e.JournalErr} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Describe says in one line where a saga stands, for status lines and
// reports of unfinished sagas, e.g.
//
//	upgrade gitlab (saga 20261123T101500Z-1a2b3c4d): running since 2026-11-23 10:15:00 UTC, step 2 "set version 1.0.5" started
//	upgrade gitlab (saga 20261123T101500Z-1a2b3c4d): needs_attention since 2026-11-23 10:20:00 UTC: step "wait healthy" failed: ...; undo of step 2 "set version 1.0.5" failed: ...
//	upgrade gitlab (saga 20261123T101500Z-1a2b3c4d): compensated: step "wait healthy" failed: ...
func Describe(r Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (saga %s): %s", r.Kind, r.Subject, r.ID, r.State)
	if !r.State.Final() {
		since := r.Start
		if !r.End.IsZero() {
			since = r.End
		}
		fmt.Fprintf(&b, " since %s", since.UTC().Format(time.DateTime+" MST"))
		if n := len(r.Steps); n > 0 && r.State != NeedsAttention {
			last := r.Steps[n-1]
			what := "step"
			if last.Phase == catalog.PhaseCompensate {
				what = "undo of step"
			}
			fmt.Fprintf(&b, ", %s %d %q %s", what, last.Seq, last.Name, last.State)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, ": %s", r.Error)
	}
	if r.State == NeedsAttention {
		for _, st := range slices.Backward(r.Steps) {
			if st.Phase == catalog.PhaseCompensate && st.State == catalog.StepFailed {
				fmt.Fprintf(&b, "; undo of step %d %q failed: %s", st.Seq, st.Name, st.Error)
				break
			}
		}
	}
	return b.String()
}
