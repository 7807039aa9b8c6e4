package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"homelab/internal/app"
	"homelab/internal/deploy"
	"homelab/internal/saga"
)

// DeployOptions are the options of homelab deploy.
type DeployOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
	// Service and To: deploy Service at version To.
	Service, To       string
	Yes, DryRun, Wait bool
	// AllowContract lets contract migrations through, with Reason.
	AllowContract bool
	Reason        string
	// Cleanup stops Service's idle color instead.
	Cleanup bool
	// Resume finishes the unfinished deploy ResumeID (empty: the only
	// one), rolling it back, or finishing it with Forward.
	Resume   bool
	ResumeID string
	Forward  bool
}

// NewCmdDeploy returns `homelab deploy`.
func NewCmdDeploy(f *Factory, runF func(*DeployOptions) error) *cobra.Command {
	opts := &DeployOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "deploy SERVICE --to VERSION | deploy --cleanup SERVICE | deploy --resume [SAGA]",
		Short: "Deploy a blue/green service: start the idle color on a version, gate it, flip HAProxy to it",
		Long: `Deploy a blue/green service (a service with a deploy section) as a
journalled saga: start the idle color on VERSION, wait until its own health
probe passes, render HAProxy's backend with the new color's server line,
check it with haproxy -c, swap it in atomically and reload HAProxy
gracefully (master-worker: no connection is dropped), wait until the public
URL answers from VERSION, and record the deploy (who, from where). The
color that served before keeps running, for a fast rollback (homelab
rollback), until the next deploy or --cleanup.

A failure before the flip stops the new color and leaves traffic where it
was; after the flip (the public URL never answers from VERSION), traffic
flips back. Both exit 1 with the reason.

Before anything changes: the active color in the catalog must be the one
HAProxy's configuration serves, the idle color must be stopped (or kept by
the last deploy), and the release's migrations (deploy.migrations, one
directory per version) since the serving version must not contract the
schema the serving version uses (homelab migrations check), unless
--allow-contract --reason "..." is given, recorded with the deploy.

The plan is shown first; it asks on a terminal, needs --yes otherwise;
--dry-run stops after the plan. With --json: a "deploy_plan" line, then a
"deploy_result" line.

A deploy that did not finish (homelab was killed) is reported by every
command; --resume rolls it back (traffic on the color that served before,
the new color stopped), or finishes it with --forward where the journal
shows that is safe.

Exits 0 when deployed (or already serving VERSION), 1 when the deploy
failed or was refused, 2 for bad usage.

` + exitCodesHelp,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if err := opts.parse(args); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runDeploy(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.To, "to", "", "the version to deploy, as the color's runtime takes it")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and change nothing")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for another deploy, rollback or upgrade of the service to end instead of failing (refused then if it changed what serves: plan again)")
	cmd.Flags().BoolVar(&opts.AllowContract, "allow-contract", false, "deploy although the release's migrations contract the schema (needs --reason)")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why, recorded with the deploy (required with --allow-contract)")
	cmd.Flags().BoolVar(&opts.Cleanup, "cleanup", false, "stop the idle color (no fast rollback is left)")
	cmd.Flags().BoolVar(&opts.Resume, "resume", false, "finish an unfinished deploy (default: roll it back)")
	cmd.Flags().BoolVar(&opts.Forward, "forward", false, "with --resume: finish the deploy instead of rolling it back, if the journal shows that is safe")
	return cmd
}

// parse checks the flags and arguments together.
func (o *DeployOptions) parse(args []string) error {
	o.Reason = oneReason(o.Reason)
	switch {
	case o.Resume:
		if o.To != "" || o.DryRun || o.Cleanup || o.AllowContract {
			return usageErr("--resume takes no --to, --dry-run, --cleanup or --allow-contract")
		}
		if len(args) == 1 {
			o.ResumeID = args[0]
		}
		return nil
	case o.Forward:
		return usageErr("--forward goes with --resume")
	case o.Cleanup:
		if len(args) != 1 || o.To != "" || o.AllowContract {
			return usageErr("usage: homelab deploy --cleanup SERVICE")
		}
	case len(args) != 1 || o.To == "":
		return usageErr("usage: homelab deploy SERVICE --to VERSION")
	case o.AllowContract && o.Reason == "":
		return usageErr(`--allow-contract needs --reason "...": the line of why is recorded with the deploy`)
	}
	o.Service = args[0]
	return nil
}

// runDeploy deploys, cleans up (--cleanup) or resumes (--resume).
func runDeploy(ctx context.Context, opts *DeployOptions) error {
	a, d, closeFn, err := openDeployer(ctx, opts.F, opts.Wait || opts.Resume)
	if err != nil {
		return err
	}
	defer closeFn()
	switch {
	case opts.Resume:
		return deployResume(ctx, opts, a, d)
	case opts.Cleanup:
		return deployCleanup(ctx, opts, d)
	}
	p, err := d.PlanDeploy(ctx, opts.Service, opts.To, deploy.Options{AllowContract: opts.AllowContract, Reason: opts.Reason})
	if alreadyAt(opts.IO.Out, err) {
		return nil
	}
	if p.Service != "" { // a refused plan is shown too
		if opts.JSON {
			if jerr := writeJSON(opts.IO.Out, "deploy_plan", p); jerr != nil {
				return jerr
			}
		} else {
			renderDeployPlan(opts.IO.Out, p, d)
		}
	}
	if err != nil || opts.DryRun {
		return deployErr(err)
	}
	return deployRun(ctx, opts.IO, opts.JSON, opts.Yes, d, p, fmt.Sprintf("Deploy %s %s?", p.Service, p.To.Version))
}

// deployCleanup stops the idle color of opts.Service.
func deployCleanup(ctx context.Context, opts *DeployOptions, d *deploy.Deployer) error {
	st, err := d.State(ctx, opts.Service)
	if err != nil {
		return deployErr(err)
	}
	if opts.DryRun {
		fmt.Fprintf(opts.IO.Out, "Stop %s's idle color %s; %s keeps serving; no fast rollback is left\n", opts.Service, deploy.Other(st.Active.Color), st.Active)
		return nil
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("Stop %s's idle color %s (no fast rollback is left)?", opts.Service, deploy.Other(st.Active.Color))); err != nil {
		return err
	}
	idle, err := d.Cleanup(ctx, opts.Service)
	if err != nil {
		return deployErr(err)
	}
	fmt.Fprintf(opts.IO.Out, "%s: %s stopped; %s serves\n", opts.Service, idle.Color, st.Active)
	return nil
}

// deployResume rolls back (or, with --forward, finishes) the unfinished
// deploy opts.ResumeID, or the only one no process works on.
func deployResume(ctx context.Context, opts *DeployOptions, a *app.App, d *deploy.Deployer) error {
	id := opts.ResumeID
	if id == "" {
		var err error
		if id, err = resumable(ctx, opts.IO, a, d.Catalog, deploy.Kind); id == "" {
			return err
		}
	}
	rec, err := d.Catalog.Saga(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.ErrOut, saga.Describe(rec))
	mode, what := saga.Compensate, "Roll back"
	if opts.Forward {
		mode, what = saga.Forward, "Finish"
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("%s the deploy of %s?", what, rec.Subject)); err != nil {
		return err
	}
	keepGoingOnHangup()
	d.Progress = newUpgradeProgress(opts.IO).step
	rec, err = d.Resume(ctx, id, mode)
	return deployEnded(opts.IO, opts.JSON, rec, err)
}
