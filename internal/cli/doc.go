// Package cli holds homelab's cobra commands. A command is an Options
// struct, a constructor NewCmdX(f, runF) and a run function; the commands
// only parse flags, call the domain packages and render text or --json.
// Exit codes are decided in one place: ExitCode.
package cli
