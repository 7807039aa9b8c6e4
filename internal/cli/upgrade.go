package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/catalog"
	"homelab/internal/daemon"
	"homelab/internal/notify"
	"homelab/internal/saga"
	"homelab/internal/upgrade"
	"homelab/internal/version"
)

// UpgradeOptions are the options of homelab upgrade.
type UpgradeOptions struct {
	F *Factory
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
}

// NewCmdUpgrade returns `homelab upgrade`.
func NewCmdUpgrade(f *Factory, runF func(*UpgradeOptions) error) *cobra.Command {
	opts := &UpgradeOptions{F: f}
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

Exits 0 when upgraded (or nothing to resume), 1 when the upgrade failed
(rolled back, or its rollback failed), 2 for bad usage or a plan that
cannot be made, 130 when interrupted (after the rollback).

` + exitCodesHelp,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.parse(args); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return upgradeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.To, "to", "", "the version to upgrade to, as the runtime writes it (an image tag: 17.0.0-ce.0)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and change nothing")
	cmd.Flags().BoolVar(&opts.AllowDowngrade, "allow-downgrade", false, "allow a target older than the running version")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for another upgrade of the service to end instead of failing (busy backup targets and repository locks are always waited for)")
	cmd.Flags().BoolVar(&opts.Resume, "resume", false, "finish an unfinished upgrade (default: roll it back)")
	cmd.Flags().BoolVar(&opts.Forward, "forward", false, "with --resume: finish the upgrade instead of rolling it back, if the journal shows that is safe")
	cmd.Flags().BoolVar(&opts.Resolved, "resolved", false, "with --resume SAGA: close the upgrade as put right by hand; nothing is run, restored or set")
	cmd.AddCommand(newCmdUpgradeHistory(f))
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
	if len(args) != 1 || o.To == "" {
		return usageErr("usage: homelab upgrade SERVICE --to VERSION")
	}
	o.Service = args[0]
	return nil
}

// upgradeRun runs or resumes an upgrade.
func upgradeRun(ctx context.Context, o *UpgradeOptions) error {
	if o.Resume && o.Resolved {
		return runUpgradeResolve(ctx, o.F, o.ResumeID, o.Yes)
	}
	if o.Resume {
		mode := saga.Compensate
		if o.Forward {
			mode = saga.Forward
		}
		return runUpgradeResume(ctx, o.F, o.ResumeID, mode, o.Yes)
	}
	err := runUpgrade(ctx, o.F, o.Service, o.To, upgrade.PlanOptions{AllowDowngrade: o.AllowDowngrade}, o.Yes, o.DryRun, o.Wait)
	var pe *upgrade.PlanError
	switch {
	case errors.Is(err, version.ErrAlreadyAt):
		// Nothing to do is success: running the same upgrade twice is safe.
		fmt.Fprintf(o.F.IO.Out, "%s: %v: nothing to do\n", o.Service, err)
		return nil
	case errors.As(err, &pe):
		return usageErr(err.Error())
	}
	return err
}

// upgrader returns the upgrader of the lab; close closes the catalog.
// wait is for the service's upgrade lock (another upgrade); the restore
// points and rollbacks always wait for busy backup targets and restic
// repository locks (the daemon's backup or prune): a rollback must not
// give up on a lock that frees in a minute.
func (f *Factory) upgrader(ctx context.Context, wait bool) (*upgrade.Upgrader, func(), error) {
	m, closeFn, err := f.Manager(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	j, ok := m.Catalog.(catalog.Journal)
	if !ok {
		closeFn()
		return nil, nil, errors.New("the catalog keeps no saga journal")
	}
	u := &upgrade.Upgrader{Lab: m.Lab, Backups: m, Journal: j, Wait: wait, Now: f.Now, Log: f.Logger()}
	return u, closeFn, nil
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
		fmt.Fprintf(p.w, "%s %s (%s)\n", mark(p.tty, true), name, seconds(time.Since(p.start[name])))
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

func runUpgrade(ctx context.Context, f *Factory, service, to string, o upgrade.PlanOptions, yes, dryRun, wait bool) error {
	u, closeFn, err := f.upgrader(ctx, wait)
	if err != nil {
		return err
	}
	defer closeFn()
	plan, err := u.Plan(ctx, service, to, o)
	if err != nil {
		return err
	}
	if f.JSON {
		if err := writeJSON(f.IO.Out, "upgrade_plan", planJSON(plan)); err != nil {
			return err
		}
	} else {
		renderPlan(f.IO.Out, plan)
	}
	if dryRun {
		return nil
	}
	if err := confirm(f.IO, yes, fmt.Sprintf("Upgrade %s from %s to %s?", plan.Service, plan.From, plan.To)); err != nil {
		return err
	}
	keepGoingOnHangup()
	pr := newUpgradeProgress(f.IO)
	u.Progress, u.Note = pr.step, pr.note
	rec, err := u.Run(ctx, plan)
	return f.upgradeOutcome(u, rec, err)
}

func runUpgradeResume(ctx context.Context, f *Factory, id string, mode saga.Mode, yes bool) error {
	u, closeFn, err := f.upgrader(ctx, true)
	if err != nil {
		return err
	}
	defer closeFn()
	if id == "" {
		open, err := saga.Unfinished(ctx, u.Journal)
		if err != nil {
			return err
		}
		var ids []string
		for _, r := range open {
			if r.Kind != upgrade.Kind {
				continue
			}
			if live, holder := saga.InProgress(u.Lab.StateDir, r); live {
				fmt.Fprintf(f.IO.ErrOut, "homelab: %s; in progress: %s: not resumed\n", saga.Describe(r), holder)
				continue
			}
			ids = append(ids, r.ID)
		}
		switch len(ids) {
		case 0:
			fmt.Fprintln(f.IO.Out, "no unfinished upgrade")
			return nil
		case 1:
			id = ids[0]
		default:
			return usageErr("several unfinished upgrades: name one of " + strings.Join(ids, ", "))
		}
	}
	rec, err := u.Journal.Saga(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintln(f.IO.ErrOut, saga.Describe(rec))
	what := "Roll back"
	if mode == saga.Forward {
		what = "Finish"
	}
	if err := confirm(f.IO, yes, fmt.Sprintf("%s the upgrade of %s?", what, rec.Subject)); err != nil {
		return err
	}
	keepGoingOnHangup()
	pr := newUpgradeProgress(f.IO)
	u.Progress, u.Note = pr.step, pr.note
	rec, err = u.Resume(ctx, id, mode)
	return f.upgradeOutcome(u, rec, err)
}

// runUpgradeResolve closes an unfinished upgrade the operator has put
// right by hand, after confirming what that means.
func runUpgradeResolve(ctx context.Context, f *Factory, id string, yes bool) error {
	u, closeFn, err := f.upgrader(ctx, false)
	if err != nil {
		return err
	}
	defer closeFn()
	rec, err := u.Journal.Saga(ctx, id)
	if err != nil {
		return err
	}
	if rec.State.Final() {
		fmt.Fprintf(f.IO.Out, "%s: already over, nothing to resolve\n", saga.Describe(rec))
		return nil
	}
	fmt.Fprintln(f.IO.ErrOut, saga.Describe(rec))
	if err := confirm(f.IO, yes, fmt.Sprintf("Close the upgrade of %s as put right by hand? homelab restores and sets nothing; %s stays as you left it", rec.Subject, rec.Subject)); err != nil {
		return err
	}
	rec, err = u.Resolve(ctx, id)
	if err != nil {
		return err
	}
	plan, _ := upgrade.PlanOf(rec)
	fmt.Fprintln(f.IO.Out, outcome(rec, plan))
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

// upgradeOutcome prints how an upgrade or resume ended and, when the
// service was left stopped or the saga needs attention, the restore
// points with the commands that restore them by hand.
func (f *Factory) upgradeOutcome(u *upgrade.Upgrader, rec saga.Record, err error) error {
	plan, perr := upgrade.PlanOf(rec)
	if rec.ID == "" || perr != nil {
		return err
	}
	stopped := rec.State == saga.NeedsAttention || (rec.State == saga.Compensated && plan.AfterRollback == "stopped")
	var points []upgrade.RestorePoint
	if stopped {
		var rerr error
		points, rerr = u.RestorePoints(rec)
		if rerr != nil {
			fmt.Fprintf(f.IO.ErrOut, "homelab: restore commands: %v\n", rerr)
		}
	}
	if err != nil && rec.State != saga.Done {
		f.notifyUpgrade(rec, outcome(rec, plan))
	}
	if f.JSON {
		out := struct {
			Saga          saga.Record            `json:"saga"`
			Outcome       string                 `json:"outcome"`
			RestorePoints []upgrade.RestorePoint `json:"restore_points,omitempty"`
		}{rec, outcome(rec, plan), points}
		if jerr := writeJSON(f.IO.Out, "upgrade_result", out); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else {
		fmt.Fprintln(f.IO.Out, outcome(rec, plan))
		renderRestorePoints(f.IO.Out, points)
	}
	return err
}

// notifyUpgrade sends upgrade_failed to the lab's notify channels that
// take it (the operator may have walked away), waiting up to 30 seconds
// for delivery.
func (f *Factory) notifyUpgrade(rec saga.Record, verdict string) {
	l, err := f.Lab()
	if err != nil || len(l.Notify) == 0 {
		return
	}
	n, err := daemon.NewNotifier(l, f.Logger())
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "homelab: notify: %v\n", err)
		return
	}
	n.Notify(notify.Event{Kind: notify.UpgradeFailed, Lab: l.Name, Target: rec.Subject, Job: "upgrade", Error: rec.Error, Detail: verdict})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		fmt.Fprintf(f.IO.ErrOut, "homelab: notify: %v\n", err)
	}
}

// outcome is the one-line verdict of an upgrade saga.
func outcome(rec saga.Record, p upgrade.Plan) string {
	took := ""
	if !rec.End.IsZero() {
		took = " in " + seconds(rec.End.Sub(rec.Start))
	}
	switch {
	case rec.State == saga.Done:
		return fmt.Sprintf("%s upgraded from %s to %s%s (saga %s)", p.Service, p.From, p.To, took, rec.ID)
	case (rec.State == saga.Compensated || rec.State == saga.Failed) && !upgrade.VersionChanged(rec):
		return fmt.Sprintf("upgrade of %s to %s failed before the version changed: %s still runs %s, with its data (saga %s)", p.Service, p.To, p.Service, p.From, rec.ID)
	case rec.State == saga.Compensated:
		if p.AfterRollback == "stopped" {
			return fmt.Sprintf("upgrade of %s to %s failed and was rolled back: data restored and %s set again, service left STOPPED (after_rollback: stopped) (saga %s)", p.Service, p.To, p.From, rec.ID)
		}
		return fmt.Sprintf("upgrade of %s to %s failed and was rolled back: %s runs %s again, with its data, healthy (saga %s)", p.Service, p.To, p.Service, p.From, rec.ID)
	case rec.State == saga.Resolved:
		return fmt.Sprintf("upgrade of %s to %s closed as resolved by hand: homelab restored and set nothing; %s is as you left it (saga %s)", p.Service, p.To, p.Service, rec.ID)
	case rec.State == saga.NeedsAttention:
		return fmt.Sprintf("upgrade of %s to %s failed and its ROLLBACK FAILED: %s is left stopped; fix the cause above, then run homelab upgrade --resume %s (it restores the data and sets %s again); without homelab, restore with the commands below and set %s back to %s", p.Service, p.To, p.Service, rec.ID, p.From, p.Service, p.From)
	}
	return saga.Describe(rec)
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
		EstimateSeconds float64  `json:"estimate_backup_seconds"`
		EstimateUnknown []string `json:"estimate_unknown,omitempty"`
	}{p, p.Estimate.Total.Seconds(), p.Estimate.Unknown}
}

func renderPlan(w io.Writer, p upgrade.Plan) {
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
			seconds(e.Total), seconds(e.Backups), p.HealthyWithin)
		if len(e.Unknown) > 0 {
			fmt.Fprintf(w, "; %s never backed up", strings.Join(e.Unknown, ", "))
		}
		fmt.Fprintln(w)
	}
	if p.AfterRollback == "stopped" {
		fmt.Fprintln(w, "On failure: data restored, previous version set, service left stopped (after_rollback: stopped)")
	} else {
		fmt.Fprintf(w, "On failure: data restored, %s started again and health-checked\n", p.From)
	}
}

func newCmdUpgradeHistory(f *Factory) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history [SERVICE]",
		Short: "List past upgrades with their steps and outcomes, from the journal",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, closeFn, err := f.upgrader(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer closeFn()
			subject := ""
			if len(args) == 1 {
				subject = args[0]
			}
			recs, err := saga.History(cmd.Context(), u.Journal, upgrade.Kind, subject, limit)
			if err != nil {
				return err
			}
			if f.JSON {
				for _, r := range recs {
					if err := writeJSON(f.IO.Out, "upgrade", r); err != nil {
						return err
					}
				}
				return nil
			}
			if len(recs) == 0 {
				fmt.Fprintln(f.IO.Out, "no upgrades yet")
			}
			for i, r := range recs {
				if i > 0 {
					fmt.Fprintln(f.IO.Out)
				}
				renderHistory(f.IO.Out, r)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many upgrades (0: all)")
	return cmd
}

func renderHistory(w io.Writer, r saga.Record) {
	p, _ := upgrade.PlanOf(r)
	fmt.Fprintf(w, "%s  %s  %s → %s  %s\n", r.Start.Local().Format("2006-01-02 15:04"), r.Subject, p.From, p.To, strings.ToUpper(string(r.State)))
	fmt.Fprintf(w, "  saga %s", r.ID)
	if !r.End.IsZero() {
		fmt.Fprintf(w, ", took %s", seconds(r.End.Sub(r.Start)))
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
			line += " (" + seconds(st.End.Sub(st.Start)) + ")"
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

// warnUnfinished reports every unfinished saga of the lab on stderr (the
// catalog is read only if it exists); errors are ignored: the command
// itself reports a bad lab file or catalog.
func (f *Factory) warnUnfinished(ctx context.Context) {
	l, err := f.Lab()
	if err != nil {
		return
	}
	path := filepath.Join(l.StateDir, "catalog.db")
	if _, err := os.Stat(path); err != nil {
		return
	}
	store, err := catalog.Open(ctx, path)
	if err != nil {
		return
	}
	defer store.Close()
	open, err := saga.Unfinished(ctx, store)
	if err != nil {
		return
	}
	for _, r := range open {
		if live, holder := saga.InProgress(l.StateDir, r); live {
			fmt.Fprintf(f.IO.ErrOut, "homelab: note: %s; in progress: %s\n", saga.Describe(r), holder)
			continue
		}
		fmt.Fprintf(f.IO.ErrOut, "homelab: warning: unfinished %s; finish it with: homelab %s --resume %s\n", saga.Describe(r), r.Kind, r.ID)
	}
}
