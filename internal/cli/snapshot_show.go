package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/labsnapshot"
)

// SnapshotShowOptions are the options of homelab snapshot show.
type SnapshotShowOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
	Name string
	// LabFile prints the lab file as it was instead.
	LabFile bool
}

// NewCmdSnapshotShow returns `homelab snapshot show`.
func NewCmdSnapshotShow(f *Factory, runF func(*SnapshotShowOptions) error) *cobra.Command {
	opts := &SnapshotShowOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "One lab snapshot: members (checked against their repositories), versions, certificates",
		Long: `Show the lab snapshot NAME: its state, time and note; every member (the
target's restic snapshot ID, its size and files) with whether its
repository still has it (listed, not assumed: a member forgotten by hand is
MISSING) and whether it passed a restore drill; every service's version;
the certificates' fingerprints. --lab-file prints the lab file as it was.
With --json: one "snapshot" line.

Exits 0 when every member is present, 1 when one is missing or could not be
checked, 2 for an unknown NAME.

` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON, opts.Name = f.JSON, args[0]
			if runF != nil {
				return runF(opts)
			}
			return runSnapshotShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.LabFile, "lab-file", false, "print the copy of the lab file instead")
	return cmd
}

func runSnapshotShow(ctx context.Context, opts *SnapshotShowOptions) error {
	m, _, closeFn, err := labSnapshots(ctx, opts.F, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	c, err := m.Show(ctx, opts.Name)
	if err != nil {
		return noLabSnapshot(opts.Name, err)
	}
	var missing error
	if !c.Intact {
		missing = &silentError{err: fmt.Errorf("lab snapshot %s: %d members missing", c.Name, len(c.Missing())), code: ExitFailed}
	}
	if opts.LabFile {
		fmt.Fprint(opts.IO.Out, c.LabFile)
		return nil
	}
	if opts.JSON {
		if err := writeJSON(opts.IO.Out, "snapshot", c); err != nil {
			return err
		}
		return missing
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "lab snapshot %s: %s, created %s", c.Name, c.State, c.Created.Local().Format(time.DateTime))
	if !c.Finished.IsZero() {
		fmt.Fprintf(w, ", finished %s", c.Finished.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, " (saga %s)\n", c.SagaID)
	if c.Note != "" {
		fmt.Fprintf(w, "note: %s\n", c.Note)
	}
	if c.Error != "" {
		fmt.Fprintf(w, "error: %s\n", c.Error)
	}
	fmt.Fprintf(w, "members (%d):\n", len(c.Members))
	renderMembers(w, opts.IO.StdoutTTY, c)
	if len(c.Versions) > 0 {
		fmt.Fprintln(w, "versions:")
		for _, s := range slices.Sorted(maps.Keys(c.Versions)) {
			fmt.Fprintf(w, "  %-16s %s\n", s, c.Versions[s])
		}
	}
	if len(c.Certs) > 0 {
		fmt.Fprintln(w, "certificates (SHA-256):")
		for _, n := range slices.Sorted(maps.Keys(c.Certs)) {
			fmt.Fprintf(w, "  %-16s %s\n", n, c.Certs[n])
		}
	}
	if len(c.Colors) > 0 {
		fmt.Fprintln(w, "blue/green colors (serving):")
		for _, s := range slices.Sorted(maps.Keys(c.Colors)) {
			fmt.Fprintf(w, "  %-16s %s (%s)\n", s, c.Colors[s].Color, c.Colors[s].Version)
		}
	} else if bg := labsnapshot.BlueGreen(m.Lab); len(bg) > 0 {
		fmt.Fprintf(w, "blue/green colors: none recorded (%s: taken before colors were recorded, or nothing served; a restore leaves the serving color as it is)\n", strings.Join(bg, ", "))
	} else {
		fmt.Fprintln(w, "blue/green colors: none (the lab has no blue/green service)")
	}
	return missing
}
