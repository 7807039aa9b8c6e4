package cli

import (
	"bufio"
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/catalog"
	"homelab/internal/deploy"
)

// RollbackOptions are the options of homelab rollback.
type RollbackOptions struct {
	IO      *IOStreams
	F       *Factory
	JSON    bool
	Service string
	// Reason is the incident note (asked for on a terminal when empty).
	Reason string
	// Redeploy starts Version (empty: the previous one in the history) on
	// the idle color instead of the fast flip.
	Redeploy          bool
	Version           string
	History           bool
	Limit             int
	Yes, DryRun, Wait bool
}

// NewCmdRollback returns `homelab rollback`.
func NewCmdRollback(f *Factory, runF func(*RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "rollback SERVICE [--reason TEXT] [--redeploy[=VERSION]] | rollback SERVICE --history",
		Short: "Roll a blue/green service back: flip HAProxy to the previous color, or redeploy the previous version",
		Long: `Roll a blue/green service back, fastest path first:

  - the fast flip (the default): HAProxy goes back to the previous color,
    kept running by the last deploy, after checking that it still runs and
    passes its health probe (refused with the reason otherwise). It takes
    seconds and drops no connection.
  - --redeploy[=VERSION]: when the previous color is gone, start VERSION
    (default: the previous version in the history) on the idle color and
    flip to it, through the same saga as deploy. It warns when migrations
    newer than VERSION contracted the schema (homelab migrations check).
  - --history lists past deploys, rollbacks and cleanups with their
    reasons.

Every rollback is an incident record: a line of why (--reason, asked for on
a terminal) is stored with the history and shown on status. The plan is
shown first; it asks on a terminal, needs --yes otherwise; --dry-run stops
after the plan. With --json: "deploy_plan" then "deploy_result" lines, or
one "deploy_history" line per record.

Exits 0 when rolled back, 1 when refused or failed (traffic then stays
where it was), 2 for bad usage.

` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			opts.Service = args[0]
			opts.Reason = oneReason(opts.Reason)
			if opts.History && (opts.Redeploy || opts.Reason != "" || opts.DryRun) {
				return usageErr("--history takes no --redeploy, --reason or --dry-run")
			}
			if opts.Redeploy && opts.Version == "previous" {
				opts.Version = ""
			}
			if runF != nil {
				return runF(opts)
			}
			return runRollback(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why (the incident record, stored with the history)")
	cmd.Flags().StringVar(&opts.Version, "redeploy", "", "start VERSION on the idle color and flip to it (default: the previous version)")
	cmd.Flags().Lookup("redeploy").NoOptDefVal = "previous"
	cmd.Flags().BoolVar(&opts.History, "history", false, "list past deploys, rollbacks and cleanups")
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "with --history: at most this many records (0: all)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and change nothing")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for another deploy, rollback or upgrade of the service to end instead of failing (refused then if it changed what serves: plan again)")
	cmd.PreRun = func(cmd *cobra.Command, _ []string) { opts.Redeploy = cmd.Flags().Changed("redeploy") }
	return cmd
}

// runRollback rolls back, or lists the history.
func runRollback(ctx context.Context, opts *RollbackOptions) error {
	_, d, closeFn, err := openDeployer(ctx, opts.F, opts.Wait)
	if err != nil {
		return err
	}
	defer closeFn()
	if opts.History {
		return rollbackHistory(ctx, opts, d)
	}
	if opts.Reason == "" {
		if !opts.IO.StdinTTY {
			return usageErr(`a rollback needs a reason: pass --reason "..." (the incident record)`)
		}
		fmt.Fprint(opts.IO.ErrOut, "Why roll back? (one line, the incident record): ")
		line, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if opts.Reason = oneReason(line); opts.Reason == "" {
			return usageErr("a rollback needs a reason")
		}
	}
	p, err := d.PlanRollback(ctx, opts.Service, deploy.RollbackOptions{Redeploy: opts.Redeploy, Version: opts.Version, Reason: opts.Reason})
	if alreadyAt(opts.IO.Out, err) {
		return nil
	}
	if err != nil {
		return deployErr(err)
	}
	if opts.JSON {
		if err := writeJSON(opts.IO.Out, "deploy_plan", p); err != nil {
			return err
		}
	} else {
		renderDeployPlan(opts.IO.Out, p, d)
	}
	if opts.DryRun {
		return nil
	}
	return deployRun(ctx, opts.IO, opts.JSON, opts.Yes, d, p, fmt.Sprintf("Roll %s back to %s?", p.Service, p.To))
}

// rollbackHistory lists opts.Service's deploy records, newest first.
func rollbackHistory(ctx context.Context, opts *RollbackOptions, d *deploy.Deployer) error {
	hist, err := d.History(ctx, opts.Service, opts.Limit)
	if err != nil {
		return deployErr(err)
	}
	if opts.JSON {
		for _, h := range hist {
			if err := writeJSON(opts.IO.Out, "deploy_history", h); err != nil {
				return err
			}
		}
		return nil
	}
	if len(hist) == 0 {
		fmt.Fprintf(opts.IO.Out, "%s: no deploys recorded\n", opts.Service)
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tSERVING\tKEPT\tWHO\tREASON")
	for _, h := range hist {
		kept := "-"
		if h.FromColor != "" && h.Kind != catalog.DeployCleanup {
			kept = h.FromColor + " " + h.FromVersion
		}
		reason := h.Reason
		if h.AllowContract {
			reason = "contract allowed: " + reason
		}
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s@%s\t%s\n", h.Time.Format(time.RFC3339), h.Kind, h.ToColor, h.ToVersion, kept, h.Who, h.Host, reason)
	}
	return tw.Flush()
}
