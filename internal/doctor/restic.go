package doctor

import (
	"context"
	"fmt"
	"time"

	"homelab/internal/restic"
)

// DefaultStaleLockAge is the age after which restic itself calls a lock
// that was not refreshed stale (restic refreshes a live lock every 5
// minutes).
const DefaultStaleLockAge = 30 * time.Minute

// checkRepository lists the repository's locks and keys: stale locks
// (their holder gone from this host, or not refreshed for StaleLockAge)
// are a finding that `restic unlock` fixes (it removes only locks restic
// itself calls stale); a repository with one key has no recovery key.
func (d *Doctor) checkRepository(ctx context.Context, name string) part {
	subject := "repository " + name
	p := part{checked: subject}
	c, err := d.Repo(ctx, name)
	if err != nil {
		p.findings = append(p.findings, unchecked(subject, err))
		return p
	}
	age := d.StaleLockAge
	if age <= 0 {
		age = d.Lab.Serve.StaleLockAge
	}
	if age <= 0 {
		age = DefaultStaleLockAge
	}
	now := d.now()
	stale, _, err := c.Partition(ctx, restic.StaleRule{MaxAge: age, Hostname: hostname(d.Hostname), Now: func() time.Time { return now }})
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
			apply:   c.Unlock})
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
