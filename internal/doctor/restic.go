package doctor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"homelab/internal/restic"
)

// StaleLockAge is the age after which restic itself calls a lock that
// was not refreshed stale (restic refreshes a live lock every 5 minutes),
// so that `restic unlock`, the fix, removes what doctor reports (as
// `homelab repo unlock` judges; not serve.stale_lock_age).
const StaleLockAge = 30 * time.Minute

// checkRepository lists the repository's locks and keys: stale locks
// (their holder gone from this host, or not refreshed for StaleLockAge)
// are a finding that `restic unlock` fixes (it removes only locks restic
// itself calls stale; the fix fails when one is left); a repository with
// one key has no recovery key.
func (d *Doctor) checkRepository(ctx context.Context, name string) part {
	subject := "repository " + name
	p := part{checked: subject}
	c, err := d.Repo(ctx, name)
	if err != nil {
		p.findings = append(p.findings, unchecked(subject, err))
		return p
	}
	now := d.now()
	stale, _, err := c.Partition(ctx, restic.StaleRule{MaxAge: StaleLockAge, Hostname: hostname(d.Hostname), Now: func() time.Time { return now }})
	if err != nil {
		p.findings = append(p.findings, unchecked(subject, fmt.Errorf("list locks: %w", err)))
		return p
	}
	if len(stale) > 0 {
		var ids []string
		for _, l := range stale {
			ids = append(ids, fmt.Sprintf("%s (%s pid %d, %s old)", l.ShortID(), l.Hostname, l.PID, now.Sub(l.Time).Round(time.Second)))
		}
		p.findings = append(p.findings, Finding{Check: CheckStaleLock, Subject: subject, Auto: true, Fix: FixCommand + " (or homelab repo unlock " + name + ")",
			Problem: plural(len(stale), "stale lock", "stale locks") + " whose holder is gone block exclusive operations (check, prune): " + list(ids, 3),
			apply:   func(ctx context.Context) error { return unlock(ctx, c, name, stale) }})
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		p.findings = append(p.findings, unchecked(subject, fmt.Errorf("list keys: %w", err)))
		return p
	}
	if len(keys) == 1 {
		p.findings = append(p.findings, Finding{Check: CheckSingleKey, Subject: subject,
			Problem: "one key only: the repository cannot be opened without the lab's password (no recovery key)",
			Fix:     "homelab repo key add " + name + " --out FILE (then store FILE offline)"})
	}
	return p
}

// unlock runs restic unlock and checks that the stale locks are gone:
// restic judges staleness by its own clock and rule, so a lock doctor
// called stale may be kept; then the fix fails, naming it.
func unlock(ctx context.Context, c *restic.Client, repo string, stale []restic.LockInfo) error {
	if err := c.Unlock(ctx); err != nil {
		return err
	}
	locks, err := c.Locks(ctx)
	if err != nil {
		return fmt.Errorf("list locks after restic unlock: %w", err)
	}
	var left []string
	for _, l := range locks {
		if slices.ContainsFunc(stale, func(s restic.LockInfo) bool { return s.ID == l.ID }) {
			left = append(left, l.ShortID())
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("restic unlock kept %s: restic does not call it stale (see homelab repo unlock %s)", plural(len(left), "lock", "locks")+" "+list(left, 3), repo)
	}
	return nil
}
