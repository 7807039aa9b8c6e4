package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"homelab/internal/saga"
)

// Version is set at build time with -ldflags "-X homelab/internal/cli.Version=...".
var Version = "dev"

// Main runs homelab with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, SystemIO(), os.Args[1:])
}

// Run runs homelab with args and returns its exit code.
func Run(ctx context.Context, io *IOStreams, args []string) int {
	f := &Factory{IO: io}
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	// cobra's own "unknown command" error is bad usage (exit 2), like its
	// flag errors (SetFlagErrorFunc).
	if strings.HasPrefix(err.Error(), "unknown command ") {
		err = usageErr(err.Error())
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = &interruptedError{err}
	}
	var se *silentError
	if errors.As(err, &se) {
		return se.code
	}
	code := ExitCode(err)
	if f.JSON || jsonArg(args) {
		writeExitError(io.ErrOut, code, err)
	} else {
		fmt.Fprintln(io.ErrOut, "homelab: "+err.Error())
	}
	return code
}

// jsonArg reports whether args ask for --json: a command line that fails
// to parse (a usage error) may not have set Factory.JSON.
func jsonArg(args []string) bool {
	on := false
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" {
			on = true
		} else if v, ok := strings.CutPrefix(a, "--json="); ok {
			on, _ = strconv.ParseBool(v)
		}
	}
	return on
}

// interruptedError is a command's error after a signal: exit 130, and its
// text says so once, on the same line.
type interruptedError struct{ err error }

func (e *interruptedError) Error() string   { return e.err.Error() + " (interrupted)" }
func (e *interruptedError) Unwrap() []error { return []error{e.err, context.Canceled} }

// NewCmdRoot returns the homelab command tree.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "homelab",
		Short: "Day-2 operations of a self-hosted stack, driven by lab.yaml",
		Long: "homelab runs the day-2 operations of a lab described in one file, lab.yaml: it backs up, restores and proves (restore drills) its data,\n" +
			"shows its state (status, logs), issues and rotates its TLS certificates, upgrades its services safely, and runs all of it on schedules (serve).\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr(err.Error()) })
	root.PersistentFlags().StringVar(&f.LabFlag, "lab", "", "lab file (default ./lab.yaml, then $HOMELAB_LAB)")
	root.PersistentFlags().BoolVar(&f.JSON, "json", false, "print results as JSON lines (a failure ends with an exit_error line on stderr)")
	root.PersistentFlags().BoolVarP(&f.Verbose, "verbose", "v", false, "log what homelab runs")
	root.AddCommand(NewCmdVersion(f, nil), NewCmdLab(f), NewCmdRepo(f), NewCmdBackup(f), NewCmdStatus(f, nil), NewCmdServe(f, nil), NewCmdCert(f))
	root.AddCommand(NewCmdDeploy(f, nil), NewCmdRollback(f, nil), NewCmdMigrations(f))
	root.AddCommand(NewCmdLogs(f, nil), NewCmdUpgrade(f, nil), NewCmdSnapshot(f), NewCmdDoctor(f, nil))
	// An unfinished upgrade (a killed process, a power loss) is reported by
	// every command that reads the lab, until it is resumed (status shows
	// it on its page).
	// Runs left running in the catalog by a killed homelab are recorded
	// as interrupted first, so status, the API and the metrics agree.
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) {
		name := cmd.Name()
		switch name {
		case "version", "help", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return // these read no runs (and completion runs on every Tab)
		}
		// validate reads no runs; status and doctor show unfinished sagas
		// themselves.
		f.atStart(cmd.Context(), name != "validate", name != "status" && name != "doctor")
	}
	return root
}

// group makes cmd a command that only groups subcommands: without one it
// shows its help (exit 0); with an unknown one it is bad usage (exit 2),
// where cobra would show the help and exit 0.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErr(fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath()))
		}
		return c.Help()
	}
	return cmd
}

// exactTargets is a cobra Args check that turns argument errors into
// usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageErr(err.Error())
		}
		return nil
	}
}

// atStart opens the catalog once, if it exists: with reconcile, runs a
// killed homelab left running are recorded as interrupted (an error is
// logged: the command itself meets it); with warn, every unfinished saga
// is reported on stderr. Other errors are ignored: the command reports a
// bad lab file or catalog.
func (f *Factory) atStart(ctx context.Context, reconcile, warn bool) {
	a, err := f.App()
	if err != nil {
		return
	}
	open, rerr, err := a.AtStart(ctx, reconcile, warn)
	if rerr != nil {
		f.Logger().Warn("reconcile the catalog's runs", "err", rerr)
	}
	if err != nil {
		return
	}
	for _, r := range open {
		if r.InProgress {
			fmt.Fprintf(f.IO.ErrOut, "homelab: note: %s; in progress: %s\n", saga.Describe(r.Record), r.Holder)
			continue
		}
		fmt.Fprintf(f.IO.ErrOut, "homelab: warning: unfinished %s; finish it with: homelab %s --resume %s\n", saga.Describe(r.Record), r.Kind, r.ID)
	}
}
