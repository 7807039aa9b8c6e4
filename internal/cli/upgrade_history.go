package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"homelab/internal/catalog"
	"homelab/internal/saga"
	"homelab/internal/status"
	"homelab/internal/upgrade"
)

// UpgradeHistoryOptions are the options of homelab upgrade history.
type UpgradeHistoryOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
	// Service limits the list to one service's upgrades (empty: all).
	Service string
	// Limit is the most upgrades listed, newest first (0: all).
	Limit int
}

// NewCmdUpgradeHistory returns `homelab upgrade history`.
func NewCmdUpgradeHistory(f *Factory, runF func(*UpgradeHistoryOptions) error) *cobra.Command {
	opts := &UpgradeHistoryOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "history [SERVICE]",
		Short: "List past upgrades with their steps and outcomes, from the journal",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if len(args) == 1 {
				opts.Service = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runUpgradeHistory(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "show at most this many upgrades (0: all)")
	return cmd
}

func runUpgradeHistory(ctx context.Context, opts *UpgradeHistoryOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	store, err := a.OpenCatalog(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	recs, err := saga.History(ctx, store, upgrade.Kind, opts.Service, opts.Limit)
	if err != nil {
		return err
	}
	if opts.JSON {
		for _, r := range recs {
			if err := writeJSON(opts.IO.Out, "upgrade", r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(recs) == 0 {
		fmt.Fprintln(opts.IO.Out, "no upgrades yet")
	}
	for i, r := range recs {
		if i > 0 {
			fmt.Fprintln(opts.IO.Out)
		}
		renderHistory(opts.IO.Out, r)
	}
	return nil
}

func renderHistory(w io.Writer, r saga.Record) {
	p, _ := upgrade.PlanOf(r)
	fmt.Fprintf(w, "%s  %s  %s → %s  %s\n", r.Start.Local().Format("2006-01-02 15:04"), r.Subject, p.From, p.To, strings.ToUpper(string(r.State)))
	fmt.Fprintf(w, "  saga %s", r.ID)
	if !r.End.IsZero() {
		fmt.Fprintf(w, ", took %s", status.Seconds(r.End.Sub(r.Start)))
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "  reason: %s\n", r.Error)
	}
	for _, st := range r.Steps {
		name := st.Name
		if st.Phase == catalog.PhaseCompensate {
			name = "undo " + name
		}
		line := fmt.Sprintf("  %-8s %s", st.State, name)
		if !st.End.IsZero() {
			line += " (" + status.Seconds(st.End.Sub(st.Start)) + ")"
		}
		for _, k := range slices.Sorted(maps.Keys(st.Data)) {
			line += fmt.Sprintf(" %s=%s", k, st.Data[k])
		}
		if st.Error != "" {
			line += ": " + st.Error
		}
		fmt.Fprintln(w, line)
	}
}
