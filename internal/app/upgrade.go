package app

import (
	"context"
	"fmt"
	"time"

	"homelab/internal/notify"
	"homelab/internal/saga"
	"homelab/internal/status"
	"homelab/internal/upgrade"
)

// UpgradeEnd is how an upgrade or a resume ended and what followed from
// it, for the CLI to show.
type UpgradeEnd struct {
	Saga saga.Record
	Plan upgrade.Plan
	// Verdict is the one-line outcome (see UpgradeVerdict); it is also
	// the notification's detail.
	Verdict string
	// Stopped: the service was left stopped (its rollback failed, or it
	// was rolled back with after_rollback: stopped). RestorePoints then
	// lists the restore points with the commands that restore them by
	// hand; RestorePointsErr says why they could not be read.
	Stopped          bool
	RestorePoints    []upgrade.RestorePoint
	RestorePointsErr error
	// Notified: the upgrade failed, and upgrade_failed went to the lab's
	// notify channels that take it; NotifyErr is a notifier that could
	// not be built or a delivery not done within 30 seconds.
	Notified  bool
	NotifyErr error
}

// notifyWait is how long an upgrade_failed notification may take to be
// delivered before the command exits.
const notifyWait = 30 * time.Second

// EndUpgrade decides what follows from an upgrade or resume that returned
// rec and err (Upgrader.Run or Resume): when the service was left
// stopped, it reads the restore points; when the upgrade failed (err, and
// the saga is not done), it sends upgrade_failed to the lab's notify
// channels that take it (the operator may have walked away), waiting up
// to 30 seconds for delivery. ok is false when no saga was journalled (rec
// has no ID, or no plan): err alone is then the outcome.
func (a *App) EndUpgrade(u *upgrade.Upgrader, rec saga.Record, err error) (end UpgradeEnd, ok bool) {
	plan, perr := upgrade.PlanOf(rec)
	if rec.ID == "" || perr != nil {
		return UpgradeEnd{}, false
	}
	end = UpgradeEnd{Saga: rec, Plan: plan, Verdict: UpgradeVerdict(rec, plan)}
	end.Stopped = rec.State == saga.NeedsAttention || (rec.State == saga.Compensated && plan.AfterRollback == "stopped")
	if end.Stopped {
		end.RestorePoints, end.RestorePointsErr = u.RestorePoints(rec)
	}
	if err != nil && rec.State != saga.Done && len(a.Lab.Notify) > 0 {
		end.Notified = true
		end.NotifyErr = a.notifyUpgradeFailed(rec, end.Verdict)
	}
	return end, true
}

// notifyUpgradeFailed sends upgrade_failed for rec and waits up to 30
// seconds for its delivery.
func (a *App) notifyUpgradeFailed(rec saga.Record, verdict string) error {
	n, err := a.Notifier()
	if err != nil {
		return err
	}
	n.Notify(notify.Event{Kind: notify.UpgradeFailed, Lab: a.Lab.Name, Target: rec.Subject, Job: "upgrade", Error: rec.Error, Detail: verdict})
	ctx, cancel := context.WithTimeout(context.Background(), notifyWait)
	defer cancel()
	return n.Close(ctx)
}

// UpgradeVerdict is the one-line verdict of an upgrade saga rec with its
// plan p: upgraded, failed before the version changed, rolled back (and
// left stopped or running), resolved by hand, or ROLLBACK FAILED with what
// to do; saga.Describe for any other state.
func UpgradeVerdict(rec saga.Record, p upgrade.Plan) string {
	took := ""
	if !rec.End.IsZero() {
		took = " in " + status.Seconds(rec.End.Sub(rec.Start))
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
