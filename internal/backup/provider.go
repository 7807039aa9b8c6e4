package backup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"homelab/internal/lab"
	"homelab/internal/restic"
)

// Tag names homelab puts on every restic snapshot so that plain
// `restic snapshots --tag homelab` finds them without homelab.
const (
	TagHomelab      = "homelab"
	TagTargetPrefix = "target:"
	TagRunPrefix    = "run:"
)

// Target is one backup target of the lab file, resolved for use: its spec
// and a client for its repository (nil for a provider that stores no
// snapshots in restic: s3-mirror).
type Target struct {
	Spec *lab.Backup
	Repo *restic.Client // nil for a pgbackrest target (its repository is its own)
	// Type is the backup type asked for (pgbackrest: full, diff, incr);
	// empty: the provider decides (pgbackrest: the due type).
	Type string
}

// Name is the target's name in the lab file.
func (t Target) Name() string { return t.Spec.Name }

// ScopeTags are the tags that select this target's snapshots.
func (t Target) ScopeTags() []string { return []string{TagHomelab, TagTargetPrefix + t.Spec.Name} }

// RunTags are the tags for a new snapshot of run runID.
func (t Target) RunTags(runID string) []string {
	tags := append(t.ScopeTags(), TagRunPrefix+runID)
	return append(tags, t.Spec.Tags...)
}

// Snapshot is one snapshot of a target.
type Snapshot struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Target  string    `json:"target"`
	RunID   string    `json:"run_id,omitempty"`
	Paths   []string  `json:"paths"`
	Tags    []string  `json:"tags"`
	Bytes   int64     `json:"bytes"` // source bytes processed
	Files   int64     `json:"files"`
	// Added is the bytes the snapshot added to the repository (known
	// right after a backup only).
	Added int64 `json:"-"`
}

// FromRestic converts a restic snapshot.
func FromRestic(s restic.Snapshot) Snapshot {
	out := Snapshot{ID: s.ID, ShortID: s.ShortID, Time: s.Time, Target: s.TagValue("target"), RunID: s.TagValue("run"), Paths: s.Paths, Tags: s.Tags}
	if s.Summary != nil {
		out.Bytes, out.Files = s.Summary.TotalBytesProcessed, s.Summary.TotalFilesProcessed
	}
	return out
}

// Destination is where a restore goes: a directory for file targets, a
// database for postgres targets, a bucket for s3-mirror targets, or, with
// InPlace, back where the data was backed up from.
type Destination struct {
	Path     string `json:"path,omitempty"`
	Database string `json:"database,omitempty"`
	// Bucket is an s3-mirror restore's bucket, on the source's endpoint
	// (created if missing); the objects go under their source keys.
	Bucket string `json:"bucket,omitempty"`
	// Delete (s3-mirror) removes, after the restore, the objects under the
	// source prefix of Bucket that are not in the snapshot, as restic
	// restore --delete does; without it they are left alone.
	Delete bool `json:"delete,omitempty"`
	// Replace allows restoring over an existing database (postgres): the
	// dump is restored into a staging database first and swapped in only
	// when the restore succeeded.
	Replace bool `json:"replace,omitempty"`
	// InPlace restores the target's data to its source, replacing what is
	// there now (for rolling back an upgrade); Path and Database must then
	// be empty. postgres: into Source.Database with Replace's staging and
	// swap (created if missing). files: each of Source.Paths is restored
	// into a staging directory beside it and verified, then all are swapped
	// in, so the result is the snapshot exactly (see files.Provider.Restore).
	InPlace bool `json:"in_place,omitempty"`
	// Recovery is a point-in-time recovery target (pgbackrest); zero:
	// recover to the end of the archived WAL.
	Recovery Recovery `json:"recovery,omitzero"`
	// Port, with Path, starts the restored cluster there (pgbackrest),
	// promoted and listening on 127.0.0.1; 0 leaves it stopped.
	Port int `json:"port,omitempty"`
	// NoVerify skips restic restore --verify (reading every restored file
	// back) for a files restore into Path; in-place restores and drills
	// always verify.
	NoVerify bool `json:"no_verify,omitempty"`
}

// Recovery is where a point-in-time recovery stops; at most one field is
// set. Time is PostgreSQL's timestamptz text ("2026-12-06 10:41:00+00"),
// LSN "0/3000060", XID a transaction ID, Name a restore point made with
// pg_create_restore_point. Immediate stops as soon as the restored
// cluster is consistent, at the end of the backup set restored: the data
// as the backup took it, none of the WAL archived after it replayed
// (pgbackrest restore --type=immediate, recovery_target = 'immediate').
type Recovery struct {
	Time      string `json:"time,omitempty"`
	LSN       string `json:"lsn,omitempty"`
	XID       string `json:"xid,omitempty"`
	Name      string `json:"name,omitempty"`
	Immediate bool   `json:"immediate,omitempty"`
}

// Check returns an error when more than one field of r is set (a
// recovery stops at one target).
func (r Recovery) Check() error {
	n := 0
	for _, v := range []string{r.Time, r.LSN, r.XID, r.Name} {
		if v != "" {
			n++
		}
	}
	if r.Immediate {
		n++
	}
	if n > 1 {
		return fmt.Errorf("recovery target %q: time, lsn, xid, name and immediate exclude each other", r.String())
	}
	return nil
}

// String names the target for plans and events: "" for none (the end of
// the archived WAL), "immediate (the backup's end)", else the value of
// the field set.
func (r Recovery) String() string {
	if r.Immediate {
		return "immediate (the backup's end)"
	}
	return strings.TrimSpace(strings.Join([]string{r.Time, r.LSN, r.XID, r.Name}, " "))
}

// CheckResult is the outcome of one drill check.
type CheckResult struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// DrillReport is what a provider's drill measured.
type DrillReport struct {
	// RTO is the measured time to restore: from the start of the restore
	// until the data was usable (restored, before the checks ran).
	RTO    time.Duration `json:"rto_ns"`
	Checks []CheckResult `json:"checks"`
	// Place is the throwaway place restored into (removed afterwards).
	Place string `json:"place"`
	// Leftovers are throwaway places that earlier drills of the target,
	// killed before they could remove them, left behind and that this
	// drill could not remove either, each with the reason ("database
	// homelab_drill_db_...: drop database: ..."). The drill removes the
	// ones it can before it starts; the manager records the rest as
	// errors, so status shows them.
	Leftovers []string `json:"leftovers,omitempty"`
}

// Failed returns the failed checks.
func (r DrillReport) Failed() []CheckResult {
	var out []CheckResult
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Output renders the checks one per line ("ok   check: detail").
func (r DrillReport) Output() string {
	var b strings.Builder
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "%s %s", mark, c.Check)
		if c.Detail != "" {
			fmt.Fprintf(&b, ": %s", c.Detail)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ProgressFunc receives restic status lines during backups and restores.
type ProgressFunc func(restic.Status)

// Provider knows one kind of data (DESIGN.md, "The provider contract").
// Every implementation runs the conformance suite, providertest.Run.
type Provider interface {
	// Backup takes a snapshot tagged with t.RunTags(runID). A failed backup
	// leaves no snapshot behind, except a partial one (restic exit 3),
	// which is returned with an error matching restic.ErrPartial.
	Backup(ctx context.Context, t Target, runID string, progress ProgressFunc) (Snapshot, error)
	// Restore restores snap into dest.
	Restore(ctx context.Context, t Target, snap Snapshot, dest Destination, progress ProgressFunc) error
	// List returns the target's snapshots, oldest first, each with the
	// RunID of the backup run that took it.
	List(ctx context.Context, t Target) ([]Snapshot, error)
	// PlanPrune computes what retention keeps and removes; IDs in protect
	// are kept whatever the policy says.
	PlanPrune(ctx context.Context, t Target, protect []string) (PrunePlan, error)
	// Prune carries out a plan made by PlanPrune.
	Prune(ctx context.Context, t Target, plan PrunePlan) error
	// Drill restores snap into a throwaway place, runs the target's checks
	// and removes the place, also on failure. A nil error with failed
	// checks in the report is a failed drill; an error is a drill that
	// could not restore at all.
	Drill(ctx context.Context, t Target, snap Snapshot, runID string) (DrillReport, error)
}

// PrunePlan is the outcome of retention for one target.
type PrunePlan struct {
	Target string     `json:"target"`
	Keep   []Snapshot `json:"keep"`
	Remove []Snapshot `json:"remove"`
	// Protected are snapshots the policy would remove but homelab keeps:
	// the newest snapshot that passed a restore drill, the restore points
	// of unfinished sagas, and the members of lab snapshots (HeldBy).
	Protected []Snapshot `json:"protected"`
	// HeldBy maps each kept snapshot (in Keep or Protected) that is a
	// member of lab snapshots to their names.
	HeldBy map[string][]string `json:"held_by,omitempty"`
}

// ResticSnapshots implements List, PlanPrune and Prune for providers that
// store their snapshots in restic, scoped by the target's tags. Retention
// is restic's own `forget` answer; the floor is applied on top.
type ResticSnapshots struct{}

// List returns the target's snapshots, oldest first.
func (ResticSnapshots) List(ctx context.Context, t Target) ([]Snapshot, error) {
	rs, err := t.Repo.Snapshots(ctx, t.ScopeTags()...)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(rs))
	for _, s := range rs {
		out = append(out, FromRestic(s))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// PolicyOf converts a lab retention to a restic policy.
func PolicyOf(r lab.Retention) restic.Policy {
	return restic.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly, Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: r.KeepWithin}
}

// PlanPrune asks restic forget --dry-run for the target's retention.
func (ResticSnapshots) PlanPrune(ctx context.Context, t Target, protect []string) (PrunePlan, error) {
	plan := PrunePlan{Target: t.Name()}
	if t.Spec.Retention.Empty() {
		return plan, fmt.Errorf("target %s has no retention rules: refusing to prune", t.Name())
	}
	groups, err := t.Repo.ForgetPlan(ctx, t.ScopeTags(), PolicyOf(t.Spec.Retention))
	if err != nil {
		return plan, err
	}
	keepAlso := map[string]bool{}
	for _, id := range protect {
		keepAlso[id] = true
	}
	for _, g := range groups {
		for _, s := range g.Keep {
			plan.Keep = append(plan.Keep, FromRestic(s))
		}
		for _, s := range g.Remove {
			if keepAlso[s.ID] {
				plan.Protected = append(plan.Protected, FromRestic(s))
				continue
			}
			plan.Remove = append(plan.Remove, FromRestic(s))
		}
	}
	return plan, nil
}

// Prune forgets exactly the snapshots the plan removes, then runs restic
// prune to free their data.
func (ResticSnapshots) Prune(ctx context.Context, t Target, plan PrunePlan) error {
	if len(plan.Remove) == 0 {
		return nil
	}
	ids := make([]string, 0, len(plan.Remove))
	for _, s := range plan.Remove {
		ids = append(ids, s.ID)
	}
	if err := t.Repo.Forget(ctx, ids); err != nil {
		return err
	}
	return t.Repo.Prune(ctx)
}
