// Package saga runs multi-step changes (an upgrade: backup, set version,
// wait healthy, ...) as sagas: ordered steps, each with a compensation,
// and a durable journal in the catalog ([catalog.Journal]), so that after
// a failure, a Ctrl-C or a crash the change is undone (or, where safe,
// finished) and the lab is left as it was.
//
// # Steps
//
// A [Step] has a Do and an Undo (nil: nothing to undo). [Runner.Run]
// journals every step "started" before its Do and "done" or "failed"
// after it; each journal write is durable when it returns. Steps record
// what their compensation or a later step needs (a snapshot ID, the
// previous version) with [StepContext.Set], which is journalled at once,
// and read it with [StepContext.Get], also after a crash and in another
// process.
//
// When a step fails, the steps that began are undone in reverse order,
// starting with the failed step itself: a step that failed midway (the
// version set, the container not started) may have changed things. So an
// Undo must be idempotent and safe after a partial Do, or after no Do at
// all (values its Do would have Set may be missing). Each Undo is
// journalled too ("started", then "done" or "failed"; "skipped" for a step
// without one). Compensation stops at the first Undo that fails: undoing
// earlier steps under a later one that could not be undone may do harm.
//
// Cancelling Run's context (SIGINT) during a step is a failure of that
// step; between steps, it stops the run before the next one. Either way
// the compensation then runs on a context that is not cancelled (but
// bounded by [Runner.UndoTimeout] per Undo), as do the journal writes, so
// Ctrl-C leaves the old version, not a half state. A second signal is the
// caller's business: if it kills the process, the journal shows an
// unfinished saga and [Runner.Resume] finishes it.
//
// # States
//
//	          Run
//	           │
//	           ▼            every step done
//	        running ─────────────────────────────▶ done
//	           │  ▲
//	           │  └─ Resume(Forward): the process died between steps
//	           │
//	           │ a step failed, the context was cancelled,
//	           │ or Resume(Compensate) after the process died
//	           ▼
//	     compensating ───────────────────────────▶ compensated
//	        │     ▲      every step that began undone
//	        │     │
//	        │     │      (failed instead, if no step that began
//	        │     │       has an Undo: nothing changed)
//	        │     │
//	an Undo │     │ Resume(Compensate), after an
//	 failed ▼     │ operator fixed the cause
//	   needs_attention
//
// done, failed and compensated are final. running and compensating are
// the states of a saga whose process is at work, or died (killed, power
// lost); needs_attention waits for an operator. All three are "unfinished"
// ([Unfinished]): every homelab command should report them, and a new saga
// on the same subject is refused ([ErrUnfinished]) until the old one is
// resumed. A saga may cover subjects besides its own ([Saga.Covers],
// journalled in its params: a lab snapshot restore covers every service);
// while it is unfinished a saga on any of them is refused too, and it is
// refused while one of them has an unfinished saga. The refusal names the
// saga and its --resume (a kind reads as the command that resumes it).
//
// # Resume
//
// [Runner.Resume] finishes an unfinished saga from its journal, with the
// steps rebuilt by the caller from the saga's Params (the same names in
// the same order, else [ErrPlanMismatch]):
//
//   - [Compensate] (the default, what "homelab upgrade --resume" does)
//     undoes, in reverse, every step whose forward row exists (started,
//     done or failed) and whose compensation is not journalled done or
//     skipped. So a compensation interrupted by a crash continues where it
//     stopped, an Undo interrupted midway runs again (hence idempotent),
//     and a second Resume finds a final state and does nothing.
//   - [Forward] runs the remaining steps, only if that is safe: the saga is
//     still running (no compensation began) and every step that began is
//     done, i.e. the process died between two steps, so nothing was left
//     half done; or the one step left started is [Step.Retryable], whose Do
//     may run again after a partial run. Otherwise Resume refuses with
//     [ErrUnsafeResume] and changes nothing. Resuming forward also
//     assumes that what the done steps established still holds (a backup
//     taken an hour ago is still the restore point); a caller for whom
//     elapsed time matters should compensate instead.
//
// # Concurrency
//
// Run and Resume hold an exclusive lock on the saga's subject
// (package lock, "saga-<subject>" under [Runner.StateDir]) for their whole
// run, so two homelab processes never run sagas on the same subject at
// once, and Resume never touches a saga that a live process is running.
// The kernel drops the lock when its holder dies. A running or
// compensating record seen without the lock (by [Unfinished], say) may
// therefore belong to a live process; only Resume, under the lock, can
// tell. Locks of other things a step touches (backup targets) are the
// steps' business; the saga's lock name does not collide with them.
//
// [History] lists past sagas with their journals, newest first, for
// "homelab upgrade history".
package saga
