package saga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lock"
)

// Record is a saga as journalled: kind, subject, params, plan (the step
// names), state, times, error, and the journal rows ([StepRecord]).
type Record = catalog.Saga

// StepRecord is one journal row: a step's forward action or its
// compensation, with its state, times, recorded data and error.
type StepRecord = catalog.SagaStep

// State is a saga's state; see the package documentation.
type State = catalog.SagaState

// The states of a saga; see the package documentation.
const (
	Running        = catalog.SagaRunning
	Done           = catalog.SagaDone
	Failed         = catalog.SagaFailed
	Compensating   = catalog.SagaCompensating
	Compensated    = catalog.SagaCompensated
	NeedsAttention = catalog.SagaNeedsAttention
	Resolved       = catalog.SagaResolved
)

// Step is one step of a saga.
type Step struct {
	// Name identifies the step in the journal and for Get; unique in its
	// saga, e.g. "set version 1.0.5".
	Name string
	// Do makes the change. An error (or a panic) fails the step and the
	// saga is compensated. Do should return promptly when ctx is done.
	Do func(ctx context.Context, sc *StepContext) error
	// Undo reverses Do; nil if there is nothing to undo (a backup). It
	// also runs when Do failed or was interrupted, and again if a
	// previous Undo was interrupted, so it must be idempotent and safe
	// after a partial Do or none (a value Do would have Set may be
	// missing). Its ctx is not cancelled by the caller's cancellation; it
	// ends after Runner.UndoTimeout.
	Undo func(ctx context.Context, sc *StepContext) error
	// Retryable says Do may run again after an interrupted run of itself
	// (it is idempotent and safe after a partial run, like waiting for
	// health): a forward Resume may then re-run this step when the
	// process died during it.
	Retryable bool
}

// Saga is what Run runs.
type Saga struct {
	// ID identifies the saga in the journal; Run makes one if empty
	// (UTC time to the second and 4 random bytes, 20261123T101500Z-1a2b3c4d).
	ID string
	// Kind is what the saga does ("upgrade"); Subject what it changes
	// (the service). Both are required; a Subject must be usable as a
	// file name (it names the saga's lock).
	Kind, Subject string
	// Params is marshalled to JSON and journalled: what the caller needs
	// to build the same steps again to resume the saga (from and to
	// versions, the path). nil journals none.
	Params any
	// Steps run in order; at least one.
	Steps []Step
	// Covers are the subjects besides Subject that the saga changes (a
	// lab-wide saga: the services a lab snapshot restore stops, restores
	// and sets back). While the saga is unfinished, Run refuses a saga on
	// any of them, and Run refuses this saga while one of them has an
	// unfinished saga. They are journalled in Params as its top-level
	// "covers" (Params must then marshal to a JSON object, without a
	// "covers" of its own); Covered reads them back.
	Covers []string
}

// coversKey is the top-level key of Params that journals Saga.Covers.
const coversKey = "covers"

// withCovers adds covers to params, a JSON object, under coversKey.
func withCovers(params json.RawMessage, covers []string) (json.RawMessage, error) {
	if len(covers) == 0 {
		return params, nil
	}
	obj := map[string]json.RawMessage{}
	if params != nil {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, fmt.Errorf("covers need params that are a JSON object: %w", err)
		}
	}
	if _, ok := obj[coversKey]; ok {
		return nil, fmt.Errorf("params have a %q of their own", coversKey)
	}
	b, err := json.Marshal(covers)
	if err != nil {
		return nil, err
	}
	obj[coversKey] = b
	return json.Marshal(obj)
}

// Covered returns the subjects rec covers besides its subject
// (Saga.Covers, read from its params); nil for a saga that covers none.
func Covered(rec Record) []string {
	var p struct {
		Covers []string `json:"covers"`
	}
	if json.Unmarshal(rec.Params, &p) != nil {
		return nil
	}
	return p.Covers
}

// Mode is how Resume finishes a saga.
type Mode int

const (
	// Compensate undoes every step that began (the default).
	Compensate Mode = iota
	// Forward runs the remaining steps, where the journal shows that is
	// safe.
	Forward
)

func (m Mode) String() string {
	switch m {
	case Compensate:
		return "compensate"
	case Forward:
		return "forward"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DefaultUndoTimeout is Runner.UndoTimeout when zero: long enough to
// restore a large database dump.
const DefaultUndoTimeout = 2 * time.Hour

// JournalTimeout bounds each journal write, which runs on a context that
// is not cancelled (so a failure is journalled after a Ctrl-C too). A write
// waits up to catalog.BusyTimeout for another writer.
const JournalTimeout = 30 * time.Second

// Runner runs and resumes sagas.
type Runner struct {
	// Journal is where sagas are journalled: the catalog, never a
	// database that a saga changes. Required.
	Journal catalog.Journal
	// StateDir holds the subject locks (<StateDir>/locks/saga-<subject>.lock).
	// Required.
	StateDir string
	// Wait makes Run and Resume wait for a busy subject's lock instead of
	// failing with a *lock.BusyError.
	Wait bool
	// UndoTimeout bounds each Undo; 0 means DefaultUndoTimeout.
	UndoTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log gets journal write failures (the saga goes on: see Error's
	// JournalErr) and panics of steps; nil discards them.
	Log *slog.Logger
	// Progress, when set, is called after each journal row changes state
	// (a step or an Undo started, done, failed or skipped), with the
	// saga's ID, for the caller to show progress. It must not block for
	// long.
	Progress func(id string, st StepRecord)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) undoTimeout() time.Duration {
	if r.UndoTimeout > 0 {
		return r.UndoTimeout
	}
	return DefaultUndoTimeout
}

// LockName is the name of the lock (package lock) that Run and Resume hold
// on subject.
func LockName(subject string) string { return "saga-" + subject }

// lock takes the subject's lock and returns its release.
func (r *Runner) lock(ctx context.Context, subject string) (func() error, error) {
	if r.Journal == nil || r.StateDir == "" {
		return nil, errors.New("saga runner: journal and state dir are required")
	}
	l, err := lock.Acquire(ctx, r.StateDir, LockName(subject), r.Wait)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// NewID returns a saga ID: UTC time to the second plus 4 random bytes,
// e.g. 20261123T101500Z-1a2b3c4d.
func NewID(now time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// blocking returns the refusal of s for the first of open (unfinished
// sagas, newest first) on its subject, else the first that covers its
// subject or whose subject s covers; nil when none does.
func blocking(open []Record, s Saga) error {
	for _, o := range open {
		if o.Subject == s.Subject {
			return &UnfinishedError{Record: o}
		}
	}
	for _, o := range open {
		if slices.Contains(Covered(o), s.Subject) {
			return &UnfinishedError{Record: o, Via: s.Subject}
		}
		if slices.Contains(s.Covers, o.Subject) {
			return &UnfinishedError{Record: o, Via: o.Subject}
		}
	}
	return nil
}

// validate checks the steps: at least one, each named (uniquely) with a
// Do.
func validate(steps []Step) error {
	if len(steps) == 0 {
		return errors.New("no steps")
	}
	seen := map[string]bool{}
	for i, s := range steps {
		switch {
		case s.Name == "":
			return fmt.Errorf("step %d has no name", i+1)
		case seen[s.Name]:
			return fmt.Errorf("two steps are named %q", s.Name)
		case s.Do == nil:
			return fmt.Errorf("step %q has no Do", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

func names(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Name
	}
	return out
}

// Run runs s: it takes the subject's lock, refuses if the subject has an
// unfinished saga, or an unfinished saga covers it, or it covers the
// subject of an unfinished saga (Saga.Covers; an error matching
// ErrUnfinished, naming it and its --resume), journals
// the saga as running, then runs each step (journalled started before
// its Do, done or failed after it). If every step is done the saga is
// done, and Run returns its record and nil.
//
// If a step fails, its context is cancelled, or a journal write before a
// step fails, the steps that began are compensated in reverse (the failed
// one first) and Run returns the record, in state compensated, failed (no
// step needed undoing) or needs_attention (an Undo failed; compensation
// stopped there), with an *Error saying which step failed, why, and how
// compensation went. Errors before the saga is journalled (invalid s, a
// busy lock matching lock.ErrBusy, the unfinished saga, the journal) are
// returned with an empty record: nothing ran.
func (r *Runner) Run(ctx context.Context, s Saga) (Record, error) {
	if s.Kind == "" || s.Subject == "" {
		return Record{}, errors.New("saga: kind and subject are required")
	}
	if err := validate(s.Steps); err != nil {
		return Record{}, fmt.Errorf("%s %s: %w", s.Kind, s.Subject, err)
	}
	var params json.RawMessage
	if s.Params != nil {
		var err error
		if params, err = json.Marshal(s.Params); err != nil {
			return Record{}, fmt.Errorf("%s %s: params: %w", s.Kind, s.Subject, err)
		}
	}
	params, err := withCovers(params, s.Covers)
	if err != nil {
		return Record{}, fmt.Errorf("%s %s: params: %w", s.Kind, s.Subject, err)
	}
	release, err := r.lock(ctx, s.Subject)
	if err != nil {
		return Record{}, fmt.Errorf("%s %s: %w", s.Kind, s.Subject, err)
	}
	rec, err := r.run(ctx, s, params)
	if rerr := release(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return rec, err
}

func (r *Runner) run(ctx context.Context, s Saga, params json.RawMessage) (Record, error) {
	open, err := Unfinished(ctx, r.Journal)
	if err != nil {
		return Record{}, fmt.Errorf("%s %s: %w", s.Kind, s.Subject, err)
	}
	if err := blocking(open, s); err != nil {
		return Record{}, err
	}
	now := r.now()
	rec := Record{
		ID: s.ID, Kind: s.Kind, Subject: s.Subject, Params: params, Plan: names(s.Steps),
		State: Running, Start: now,
	}
	if rec.ID == "" {
		rec.ID = NewID(now)
	}
	if err := r.Journal.CreateSaga(ctx, rec); err != nil {
		return Record{}, fmt.Errorf("%s %s: %w", s.Kind, s.Subject, err)
	}
	x := newExecution(ctx, r, rec, s.Steps)
	return x.runForward(ctx, 0)
}
