package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"homelab/internal/app"
	"homelab/internal/lab"
)

// LabValidateOptions are the options of homelab lab validate.
type LabValidateOptions struct {
	IO   *IOStreams
	Lab  func() (*lab.Lab, error)
	App  func() (*app.App, error)
	JSON bool
	// Online also connects to each postgres target's source, as its role,
	// and warns of the privileges its drills and restores lack.
	Online bool
}

// NewCmdLabValidate returns `homelab lab validate`.
func NewCmdLabValidate(f *Factory, runF func(*LabValidateOptions) error) *cobra.Command {
	opts := &LabValidateOptions{IO: f.IO, Lab: f.Lab, App: f.App}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the lab file and print every problem with file, line and field",
		Long: `Check the lab file and print every problem with file, line and field.

With --online, also connect to the source of every postgres target, as
the role the lab file gives, and warn (exit 3) of the privileges that
role lacks for a restore drill (backup verify) and an in-place restore
(backup restore --in-place, an upgrade's rollback): CREATEDB, the
privileges of the database's owner, membership in the roles owning the
dump's objects. Nothing is changed. A source that cannot be reached is a
warning too.

` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runLabValidate(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Online, "online", false, "also check, connected to each postgres source, the privileges its drills and restores need")
	return cmd
}

func runLabValidate(ctx context.Context, opts *LabValidateOptions) error {
	l, err := opts.Lab()
	var le *lab.Errors
	if errors.As(err, &le) {
		if opts.JSON {
			for _, e := range le.List {
				writeJSON(opts.IO.Out, "lab_error", map[string]any{"file": e.File, "line": e.Line, "column": e.Column, "field": e.Field, "message": e.Msg})
			}
		} else {
			fmt.Fprintln(opts.IO.Out, le.Error())
		}
		return &silentError{err: err, code: ExitUsage}
	}
	if err != nil {
		return err
	}
	if opts.JSON {
		if err := writeJSON(opts.IO.Out, "lab_valid", map[string]any{"file": l.Path, "name": l.Name, "repositories": len(l.Repositories), "backups": l.BackupNames(), "services": len(l.Services)}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(opts.IO.Out, "%s: ok (lab %s: %d repositories, %d backup targets, %d services)\n", l.Path, l.Name, len(l.Repositories), len(l.Backups), len(l.Services))
	}
	if !opts.Online {
		return nil
	}
	a, err := opts.App()
	if err != nil {
		return err
	}
	var warnings []string
	for _, tp := range a.Preflight(ctx) {
		if tp.Err != nil {
			warnings = append(warnings, tp.Err.Error())
			continue
		}
		for _, f := range tp.Findings {
			warnings = append(warnings, f.String())
		}
		if len(tp.Findings) == 0 && !opts.JSON {
			fmt.Fprintf(opts.IO.Out, "target %s: the source role may drill and restore in place\n", tp.Target)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, w := range warnings {
		if opts.JSON {
			writeJSON(opts.IO.Out, "lab_warning", map[string]any{"message": w})
		} else {
			fmt.Fprintf(opts.IO.Out, "warning: %s\n", w)
		}
	}
	if len(warnings) > 0 {
		return &silentError{err: fmt.Errorf("%d warnings", len(warnings)), code: ExitWarnings}
	}
	return nil
}
