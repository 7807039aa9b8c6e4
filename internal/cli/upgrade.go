package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/app"
	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/saga"
	"homelab/internal/status"
	"homelab/internal/upgrade"
	"homelab/internal/version"
)

// UpgradeOptions are the options of homelab upgrade.
type UpgradeOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
	// Service and To: upgrade Service to version To.
	Service, To                       string
	Yes, DryRun, AllowDowngrade, Wait bool
	// Resume finishes the unfinished upgrade ResumeID (empty: the only
	// one), rolling it back, or finishing it with Forward.
	Resume   bool
	ResumeID string
	Forward  bool
	// Resolved closes the unfinished upgrade ResumeID as put right by
	// hand, running nothing.
	Resolved bool
	// Finalize removes the clusters a PostgreSQL major upgrade of
	// Service kept.
	Finalize bool
}

// NewCmdUpgrade returns `homelab upgrade`.
func NewCmdUpgrade(f *Factory, runF func(*UpgradeOptions) error) *cobra.Command {
	opts := &UpgradeOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "upgrade SERVICE --to VERSION | upgrade --resume [SAGA]",
		Short: "Upgrade a service through its required stops, with a restore point and a health gate at each",
		Long: `Upgrade a service to a version as a journalled saga: for every required
stop on the way and then the target, take a restore point (the service's
backup_before targets), set the version through its runtime, wait until it
is healthy (healthy_within) and run the post-step. If anything fails, or
the upgrade is interrupted, every stop that began is rolled back: the
service is stopped, its data restored from that stop's restore point, the
previous version set and started again, healthy (or left stopped, with
after_rollback: stopped). If the rollback itself fails, the service is
left stopped and the commands to restore by hand are printed.

The plan (path, restore points, estimate) is shown first; it asks on a
terminal, needs --yes otherwise; --dry-run stops after the plan. With
--json: one "upgrade_plan" line, then one "upgrade_result" line.

An upgrade that did not finish (the process was killed, the machine lost
power) is reported by every homelab command; --resume rolls it back to
the version it started from (--forward instead finishes it, where the
journal shows that is safe). When the operator has recovered by hand
instead (restored the data and set the version, say after a failed
rollback), --resume SAGA --resolved closes it without running anything.

Before anything changes, the plan checks that a rollback could restore
every restore point in place (postgres: the source role's CREATEDB, the
database owner's privileges, the dump's object owners); if not, it says
so under "On failure" and the upgrade is refused, --dry-run included.

A service with a postgres section (a PostgreSQL server: data_dir per
major, bin_dirs) whose --to is another major is upgraded with pg_upgrade:
preflight (initdb of the new cluster with the old one's encoding, locale
and checksums, its extensions available in the new major, pg_upgrade
--check, the free space the mode needs), restore point, stop the
dependents, stop PostgreSQL, pg_upgrade (--clone where the file system
can, else --copy; --link when the lab says, and then a rollback after
the new major started rebuilds the old cluster from the restore point), carry postgresql.conf and
pg_hba.conf over, start the new major, start the dependents, each
health-gated, then vacuumdb --analyze-in-stages and update_extensions.sql. A
failure starts the old cluster again, untouched (link mode, after the new
major started: rebuilt from the restore point). The old cluster is kept
until --finalize deletes it, which it does only while the service serves,
healthy, from the new major's cluster.

Exits 0 when upgraded (or nothing to resume), 1 when the upgrade failed
(rolled back, or its rollback failed) or was refused because its restore
points could not be restored, 2 for bad usage or a plan that cannot be
made, 130 when interrupted (after the rollback).

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
			return runUpgrade(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.To, "to", "", "the version to upgrade to, as the runtime writes it (an image tag: 17.0.0-ce.0)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and change nothing")
	cmd.Flags().BoolVar(&opts.AllowDowngrade, "allow-downgrade", false, "allow a target older than the running version")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for another upgrade of the service to end instead of failing (busy backup targets and repository locks are always waited for)")
	cmd.Flags().BoolVar(&opts.Resume, "resume", false, "finish an unfinished upgrade (default: roll it back)")
	cmd.Flags().BoolVar(&opts.Forward, "forward", false, "with --resume: finish the upgrade instead of rolling it back, if the journal shows that is safe")
	cmd.Flags().BoolVar(&opts.Finalize, "finalize", false, "for a PostgreSQL server upgraded to a new major: delete the old major's cluster, which the upgrade kept (shown on status until then)")
	cmd.Flags().BoolVar(&opts.Resolved, "resolved", false, "with --resume SAGA: close the upgrade as put right by hand; nothing is run, restored or set")
	cmd.AddCommand(NewCmdUpgradeHistory(f, nil))
	return cmd
}

// parse checks the flags and arguments together.
func (o *UpgradeOptions) parse(args []string) error {
	if o.Resume {
		if o.To != "" || o.DryRun || o.AllowDowngrade {
			return usageErr("--resume takes no --to, --dry-run or --allow-downgrade")
		}
		if len(args) == 1 {
			o.ResumeID = args[0]
		}
		if o.Resolved && (o.Forward || o.ResumeID == "") {
			return usageErr("--resolved takes the saga's ID (homelab upgrade --resume SAGA --resolved) and no --forward")
		}
		return nil
	}
	if o.Forward || o.Resolved {
		return usageErr("--forward and --resolved go with --resume")
	}
	if o.Finalize {
		if len(args) != 1 || o.To != "" || o.AllowDowngrade {
			return usageErr("usage: homelab upgrade SERVICE --finalize [--dry-run]")
		}
		o.Service = args[0]
		return nil
	}
	if len(args) != 1 || o.To == "" {
		return usageErr("usage: homelab upgrade SERVICE --to VERSION")
	}
	o.Service = args[0]
	return nil
}

// runUpgrade runs an upgrade, or resumes (--resume) or closes
// (--resume --resolved) an unfinished one.
func runUpgrade(ctx context.Context, opts *UpgradeOptions) error {
	switch {
	case opts.Resume && opts.Resolved:
		return upgradeResolve(ctx, opts)
	case opts.Resume:
		return upgradeResume(ctx, opts)
	case opts.Finalize:
		return upgradeFinalize(ctx, opts)
	}
	err := upgradeStart(ctx, opts)
	var pe *upgrade.PlanError
	switch {
	case errors.Is(err, version.ErrAlreadyAt):
		// Nothing to do is success: running the same upgrade twice is safe.
		fmt.Fprintf(opts.IO.Out, "%s: %v: nothing to do\n", opts.Service, err)
		return nil
	case errors.As(err, &pe):
		return usageErr(err.Error())
	}
	return err
}

// upgradeStart plans the upgrade of opts.Service to opts.To, shows the
// plan and, unless --dry-run, runs it once confirmed.
func upgradeStart(ctx context.Context, opts *UpgradeOptions) error {
	a, u, closeFn, err := openUpgrader(ctx, opts, opts.Wait)
	if err != nil {
		return err
	}
	defer closeFn()
	plan, err := u.Plan(ctx, opts.Service, opts.To, upgrade.PlanOptions{AllowDowngrade: opts.AllowDowngrade})
	if err != nil {
		return err
	}
	if opts.JSON {
		if err := writeJSON(opts.IO.Out, "upgrade_plan", planJSON(plan)); err != nil {
			return err
		}
	} else {
		renderPlan(opts.IO.Out, plan)
	}
	if len(plan.Preflight) > 0 {
		// Refused before anything changes; --dry-run says so too.
		return &upgrade.PreflightError{Service: plan.Service, Findings: plan.Preflight}
	}
	if opts.DryRun {
		return nil
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("Upgrade %s from %s to %s?", plan.Service, plan.From, plan.To)); err != nil {
		return err
	}
	keepGoingOnHangup()
	pr := newUpgradeProgress(opts.IO)
	u.Progress, u.Note = pr.step, pr.note
	rec, err := u.Run(ctx, plan)
	return upgradeEnded(opts, a, u, rec, err)
}

// upgradeResume rolls back (or, with --forward, finishes) the unfinished
// upgrade opts.ResumeID, or the only one no process works on.
func upgradeResume(ctx context.Context, opts *UpgradeOptions) error {
	a, u, closeFn, err := openUpgrader(ctx, opts, true)
	if err != nil {
		return err
	}
	defer closeFn()
	id := opts.ResumeID
	if id == "" {
		if id, err = resumable(ctx, opts.IO, a, u.Journal, upgrade.Kind); id == "" {
			return err
		}
	}
	rec, err := u.Journal.Saga(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.ErrOut, saga.Describe(rec))
	mode, what := saga.Compensate, "Roll back"
	if opts.Forward {
		mode, what = saga.Forward, "Finish"
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("%s the upgrade of %s?", what, rec.Subject)); err != nil {
		return err
	}
	keepGoingOnHangup()
	pr := newUpgradeProgress(opts.IO)
	u.Progress, u.Note = pr.step, pr.note
	rec, err = u.Resume(ctx, id, mode)
	return upgradeEnded(opts, a, u, rec, err)
}

// upgradeResolve closes the unfinished upgrade opts.ResumeID that the
// operator has put right by hand, after confirming what that means.
func upgradeResolve(ctx context.Context, opts *UpgradeOptions) error {
	_, u, closeFn, err := openUpgrader(ctx, opts, false)
	if err != nil {
		return err
	}
	defer closeFn()
	rec, err := u.Journal.Saga(ctx, opts.ResumeID)
	if err != nil {
		return err
	}
	if rec.State.Final() {
		fmt.Fprintf(opts.IO.Out, "%s: already over, nothing to resolve\n", saga.Describe(rec))
		return nil
	}
	fmt.Fprintln(opts.IO.ErrOut, saga.Describe(rec))
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("Close the upgrade of %s as put right by hand? homelab restores and sets nothing; %s stays as you left it", rec.Subject, rec.Subject)); err != nil {
		return err
	}
	rec, err = u.Resolve(ctx, opts.ResumeID)
	if err != nil {
		return err
	}
	plan, _ := upgrade.PlanOf(rec)
	fmt.Fprintln(opts.IO.Out, app.UpgradeVerdict(rec, plan))
	return nil
}

// keepGoingOnHangup makes a confirmed upgrade or resume outlive its
// terminal, as under nohup(1): SIGHUP (the SSH session dropped, the
// terminal closed) is ignored, so the upgrade runs to its end (upgraded,
// or rolled back) and sends its notifications, instead of dying between
// steps with the service on the new version and its journal saying
// running. SIGPIPE is ignored too, so output piped to a reader that died
// with the terminal (| tee log) fails with EPIPE instead of killing
// homelab (Go's default for fds 1 and 2). Output to the gone terminal is
// lost; the journal (upgrade history) and the notifications are not.
// Ctrl-C and SIGTERM still roll the upgrade back.
func keepGoingOnHangup() { signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE) }

// upgradeEnded shows how an upgrade or resume ended (app.EndUpgrade
// decides what follows: restore points, notification): the verdict and,
// when the service was left stopped or the saga needs attention, the
// restore points with the commands that restore them by hand.
func upgradeEnded(opts *UpgradeOptions, a *app.App, u *upgrade.Upgrader, rec saga.Record, err error) error {
	end, ok := a.EndUpgrade(u, rec, err)
	if !ok {
		return err
	}
	if end.RestorePointsErr != nil {
		fmt.Fprintf(opts.IO.ErrOut, "homelab: restore commands: %v\n", end.RestorePointsErr)
	}
	if end.NotifyErr != nil {
		fmt.Fprintf(opts.IO.ErrOut, "homelab: notify: %v\n", end.NotifyErr)
	}
	if opts.JSON {
		out := struct {
			Saga          saga.Record            `json:"saga"`
			Outcome       string                 `json:"outcome"`
			RestorePoints []upgrade.RestorePoint `json:"restore_points,omitempty"`
		}{end.Saga, end.Verdict, end.RestorePoints}
		if jerr := writeJSON(opts.IO.Out, "upgrade_result", out); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else {
		fmt.Fprintln(opts.IO.Out, end.Verdict)
		if secs, ok := upgrade.AnalyzeSeconds(end.Saga); ok {
			fmt.Fprintf(opts.IO.Out, "vacuumdb --all --analyze-in-stages took %.2fs (after the dependents were back: not in the downtime)\n", secs)
		}
		renderRestorePoints(opts.IO.Out, end.RestorePoints)
	}
	return err
}

// upgradeProgress prints the saga's steps and notes as they happen, on
// stderr.
type upgradeProgress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	start map[string]time.Time
}

func newUpgradeProgress(io *IOStreams) *upgradeProgress {
	return &upgradeProgress{w: io.ErrOut, tty: io.StderrTTY, start: map[string]time.Time{}}
}

func (p *upgradeProgress) step(id string, st saga.StepRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := st.Name
	if st.Phase == catalog.PhaseCompensate {
		name = "undo " + name
	}
	switch st.State {
	case catalog.StepStarted:
		p.start[name] = time.Now()
		fmt.Fprintf(p.w, "→ %s\n", name)
	case catalog.StepDone:
		fmt.Fprintf(p.w, "%s %s (%s)\n", mark(p.tty, true), name, status.Seconds(time.Since(p.start[name])))
	case catalog.StepFailed:
		fmt.Fprintf(p.w, "%s %s: %s\n", mark(p.tty, false), name, st.Error)
	case catalog.StepSkipped:
		fmt.Fprintf(p.w, "  %s: nothing to undo\n", name)
	}
}

func (p *upgradeProgress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "    %s\n", msg)
}

func renderRestorePoints(w io.Writer, points []upgrade.RestorePoint) {
	if len(points) == 0 {
		return
	}
	fmt.Fprintln(w, "\nRestore points (the first holds the data as it was before the upgrade):")
	for _, rp := range points {
		fmt.Fprintf(w, "\n  %s, snapshot %s, taken before %s:\n", rp.Target, short(rp.Snapshot), rp.Before)
		for _, c := range rp.Commands {
			fmt.Fprintf(w, "    %s\n", c)
		}
	}
}

// planJSON is the plan with its estimate, for --json.
func planJSON(p upgrade.Plan) any {
	return struct {
		upgrade.Plan
		EstimateSeconds float64          `json:"estimate_backup_seconds"`
		EstimateUnknown []string         `json:"estimate_unknown,omitempty"`
		Preflight       []backup.Finding `json:"preflight,omitempty"`
		Warnings        []string         `json:"warnings,omitempty"`
	}{p, p.Estimate.Total.Seconds(), p.Estimate.Unknown, p.Preflight, p.Warnings}
}

func renderPlan(w io.Writer, p upgrade.Plan) {
	if p.Postgres != nil {
		renderPGPlan(w, p)
		return
	}
	verb := "Upgrade"
	if p.Downgrade {
		verb = "DOWNGRADE"
	}
	fmt.Fprintf(w, "%s %s from %s to %s (%s runtime)\n", verb, p.Service, p.From, p.To, p.Runtime)
	points := "none (no backup_before targets: a failure cannot restore data)"
	if len(p.BackupBefore) > 0 {
		points = strings.Join(p.BackupBefore, ", ")
	}
	for i, v := range p.Path {
		kind := "target"
		if i < len(p.Path)-1 {
			kind = "required stop"
		}
		fmt.Fprintf(w, "  %d. %s (%s)\n", i+1, v, kind)
		fmt.Fprintf(w, "     restore point: %s\n", points)
		fmt.Fprintf(w, "     set version, then healthy within %s\n", p.HealthyWithin)
		if p.PostStep != "" {
			fmt.Fprintf(w, "     post-step: %s\n", p.PostStep)
		}
	}
	e := p.Estimate
	switch {
	case len(p.BackupBefore) == 0:
		fmt.Fprintf(w, "Estimate: no backups; up to %s per version for the health gate\n", p.HealthyWithin)
	case len(e.Unknown) == len(p.BackupBefore):
		fmt.Fprintf(w, "Estimate: unknown (no past backup of %s); plus up to %s per version for the health gate\n", strings.Join(e.Unknown, ", "), p.HealthyWithin)
	default:
		fmt.Fprintf(w, "Estimate: about %s of backups (%s per restore point, from past backups), plus up to %s per version for the health gate",
			status.Seconds(e.Total), status.Seconds(e.Backups), p.HealthyWithin)
		if len(e.Unknown) > 0 {
			fmt.Fprintf(w, "; %s never backed up", strings.Join(e.Unknown, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, warning := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warning)
	}
	if len(p.Preflight) > 0 {
		fmt.Fprintln(w, "On failure: data could NOT be restored; the upgrade is refused until the restore points can be restored:")
		for _, f := range p.Preflight {
			fmt.Fprintf(w, "  %s\n", f)
		}
	} else if p.AfterRollback == "stopped" {
		fmt.Fprintln(w, "On failure: data restored, previous version set, service left stopped (after_rollback: stopped)")
	} else {
		fmt.Fprintf(w, "On failure: data restored, %s started again and health-checked\n", p.From)
	}
}

// openUpgrader opens the App and its Upgrader (wait: for the service's
// upgrade lock); closeFn closes what it opened.
func openUpgrader(ctx context.Context, opts *UpgradeOptions, wait bool) (*app.App, *upgrade.Upgrader, func(), error) {
	a, err := opts.F.App()
	if err != nil {
		return nil, nil, nil, err
	}
	u, closeFn, err := a.Upgrader(ctx, wait)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, u, closeFn, nil
}
