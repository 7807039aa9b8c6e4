// Package cli holds homelab's cobra commands, one file per verb
// (<noun>_<verb>.go). A command is an Options struct, a constructor
// NewCmdX(f, runF) and a run function runX(ctx, opts); the commands only
// parse flags, get the lab's working parts from internal/app, call them
// and render text or --json. Exit codes are decided in one place:
// ExitCode; with --json a failure ends with an exit_error line on stderr.
package cli
