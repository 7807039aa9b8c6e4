package restic

import (
	"errors"
	"fmt"
	"strings"

	"homelab/internal/execx"
)

// Sentinel errors for restic's documented exit codes; test with errors.Is.
var (
	ErrFatal         = errors.New("restic failed")
	ErrPartial       = errors.New("snapshot is partial: some source files could not be read")
	ErrNoRepository  = errors.New("repository does not exist (run: homelab repo init)")
	ErrLocked        = errors.New("repository is locked by another process")
	ErrWrongPassword = errors.New("wrong repository password or no key found")
	ErrInterrupted   = errors.New("restic was interrupted")
	ErrTooOld        = errors.New("restic is too old")
	// ErrSnapshotNotFound matches a failed command whose snapshot is not in
	// the repository (restic's "failed to find snapshot", exit code 1: no
	// matching ID for a prefix, or no such file for a full ID).
	ErrSnapshotNotFound = errors.New("snapshot not found in the repository")
)

// Error is a failed restic command.
type Error struct {
	Op       string // backup, restore, forget, ...
	ExitCode int
	// Message is restic's own final message (from its exit_error JSON line
	// or the tail of stderr), secrets redacted.
	Message string
	Err     error // the *execx.CmdError
	// Backend, when set, is the cause in the repository's storage that
	// restic's stderr named (see BackendError): the error's text is its
	// one line, and the command may have been stopped before restic gave
	// up by itself (its exit code is then not the cause).
	Backend *BackendError
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("restic %s", e.Op)
	if e.Backend != nil {
		return msg + ": " + e.Backend.Error()
	}
	if s := e.sentinel(); s != nil {
		msg += ": " + s.Error()
	} else if e.ExitCode >= 0 {
		msg += fmt.Sprintf(": exit status %d", e.ExitCode)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	} else if e.Err != nil && e.sentinel() == nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) sentinel() error {
	switch e.ExitCode {
	case 3:
		return ErrPartial
	case 10:
		return ErrNoRepository
	case 11:
		return ErrLocked
	case 12:
		return ErrWrongPassword
	case 130:
		return ErrInterrupted
	}
	return nil
}

// Is makes errors.Is(err, ErrLocked) and friends work.
func (e *Error) Is(target error) bool {
	if e.Backend != nil {
		return target == ErrFatal || errors.Is(e.Backend, target)
	}
	if target == ErrSnapshotNotFound {
		return e.ExitCode == 1 && strings.Contains(e.Message, "failed to find snapshot")
	}
	if s := e.sentinel(); s != nil {
		return s == target
	}
	return target == ErrFatal && e.ExitCode > 0
}

// Unwrap returns the *execx.CmdError, or the *BackendError when restic's
// stderr named one (a command stopped for it may carry context.Canceled
// in its CmdError, which is not what happened to the caller).
func (e *Error) Unwrap() error {
	if e.Backend != nil {
		return e.Backend
	}
	return e.Err
}

func asCmdError(err error) (*execx.CmdError, bool) {
	var ce *execx.CmdError
	ok := errors.As(err, &ce)
	return ce, ok
}
