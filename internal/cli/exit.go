package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"homelab/internal/backup"
	"homelab/internal/lab"
)

// Exit codes (DESIGN.md, "The verbs"): one table for every command.
const (
	ExitOK          = 0   // success
	ExitFailed      = 1   // the job failed
	ExitUsage       = 2   // bad usage or bad lab file
	ExitWarnings    = 3   // done with warnings (e.g. restic exit 3: some files unreadable)
	ExitInterrupted = 130 // interrupted by SIGINT/SIGTERM
)

const exitCodesHelp = `Exit codes:
  0    ok
  1    failed
  2    bad usage or bad lab file
  3    done with warnings (e.g. some source files could not be read)
  130  interrupted`

// UsageError is a mistake on the command line.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErr(msg string) error { return &UsageError{Msg: msg} }

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	var ue *UsageError
	var le *lab.Errors
	var we *backup.WarningError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ue), errors.As(err, &le):
		return ExitUsage
	case errors.As(err, &we):
		return ExitWarnings
	}
	return ExitFailed
}

// silentError carries an exit code for a failure that was already shown
// (e.g. per-target results printed as they happened).
type silentError struct {
	err  error
	code int
}

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// exitError is the last line of a command that failed with --json, on
// stderr, as restic writes it: {"message_type":"exit_error","code":2,
// "message":"..."}. A failure already shown (a silentError) has none.
type exitError struct {
	MessageType string `json:"message_type"`
	Code        int    `json:"code"`
	Message     string `json:"message"`
}

// writeExitError writes err's exit_error line with its exit code.
func writeExitError(w io.Writer, code int, err error) {
	b, _ := json.Marshal(exitError{MessageType: "exit_error", Code: code, Message: err.Error()}) // strings and an int: cannot fail
	fmt.Fprintf(w, "%s\n", b)
}
