package cli

import (
	"errors"
	"fmt"
	"homelab/internal/lab"

	"github.com/spf13/cobra"
)

// LabValidateOptions are the options of homelab lab validate.
type LabValidateOptions struct {
	IO   *IOStreams
	Lab  func() (*lab.Lab, error)
	JSON bool
}

// NewCmdLabValidate returns `homelab lab validate`.
func NewCmdLabValidate(f *Factory, runF func(*LabValidateOptions) error) *cobra.Command {
	opts := &LabValidateOptions{IO: f.IO, Lab: f.Lab}
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the lab file and print every problem with file, line and field",
		Long:  "Check the lab file and print every problem with file, line and field.\n\n" + exitCodesHelp,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runLabValidate(opts)
		},
	}
}

func runLabValidate(opts *LabValidateOptions) error {
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
		return writeJSON(opts.IO.Out, "lab_valid", map[string]any{"file": l.Path, "name": l.Name, "repositories": len(l.Repositories), "backups": l.BackupNames(), "services": len(l.Services)})
	}
	fmt.Fprintf(opts.IO.Out, "%s: ok (lab %s: %d repositories, %d backup targets, %d services)\n", l.Path, l.Name, len(l.Repositories), len(l.Backups), len(l.Services))
	return nil
}
