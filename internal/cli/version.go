package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"homelab/internal/restic"
)

// VersionOptions are the options of homelab version.
type VersionOptions struct {
	IO   *IOStreams
	JSON bool
}

// NewCmdVersion returns `homelab version`.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IO}
	return &cobra.Command{
		Use:   "version",
		Short: "Print homelab's version and the restic it finds",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runVersion(cmd.Context(), opts)
		},
	}
}

func runVersion(ctx context.Context, opts *VersionOptions) error {
	v, err := restic.Probe(ctx, restic.DefaultBinary(""))
	rv := v.String()
	if err != nil {
		rv = "not usable: " + err.Error()
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, "version", map[string]string{"version": Version, "go": runtime.Version(), "restic": rv})
	}
	fmt.Fprintf(opts.IO.Out, "homelab %s (%s)\nrestic %s\n", Version, runtime.Version(), rv)
	return nil
}
