package pgbackrest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"homelab/internal/backup"
	"homelab/internal/lab"
	"homelab/internal/schedule"
)

// Backup types, pgBackRest's --type.
const (
	TypeFull = "full"
	TypeDiff = "diff"
	TypeIncr = "incr"
)

// Provider backs up PostgreSQL clusters with pgBackRest.
type Provider struct {
	// StateDir is the lab's state directory: the configuration is written
	// under StateDir/pgbackrest/<target>.
	StateDir string
	// Now decides the due backup type; default time.Now.
	Now func() time.Time
}

var _ backup.Provider = (*Provider)(nil)

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Setup writes the configuration, creates the stanza (stanza-create is
// idempotent) and runs `pgbackrest check`, which proves that a WAL segment
// reaches the repository. When archiving is not configured the error is an
// *ArchiveError whose Lines are the postgresql.conf lines to add.
func (p *Provider) Setup(ctx context.Context, t backup.Target) error {
	r, err := p.runner(t.Spec)
	if err != nil {
		return err
	}
	if err := r.run(ctx, "stanza-create"); err != nil {
		return fmt.Errorf("target %s: stanza-create: %w", t.Name(), err)
	}
	if err := r.run(ctx, "check"); err != nil {
		return fmt.Errorf("target %s: check: %w", t.Name(), err)
	}
	return nil
}

// VerifyRepository runs `pgbackrest check`, which proves that WAL
// archiving still reaches the repository (an *ArchiveError names the
// postgresql.conf lines when it does not), then `pgbackrest verify` on
// the target's repository: every backup file and archived WAL segment is
// read and its checksum compared. pgBackRest 2.45 exits 0 when it finds
// damage and says "status: error" in its text output; that is an error
// here, naming the invalid backups and archives. verify reads the
// repository only, so it runs also when check fails (the cluster down,
// archiving broken): the error then joins both.
func (p *Provider) VerifyRepository(ctx context.Context, t backup.Target) error {
	r, err := p.runner(t.Spec)
	if err != nil {
		return err
	}
	var checkErr error
	if err := r.run(ctx, "check"); err != nil {
		checkErr = fmt.Errorf("target %s: check: %w", t.Name(), err)
	}
	return errors.Join(checkErr, r.verify(ctx, t.Name()))
}

// verify runs `pgbackrest verify` (see VerifyRepository).
func (r *runner) verify(ctx context.Context, target string) error {
	out, err := r.output(ctx, "verify", "--output=text")
	if err != nil {
		return fmt.Errorf("target %s: verify: %w", target, err)
	}
	if bad := verifyProblems(string(out)); bad != "" {
		return fmt.Errorf("target %s: pgbackrest verify found damage: %s", target, bad)
	}
	return r.saveSecrets()
}

// verifyProblems summarises the invalid parts of verify's text output
// ("" when its status is ok).
func verifyProblems(out string) string {
	if !strings.Contains(out, "status: error") {
		return ""
	}
	var bad []string
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if (strings.HasPrefix(l, "backup:") && strings.Contains(l, "status: invalid")) || strings.HasPrefix(l, "archiveId:") {
			if i+1 < len(lines) && !strings.Contains(lines[i+1], "missing: 0, checksum invalid: 0, size invalid: 0, other: 0") {
				bad = append(bad, strings.SplitN(l, ",", 2)[0]+" ("+strings.TrimSpace(lines[i+1])+")")
			}
		}
	}
	if len(bad) == 0 {
		return "status: error"
	}
	return strings.Join(bad, "; ")
}

// Backup runs `pgbackrest backup` of type t.Type, or the due type
// (DueType), and returns the new set from `pgbackrest info`. The run's ID
// is the set's annotation homelab-run.
func (p *Provider) Backup(ctx context.Context, t backup.Target, runID string, _ backup.ProgressFunc) (backup.Snapshot, error) {
	r, err := p.runner(t.Spec)
	if err != nil {
		return backup.Snapshot{}, err
	}
	typ := t.Type
	if typ == "" {
		in, err := r.info(ctx)
		if err != nil {
			return backup.Snapshot{}, err
		}
		if typ, err = DueType(t.Spec, in.Backup, p.now()); err != nil {
			return backup.Snapshot{}, err
		}
	}
	if !slices.Contains([]string{TypeFull, TypeDiff, TypeIncr}, typ) {
		return backup.Snapshot{}, fmt.Errorf("target %s: unknown backup type %q (full, diff or incr)", t.Name(), typ)
	}
	if err := r.run(ctx, "backup", "--type="+typ, "--annotation="+RunAnnotation+"="+runID); err != nil {
		return backup.Snapshot{}, fmt.Errorf("target %s: %s backup: %w", t.Name(), typ, err)
	}
	in, err := r.info(ctx)
	if err != nil {
		return backup.Snapshot{}, err
	}
	if len(in.Backup) == 0 {
		return backup.Snapshot{}, fmt.Errorf("target %s: pgbackrest backup succeeded but info lists no backup", t.Name())
	}
	s := in.Backup[len(in.Backup)-1].Snapshot(t.Name(), t.Spec.PgBackRest.Cluster.DataDir)
	s.RunID = runID
	return s, nil
}

// DueType is the backup type a run without --type takes: full when there
// is no full backup yet; otherwise the largest type whose schedule
// (schedules.full, or the target's schedule; schedules.diff) had a slot
// since the newest backup of that type or a larger one; otherwise incr.
func DueType(b *lab.Backup, sets []Set, now time.Time) (string, error) {
	newest := func(types ...string) time.Time {
		var t time.Time
		for _, s := range sets {
			if slices.Contains(types, s.Type) && !s.Error && s.Start().After(t) {
				t = s.Start()
			}
		}
		return t
	}
	if newest(TypeFull).IsZero() {
		return TypeFull, nil
	}
	full := b.PgBackRest.Schedules.Full
	if full == "" {
		full = b.Schedule
	}
	for _, c := range []struct {
		typ, spec string
		since     time.Time
	}{
		{TypeFull, full, newest(TypeFull)},
		{TypeDiff, b.PgBackRest.Schedules.Diff, newest(TypeFull, TypeDiff)},
	} {
		if c.spec == "" {
			continue
		}
		sched, err := lab.ParseSchedule(c.spec)
		if err != nil {
			return "", fmt.Errorf("target %s: %s schedule: %w", b.Name, c.typ, err)
		}
		if prev, ok := schedule.Prev(sched, now); ok && prev.After(c.since) {
			return c.typ, nil
		}
	}
	return TypeIncr, nil
}

// List returns the target's backup sets, oldest first (a set that
// pgBackRest marks in error is left out).
func (p *Provider) List(ctx context.Context, t backup.Target) ([]backup.Snapshot, error) {
	r, err := p.runner(t.Spec)
	if err != nil {
		return nil, err
	}
	in, err := r.info(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]backup.Snapshot, 0, len(in.Backup))
	for _, s := range in.Backup {
		if !s.Error {
			out = append(out, s.Snapshot(t.Name(), t.Spec.PgBackRest.Cluster.DataDir))
		}
	}
	return out, nil
}

// Window returns the target's recoverable window: `pgbackrest info`,
// then `pgbackrest repo-ls` of the newest archived segment for To.
func (p *Provider) Window(ctx context.Context, t backup.Target) (Window, error) {
	r, err := p.runner(t.Spec)
	if err != nil {
		return Window{}, err
	}
	in, err := r.info(ctx)
	if err != nil {
		return Window{}, err
	}
	w := WindowOf(in)
	if w.WALTo != "" {
		if w.To, err = r.archivedAt(ctx, w.archiveID, w.WALTo); err != nil {
			return w, err
		}
	}
	return w, nil
}

// Waiting reads the live cluster's pg_wal/archive_status (PostgreSQL's
// record of archiving: a "<segment>.ready" file for each completed
// segment archive_command has not archived yet, made when the segment was
// completed): how many segments wait, the oldest and when it was
// completed. Reading it starts no process and needs no connection; it
// needs read access to the data directory (homelab as root, or as the
// cluster's OS user).
func Waiting(b *lab.Backup) (n int, oldest string, since time.Time, err error) {
	dir := filepath.Join(b.PgBackRest.Cluster.DataDir, "pg_wal", "archive_status")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, "", time.Time{}, fmt.Errorf("target %s: read the cluster's archive status: %w", b.Name, err)
	}
	for _, e := range entries {
		seg, ok := strings.CutSuffix(e.Name(), ".ready")
		if !ok || len(seg) != 24 { // timeline .history files wait too, but hold no data
			continue
		}
		n++
		if oldest == "" || seg < oldest {
			oldest = seg
			if fi, err := e.Info(); err == nil {
				since = fi.ModTime().UTC()
			}
		}
	}
	return n, oldest, since, nil
}

// PlanPrune keeps the newest keep_last full backups with their diff and
// incr backups (labels prefixed with the full's); the older full backups
// and theirs are removed, except a group holding a protected set, which
// is kept whole (Protected): removing a full removes what depends on it.
func (p *Provider) PlanPrune(ctx context.Context, t backup.Target, protect []string) (backup.PrunePlan, error) {
	plan := backup.PrunePlan{Target: t.Name()}
	keep := t.Spec.Retention.KeepLast
	if keep < 1 {
		return plan, fmt.Errorf("target %s has no retention.keep_last (the number of full backups kept): refusing to prune", t.Name())
	}
	snaps, err := p.List(ctx, t)
	if err != nil {
		return plan, err
	}
	return PlanGroups(t.Name(), snaps, keep, protect), nil
}

// PlanGroups is PlanPrune's pure part: snaps oldest first.
func PlanGroups(target string, snaps []backup.Snapshot, keepFull int, protect []string) backup.PrunePlan {
	plan := backup.PrunePlan{Target: target}
	var fulls []string
	for _, s := range snaps {
		if slices.Contains(s.Tags, "type:"+TypeFull) {
			fulls = append(fulls, s.ID)
		}
	}
	groupOf := func(id string) string {
		for _, f := range fulls {
			if id == f || strings.HasPrefix(id, f+"_") {
				return f
			}
		}
		return ""
	}
	removeFull := map[string]bool{}
	for i, f := range fulls {
		if i < len(fulls)-keepFull {
			removeFull[f] = true
		}
	}
	held := map[string]bool{}
	for _, id := range protect {
		if g := groupOf(id); removeFull[g] {
			held[g] = true
		}
	}
	for _, s := range snaps {
		g := groupOf(s.ID)
		switch {
		case !removeFull[g]:
			plan.Keep = append(plan.Keep, s)
		case held[g]:
			plan.Protected = append(plan.Protected, s)
		default:
			plan.Remove = append(plan.Remove, s)
		}
	}
	return plan
}

// Prune runs `pgbackrest expire --set LABEL` for each full backup the plan
// removes (its diff and incr backups, and the WAL no remaining backup
// needs, go with it).
func (p *Provider) Prune(ctx context.Context, t backup.Target, plan backup.PrunePlan) error {
	r, err := p.runner(t.Spec)
	if err != nil {
		return err
	}
	for _, s := range plan.Remove {
		if !slices.Contains(s.Tags, "type:"+TypeFull) {
			continue
		}
		if err := r.run(ctx, "expire", "--set="+s.ID); err != nil {
			return fmt.Errorf("target %s: expire %s: %w", t.Name(), s.ID, err)
		}
	}
	return nil
}

// Restore restores snap into dest.Path (a new or empty directory), with
// dest.Recovery as the point-in-time target (none: to the end of the
// archived WAL; Immediate: to the end of snap, the data as backed up).
// With dest.Port the restored cluster is started there on 127.0.0.1,
// and Restore returns once recovery has finished and it is promoted; it
// is left running. The cluster's archive_mode is off (it
// must not archive into the target's repository). An in-place restore is
// refused here: it replaces a running service's data, which is the saga
// of package clusterrestore (over RestoreLive).
func (p *Provider) Restore(ctx context.Context, t backup.Target, snap backup.Snapshot, dest backup.Destination, _ backup.ProgressFunc) (err error) {
	if dest.InPlace || dest.Path == "" {
		return fmt.Errorf("target %s: a pgbackrest target restores into a new data directory: --to DIR", t.Name())
	}
	r, err := p.runner(t.Spec)
	if err != nil {
		return err
	}
	made, err := r.newDataDir(dest.Path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && made {
			os.RemoveAll(dest.Path)
		}
	}()
	if err := r.restore(ctx, snap, dest.Path, dest.Recovery, false); err != nil {
		return err
	}
	if dest.Port == 0 {
		return nil
	}
	c := r.cluster(dest.Path, dest.Port)
	if err := c.start(ctx, false); err != nil {
		return errors.Join(err, c.stop(context.WithoutCancel(ctx)))
	}
	return nil
}

// newDataDir creates dir (0700, the OS user's) or checks that it is an
// empty directory; made says it was created.
func (r *runner) newDataDir(dir string) (made bool, err error) {
	if !filepath.IsAbs(dir) {
		return false, fmt.Errorf("restore directory %q: must be an absolute path", dir)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return false, err
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, err
		}
		return true, r.user.chown(dir)
	case err != nil:
		return false, err
	case len(entries) > 0:
		return false, fmt.Errorf("restore directory %s is not empty", dir)
	}
	return false, errors.Join(os.Chmod(dir, 0o700), r.user.chown(dir))
}

// RestoreLive restores snap into dir, the target's own data directory
// (cluster.data_dir with symbolic links resolved), for an in-place
// restore: the directory must be missing or empty (it is created 0700,
// the OS user's) and the cluster stopped. Recovery is to rec, promoting
// there (none: to the end of the archived WAL; Immediate: to the end of
// snap). Unlike Restore, archive_mode is left as backed up: the
// restored cluster is the live one, and goes on archiving into the
// target's repository (on a new timeline once promoted), but only once
// ResumeArchiving is called: until then its archive_command is empty
// (PostgreSQL keeps the WAL in pg_wal), so that a restored cluster given
// up leaves no new timeline in the repository. Errors:
// pgbackrest restore's, as a *execx.CmdError.
func (p *Provider) RestoreLive(ctx context.Context, t backup.Target, snap backup.Snapshot, rec backup.Recovery, dir string) error {
	r, err := p.runner(t.Spec)
	if err != nil {
		return err
	}
	if _, err := r.newDataDir(dir); err != nil {
		return err
	}
	return r.restore(ctx, snap, dir, rec, true)
}

// restore runs `pgbackrest restore` into dir; archive_mode off unless
// live. A time target before the set's stop cannot be reached from it:
// pgBackRest then picks the newest set that stopped before it. An
// immediate target stops at the end of snap (the data as backed up).
func (r *runner) restore(ctx context.Context, snap backup.Snapshot, dir string, rec backup.Recovery, live bool) error {
	// The restored server fetches WAL with archive-get: with the cipher
	// pass from conf.d, like archive_command (its environment has none).
	get := fmt.Sprintf(`pgbackrest --config=%s --config-include-path=%s --stanza=%s --pg1-path=%s archive-get %%f "%%p"`,
		ConfigPath(r.stateDir, r.b.Name), includeDir(r.stateDir, r.b.Name), r.b.PgBackRest.Stanza, dir)
	args := []string{"--pg1-path=" + dir, "--recovery-option=restore_command=" + get}
	if !live {
		args = append(args, "--archive-mode=off")
	} else {
		// Held (WAL kept in pg_wal) until ResumeArchiving: a restored
		// cluster that is then given up must leave nothing in the
		// repository (its timeline's history file would be followed by
		// every later recovery to the end of the WAL).
		args = append(args, "--recovery-option=archive_command=") // heldArchiving
	}
	if err := rec.Check(); err != nil {
		return fmt.Errorf("target %s: restore %s: %w", r.b.Name, snap.ID, err)
	}
	setArg := "--set=" + snap.ID
	switch {
	case rec.Time != "":
		args = append(args, "--type=time", "--target="+rec.Time)
		if target, ok := parseTime(rec.Time); ok && stopOf(snap).After(target) {
			setArg = ""
		}
	case rec.LSN != "":
		args = append(args, "--type=lsn", "--target="+rec.LSN)
	case rec.XID != "":
		args = append(args, "--type=xid", "--target="+rec.XID)
	case rec.Name != "":
		args = append(args, "--type=name", "--target="+rec.Name)
	case rec.Immediate:
		// Consistent at the end of snap itself: --set is what decides.
		args = append(args, "--type=immediate")
	}
	if rec != (backup.Recovery{}) {
		args = append(args, "--target-action=promote")
	}
	if setArg != "" {
		args = append(args, setArg)
	}
	if err := r.run(ctx, "restore", args...); err != nil {
		return fmt.Errorf("target %s: restore %s: %w", r.b.Name, snap.ID, err)
	}
	return nil
}

// stopOf reads a snapshot's stop time from its tags (its start if none).
func stopOf(s backup.Snapshot) time.Time {
	for _, tag := range s.Tags {
		if v, ok := strings.CutPrefix(tag, "stop:"); ok {
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				return t
			}
		}
	}
	return s.Time
}

// parseTime reads the usual timestamptz spellings of a recovery target.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
