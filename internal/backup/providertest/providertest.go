package providertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// Harness is what a provider's test gives the suite.
type Harness struct {
	// New returns the provider under test and fresh source data for one
	// case, whose lab keeps its state in stateDir (an existing directory
	// that any user can search: a pgbackrest target's configuration,
	// which the cluster's archive_command names, is written there). Each
	// case calls it once; cleanup goes through t.
	New func(t *testing.T, stateDir string) (backup.Provider, Source)
	// Kinds are the storage kinds the provider works with; every case
	// runs against each.
	Kinds []RepoKind
	// Commands are the programs besides the kind's that the provider
	// starts, itself or through restic (pg_dump, pg_restore), found in
	// PATH. The suite records their argv (and the kind's) and requires
	// each to have been started at least once.
	Commands []string
	// Manager, when set, adjusts each case's Manager before the case
	// runs (pgbackrest: BackupType full, so that keep_last counts every
	// backup).
	Manager func(m *backup.Manager)
	// InPlaceRefused says the provider's Restore refuses an in-place
	// restore, which another part of homelab does (pgbackrest: the
	// clusterrestore saga, which stops and starts the service); the
	// suite then checks that the refusal changes nothing instead of
	// restoring in place.
	InPlaceRefused bool
}

// Source is the data of one case, as the provider backs it up.
type Source interface {
	// Spec returns the target: Name (unique among the cases sharing a
	// server), Provider, Source and drill checks that pass on every state
	// of the data (as created and after any Change). The suite sets
	// Repository, Tags, Retention and the timeouts.
	Spec() *lab.Backup
	// State returns a fingerprint of the data now, as a backup takes it
	// (without what the target excludes).
	State(t *testing.T) string
	// Change changes the data so that State differs from every earlier
	// state.
	Change(t *testing.T)
	// Destination returns a new place to restore to (not in place) and a
	// function returning the State of what was restored there.
	Destination(t *testing.T) (dest backup.Destination, restored func(t *testing.T) string)
	// Break makes the next backup fail: the data is gone or unreachable.
	Break(t *testing.T)
	// Stall makes the next backup run until it is cancelled (a table
	// locked by another session, a file of a terabyte with no blocks, an
	// object whose download never ends). It returns a channel closed once
	// that backup is underway and stuck, or nil: the backup is underway
	// at the provider's first progress report (restic's first status
	// line, half a second after it started), and must still be running
	// then, on however busy a machine.
	Stall(t *testing.T) (underway <-chan struct{})
	// FailingCheck is a drill check that fails on the data.
	FailingCheck() lab.Check
	// Leftovers lists what restores and drills left behind (throwaway
	// databases or directories, staging copies); none when they cleaned up.
	Leftovers(t *testing.T) []string
	// Secrets are values that must never appear in argv or errors (the
	// source's passwords); may be none.
	Secrets() []string
}

// Run runs the suite for every kind of h.
func Run(t *testing.T, h Harness) {
	if h.New == nil || len(h.Kinds) == 0 {
		t.Fatal("providertest: Harness needs New and at least one repository kind")
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"BackupListRestore", testBackupListRestore},
		{"Drill", testDrill},
		{"Retention", testRetention},
		{"FailingSource", testFailingSource},
		{"DamagedRepositoryFailsDrill", testDamagedRepository},
		{"CancelledBackupIsInterrupted", testCancelledBackup},
		// Last: it also checks the argv of every case before it.
		{"NoSecretInArgv", testNoSecretInArgv},
	}
	for _, kind := range h.Kinds {
		t.Run(kind.Name, func(t *testing.T) {
			argv := newArgvLog(t, append(slices.Clone(kind.Commands), h.Commands...))
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.fn(t, newEnv(t, h, kind, argv)) })
			}
		})
	}
}

// env is one case: a fresh repository of the kind, fresh source data, a
// catalog and a Manager over them.
type env struct {
	h     Harness
	kind  RepoKind
	repo  Repo
	src   Source
	spec  *lab.Backup
	name  string
	store *catalog.SQLite
	m     *backup.Manager
	argv  *argvLog
	// secrets are this case's: the repository's and the source's.
	secrets []string
}

func newEnv(t *testing.T, h Harness, kind RepoKind, argv *argvLog) *env {
	t.Helper()
	dir := testenv.SearchableDir(t)
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(stateDir, 0o711); err != nil { // whatever the umask
		t.Fatal(err)
	}
	repo := kind.New(t, stateDir)
	p, src := h.New(t, stateDir)
	spec := src.Spec()
	if repo.restic() {
		spec.Repository = kind.Name
	} else {
		repo.Place(spec)
	}
	spec.Tags = append(spec.Tags, "providertest")
	if spec.Drill.Timeout == 0 {
		spec.Drill.Timeout = lab.DefaultDrillTimeout
	}
	if spec.Hooks.Timeout == 0 {
		spec.Hooks.Timeout = lab.DefaultHookTimeout
	}
	if spec.Timeout == 0 {
		spec.Timeout = lab.DefaultBackupTimeout
	}
	l := suiteLab(stateDir, kind.Name, repo, spec)
	store, err := catalog.Open(t.Context(), filepath.Join(l.StateDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var cfg restic.Config
	if repo.restic() {
		cfg = repo.config(argv.resticShim(t))
	}
	m := &backup.Manager{
		Lab: l, Catalog: store,
		Providers: map[string]backup.Provider{spec.Provider: p},
		Repo: func(ctx context.Context, name string) (*restic.Client, error) {
			if name != kind.Name || !repo.restic() {
				return nil, fmt.Errorf("unknown repository %q", name)
			}
			return restic.New(ctx, cfg)
		},
	}
	if h.Manager != nil {
		h.Manager(m)
	}
	e := &env{h: h, kind: kind, repo: repo, src: src, spec: spec, name: spec.Name, store: store, m: m, argv: argv}
	e.secrets = append(slices.Clone(repo.Secrets), src.Secrets()...)
	if repo.restic() {
		e.secrets = append(e.secrets, repo.password(t))
	}
	argv.addSecrets(e.secrets...)
	if _, ok := p.(backup.Setupper); ok {
		if err := m.Setup(t.Context(), e.name); err != nil {
			t.Fatalf("set-up of the target: %v", err)
		}
	}
	return e
}

// suiteLab is the lab of one case, built the one place the suite builds a
// lab.Lab: one target, and its restic repository if it has one.
func suiteLab(stateDir, repoName string, repo Repo, spec *lab.Backup) *lab.Lab {
	l := &lab.Lab{
		Name:     "providertest",
		StateDir: stateDir,
		Backups:  map[string]*lab.Backup{spec.Name: spec},
	}
	if repo.restic() {
		l.Repositories = map[string]*lab.Repository{repoName: labRepository(repoName, repo)}
	}
	return l
}

// backup backs the target up through the Manager and fails t unless it
// succeeded with a snapshot.
func (e *env) backup(t *testing.T) backup.RunReport {
	t.Helper()
	rep := e.m.Backup(t.Context(), e.name)
	if rep.Err != nil {
		t.Fatalf("backup: %v", rep.Err)
	}
	if rep.Run.Result != catalog.ResultOK || rep.Run.SnapshotID == "" || rep.Run.RunID == "" || rep.Run.End.IsZero() {
		t.Fatalf("backup run = %+v", rep.Run)
	}
	return rep
}

// list returns the target's snapshot IDs through the Manager, oldest first.
func (e *env) list(t *testing.T) []string {
	t.Helper()
	rows, err := e.m.List(t.Context(), e.name)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

// client returns the restic client of the case's repository.
func (e *env) client(t *testing.T) *restic.Client {
	t.Helper()
	c, err := e.m.Repo(t.Context(), e.kind.Name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stored returns the IDs of every snapshot in the storage, with or
// without homelab's tags, as its own tool lists them (Repo.Stored; plain
// restic snapshots).
func (e *env) stored(t *testing.T) []string {
	t.Helper()
	if !e.repo.restic() {
		return e.repo.Stored(t)
	}
	snaps, err := e.client(t).Snapshots(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

// restore restores snapshot id (a prefix will do) through the Manager into
// a new destination and fails t unless what was restored has state want.
func (e *env) restore(t *testing.T, id, want, what string) {
	t.Helper()
	dest, restored := e.src.Destination(t)
	e.restoreTo(t, id, dest)
	if got := restored(t); got != want {
		t.Errorf("%s: restored data differs:\n got %s\nwant %s", what, got, want)
	}
}

func (e *env) restoreTo(t *testing.T, id string, dest backup.Destination) {
	t.Helper()
	plan, err := e.m.PlanRestore(t.Context(), e.name, id, dest)
	if err != nil {
		t.Fatalf("plan restore of %s to %+v: %v", id, dest, err)
	}
	run, err := e.m.Restore(t.Context(), plan)
	if err != nil {
		t.Fatalf("restore of %s to %+v: %v", id, dest, err)
	}
	if run.Kind != catalog.KindRestore || run.Result != catalog.ResultOK || run.SnapshotID != plan.Snapshot.ID || (id != "latest" && !strings.HasPrefix(plan.Snapshot.ID, id)) {
		t.Errorf("restore run = %+v", run)
	}
}

// noLeftovers fails t if restores or drills left something behind.
func (e *env) noLeftovers(t *testing.T) {
	t.Helper()
	if left := e.src.Leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// noSecretIn fails t if text holds a secret of the case.
func (e *env) noSecretIn(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range e.secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("a secret in %s: %s", what, strings.ReplaceAll(text, s, "<secret>"))
		}
	}
}

// noSecretInCatalog fails t if a run's error, a drill's output or error,
// or an event holds a secret of the case.
func (e *env) noSecretInCatalog(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	runs, err := e.store.Runs(ctx, catalog.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		e.noSecretIn(t, "the catalog's run "+r.RunID, r.Error)
	}
	drills, err := e.store.Drills(ctx, catalog.DrillFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drills {
		e.noSecretIn(t, "the catalog's drill "+d.RunID, d.Output+d.Error)
	}
	events, err := e.store.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		e.noSecretIn(t, "the catalog's event "+ev.Kind, ev.Message)
	}
}

func (e *env) runs(t *testing.T, kind catalog.Kind) []catalog.Run {
	t.Helper()
	runs, err := e.store.Runs(t.Context(), catalog.RunFilter{Target: e.name, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// testBackupListRestore: a backup is listed, and the storage's own tool
// finds it (a restic snapshot has homelab's tags, and plain restic finds
// it by the tag homelab); it restores to the data as it was, also after
// the data changed and was backed up again, by ID, by a unique prefix and
// as latest, to a new place and in place (or the provider refuses in
// place, changing nothing: Harness.InPlaceRefused).
func testBackupListRestore(t *testing.T, e *env) {
	ctx := t.Context()
	s1 := e.src.State(t)
	rep1 := e.backup(t)
	rows, err := e.m.List(ctx, e.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("list after one backup: %+v", rows)
	}
	snap := rows[0]
	if snap.ID != rep1.Run.SnapshotID || snap.Target != e.name || snap.RunID != rep1.Run.RunID || snap.Time.IsZero() || snap.Drill != nil {
		t.Errorf("listed snapshot = %+v, backup run = %+v", snap, rep1.Run)
	}
	if e.repo.restic() {
		for _, tag := range []string{backup.TagHomelab, backup.TagTargetPrefix + e.name, backup.TagRunPrefix + rep1.Run.RunID, "providertest"} {
			if !slices.Contains(snap.Tags, tag) {
				t.Errorf("snapshot tags %v lack %s", snap.Tags, tag)
			}
		}
		plain, err := e.client(t).Snapshots(ctx, backup.TagHomelab)
		if err != nil || len(plain) != 1 || plain[0].ID != snap.ID {
			t.Errorf("restic snapshots --tag homelab = %+v, %v", plain, err)
		}
	}
	if stored := e.stored(t); !slices.Equal(stored, []string{snap.ID}) {
		t.Errorf("the storage's own tool lists %v, want [%s]", stored, snap.ID)
	}
	e.restore(t, snap.ID, s1, "first snapshot")

	e.src.Change(t)
	s2 := e.src.State(t)
	if s2 == s1 {
		t.Fatal("the harness's Change changed nothing")
	}
	rep2 := e.backup(t)
	if ids := e.list(t); !slices.Equal(ids, []string{rep1.Run.SnapshotID, rep2.Run.SnapshotID}) {
		t.Fatalf("list after two backups = %v, want [%s %s] (oldest first)", ids, rep1.Run.SnapshotID, rep2.Run.SnapshotID)
	}
	prefix := uniquePrefix(rep1.Run.SnapshotID, rep2.Run.SnapshotID)
	e.restore(t, prefix, s1, "first snapshot by the prefix "+prefix+", after the data changed")
	e.restore(t, "latest", s2, "second snapshot")

	restores := 3
	if e.h.InPlaceRefused {
		e.inPlaceRefused(t, rep1.Run.SnapshotID, s2)
	} else {
		// In place: the source is the first snapshot again.
		e.restoreTo(t, rep1.Run.SnapshotID, backup.Destination{InPlace: true})
		if got := e.src.State(t); got != s1 {
			t.Errorf("source after an in-place restore of the first snapshot:\n got %s\nwant %s", got, s1)
		}
		restores++
	}
	e.noLeftovers(t)
	if runs := e.runs(t, catalog.KindBackup); len(runs) != 2 || runs[0].Result != catalog.ResultOK || runs[1].Result != catalog.ResultOK {
		t.Errorf("catalog backup runs = %+v", runs)
	}
	// Every restore is recorded, and succeeded; a refused in-place
	// restore may be recorded too, as failed.
	all := e.runs(t, catalog.KindRestore)
	ok := 0
	for _, r := range all {
		if r.Result == catalog.ResultOK {
			ok++
		}
	}
	refused := 0
	if e.h.InPlaceRefused {
		refused = 1
	}
	if ok != restores || len(all) > restores+refused {
		t.Errorf("catalog restore runs = %+v, want %d that succeeded and at most %d more", all, restores, refused)
	}
}

// inPlaceRefused checks that an in-place restore of snapshot id is
// refused, planned or run, with an error, and leaves the source as it
// was (state want).
func (e *env) inPlaceRefused(t *testing.T, id, want string) {
	t.Helper()
	if plan, err := e.m.PlanRestore(t.Context(), e.name, id, backup.Destination{InPlace: true}); err == nil {
		if run, err := e.m.Restore(t.Context(), plan); err == nil || run.Result == catalog.ResultOK {
			t.Errorf("an in-place restore of %s succeeded (%+v), but the harness says the provider refuses it", id, run)
		}
	}
	if got := e.src.State(t); got != want {
		t.Errorf("source after a refused in-place restore:\n got %s\nwant %s", got, want)
	}
}

// uniquePrefix returns the shortest prefix of id, four characters at
// least, that is no prefix of other.
func uniquePrefix(id, other string) string {
	for n := 4; n < len(id); n++ {
		if !strings.HasPrefix(other, id[:n]) {
			return id[:n]
		}
	}
	return id
}

// testDrill: a drill of the newest snapshot passes its checks, is recorded
// with a non-zero RTO, and cleans up; a failing check fails the drill
// (ErrDrillFailed), names the check, and cleans up too.
func testDrill(t *testing.T, e *env) {
	ctx := t.Context()
	id := e.backup(t).Run.SnapshotID
	out := e.m.Verify(ctx, e.name)
	if out.Err != nil {
		t.Fatalf("drill: %v\n%s", out.Err, out.Report.Output())
	}
	if out.Drill.Result != catalog.ResultOK || out.Drill.SnapshotID != id || out.Drill.ID == 0 {
		t.Errorf("drill = %+v", out.Drill)
	}
	if out.Report.RTO <= 0 || out.Drill.RTO != out.Report.RTO {
		t.Errorf("RTO: report %v, catalog %v; want the same, non-zero", out.Report.RTO, out.Drill.RTO)
	}
	if len(out.Report.Checks) == 0 || len(out.Report.Checks) < len(e.spec.Drill.Checks) || len(out.Report.Failed()) > 0 || out.Report.Place == "" {
		t.Errorf("drill report = %+v", out.Report)
	}
	if out.Drill.Output != out.Report.Output() {
		t.Errorf("catalog drill output %q, report %q", out.Drill.Output, out.Report.Output())
	}
	e.noLeftovers(t)
	if rows, err := e.m.List(ctx, e.name); err != nil || len(rows) != 1 || rows[0].Drill == nil || rows[0].Drill.Result != catalog.ResultOK {
		t.Errorf("list after a drill: %+v, %v", rows, err)
	}

	failing := e.src.FailingCheck()
	e.spec.Drill.Checks = append(e.spec.Drill.Checks, failing)
	out = e.m.Verify(ctx, e.name)
	if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed || out.Drill.Error == "" {
		t.Fatalf("drill with a failing check: %+v, %v", out.Drill, out.Err)
	}
	failed := out.Report.Failed()
	if len(failed) != 1 || !strings.Contains(out.Err.Error(), failed[0].Check) || !strings.Contains(out.Drill.Output, "FAIL "+failed[0].Check) {
		t.Errorf("failed checks %+v; error %v; output:\n%s", failed, out.Err, out.Drill.Output)
	}
	e.noLeftovers(t)
	drills, err := e.store.Drills(ctx, catalog.DrillFilter{Target: e.name})
	if err != nil || len(drills) != 2 || drills[0].Result != catalog.ResultFailed || drills[1].Result != catalog.ResultOK {
		t.Errorf("catalog drills (newest first) = %+v, %v", drills, err)
	}
}

// testRetention: four backups under keep_last 2, the first one drilled.
// The plan keeps what restic forget keeps, and protects the drilled
// snapshot restic would remove (the Manager's floor); a dry run changes
// nothing; the prune removes exactly the rest, and what is left restores.
func testRetention(t *testing.T, e *env) {
	ctx := t.Context()
	e.spec.Retention = lab.Retention{KeepLast: 2}
	var ids, states []string
	for i := range 4 {
		if i > 0 {
			e.src.Change(t)
		}
		states = append(states, e.src.State(t))
		ids = append(ids, e.backup(t).Run.SnapshotID)
		if i == 0 {
			if out := e.m.Verify(ctx, e.name); out.Err != nil {
				t.Fatalf("drill of the first snapshot: %v", out.Err)
			}
		}
	}
	stateOf := map[string]string{}
	for i, id := range ids {
		stateOf[id] = states[i]
	}

	if !t.Run("Plan", func(t *testing.T) {
		if e.repo.restic() {
			e.resticForgets(t, ids[2:], ids[:2])
		}
		plan, err := e.m.PlanPrune(ctx, e.name)
		if err != nil {
			t.Fatal(err)
		}
		keep, remove, protected := snapIDs(plan.Keep), snapIDs(plan.Remove), snapIDs(plan.Protected)
		assertSet(t, "plan keeps", keep, ids[2:])
		assertSet(t, "plan protects (drilled)", protected, ids[:1])
		assertSet(t, "plan removes", remove, ids[1:2])
		if plan.Target != e.name {
			t.Errorf("plan.Target = %q", plan.Target)
		}
		if _, err := e.m.Prune(ctx, e.name, true); err != nil {
			t.Fatal(err)
		}
		if got := e.list(t); !slices.Equal(got, ids) {
			t.Errorf("after a dry run: %v, want all of %v", got, ids)
		}
		if runs := e.runs(t, catalog.KindPrune); len(runs) != 0 {
			t.Errorf("a dry run recorded %+v", runs)
		}
	}) {
		return
	}
	t.Run("Prune", func(t *testing.T) {
		plan, err := e.m.Prune(ctx, e.name, false)
		if err != nil {
			t.Fatal(err)
		}
		assertSet(t, "pruned", snapIDs(plan.Remove), ids[1:2])
		left := []string{ids[0], ids[2], ids[3]}
		if got := e.list(t); !slices.Equal(got, left) {
			t.Fatalf("after prune: %v, want %v", got, left)
		}
		if got := e.stored(t); len(got) != len(left) {
			t.Errorf("the storage's own tool lists %d snapshots after prune, want %d", len(got), len(left))
		}
		for _, id := range left {
			e.restore(t, id, stateOf[id], "snapshot "+id[:8]+" kept by prune")
		}
		runs := e.runs(t, catalog.KindPrune)
		if len(runs) != 1 || runs[0].Result != catalog.ResultOK || runs[0].Files != 1 {
			t.Errorf("catalog prune runs = %+v", runs)
		}
	})
}

// resticForgets checks that restic forget --dry-run, asked for the
// target's retention, keeps exactly keep and removes exactly remove.
func (e *env) resticForgets(t *testing.T, keep, remove []string) {
	t.Helper()
	tgt, _, err := e.m.Target(t.Context(), e.name)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := tgt.Repo.ForgetPlan(t.Context(), tgt.ScopeTags(), backup.PolicyOf(e.spec.Retention))
	if err != nil {
		t.Fatal(err)
	}
	var kept, removed []string
	for _, g := range groups {
		for _, s := range g.Keep {
			kept = append(kept, s.ID)
		}
		for _, s := range g.Remove {
			removed = append(removed, s.ID)
		}
	}
	assertSet(t, "restic forget keeps", kept, keep)
	assertSet(t, "restic forget removes", removed, remove)
}

// testFailingSource: a backup of a broken source fails and is recorded
// as failed, leaves no snapshot (listed or stored), and the earlier snapshot
// is still listed and restores.
func testFailingSource(t *testing.T, e *env) {
	ctx := t.Context()
	s1 := e.src.State(t)
	id := e.backup(t).Run.SnapshotID
	e.src.Break(t)
	rep := e.m.Backup(ctx, e.name)
	if rep.Err == nil || rep.Run.Result != catalog.ResultFailed || rep.Run.SnapshotID != "" || rep.Run.Error == "" {
		t.Fatalf("backup of a broken source: %+v, %v", rep.Run, rep.Err)
	}
	e.noSecretIn(t, "the error", rep.Err.Error())
	if ids := e.list(t); !slices.Equal(ids, []string{id}) {
		t.Errorf("snapshots after a failed backup: %v, want [%s]", ids, id)
	}
	if all := e.stored(t); !slices.Equal(all, []string{id}) {
		t.Errorf("the storage's own tool lists %v after a failed backup, want [%s]", all, id)
	}
	runs := e.runs(t, catalog.KindBackup)
	if len(runs) != 2 || runs[0].Result != catalog.ResultFailed || runs[0].End.IsZero() || runs[1].Result != catalog.ResultOK {
		t.Errorf("catalog runs (newest first) = %+v", runs)
	}
	e.restore(t, id, s1, "the snapshot before the failed backup")
	e.noSecretInCatalog(t)
}

// testDamagedRepository: after the storage's data is damaged (Repo.Damage),
// the drill (which reads the storage, not a cache) fails, is recorded as
// failed, and cleans up.
func testDamagedRepository(t *testing.T, e *env) {
	ctx := t.Context()
	id := e.backup(t).Run.SnapshotID
	e.repo.Damage(t)
	out := e.m.Verify(ctx, e.name)
	if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed || out.Drill.SnapshotID != id {
		t.Fatalf("drill of a damaged snapshot: %+v, %v", out.Drill, out.Err)
	}
	drills, err := e.store.Drills(ctx, catalog.DrillFilter{Target: e.name})
	if err != nil || len(drills) != 1 || drills[0].Result != catalog.ResultFailed || drills[0].Error == "" {
		t.Errorf("catalog drills = %+v, %v", drills, err)
	}
	e.noLeftovers(t)
	e.noSecretInCatalog(t)
}

// testCancelledBackup: a backup cancelled midway (as a signal or the
// daemon's shutdown cancels it) is recorded as interrupted, leaves no
// snapshot, and no lock on the storage is still held.
func testCancelledBackup(t *testing.T, e *env) {
	underway := e.src.Stall(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	var midway atomic.Bool
	stop := func() { once.Do(func() { midway.Store(true); cancel() }) }
	if underway == nil {
		e.m.Progress = func(target string, s restic.Status) { stop() }
	} else {
		go func() {
			select {
			case <-underway:
				stop()
			case <-ctx.Done():
			}
		}()
	}
	rep := e.m.Backup(ctx, e.name)
	if !midway.Load() {
		t.Fatalf("the backup ended before it was underway (a status line, or the harness's stall): %+v, %v", rep.Run, rep.Err)
	}
	if rep.Err == nil || rep.Run.Result != catalog.ResultInterrupted || rep.Run.SnapshotID != "" {
		t.Fatalf("cancelled backup: %+v, %v", rep.Run, rep.Err)
	}
	runs := e.runs(t, catalog.KindBackup)
	if len(runs) != 1 || runs[0].Result != catalog.ResultInterrupted || runs[0].End.IsZero() || runs[0].Error == "" {
		t.Fatalf("catalog runs = %+v", runs)
	}
	if all := e.stored(t); len(all) != 0 {
		t.Errorf("a cancelled backup left snapshots %v", all)
	}
	if e.repo.restic() {
		locks, err := e.client(t).Locks(t.Context())
		if err != nil || len(locks) != 0 {
			t.Errorf("restic locks after the cancelled backup: %+v, %v", locks, err)
		}
	} else if e.repo.Locks != nil {
		if locks := e.repo.Locks(t); len(locks) != 0 {
			t.Errorf("locks still held after the cancelled backup: %v", locks)
		}
	}
	e.noSecretInCatalog(t)
}

// testNoSecretInArgv runs every operation, a failing backup included, and
// then checks the argv of every process started by this kind's cases so
// far: no secret in any, and every command seen.
func testNoSecretInArgv(t *testing.T, e *env) {
	ctx := t.Context()
	e.spec.Retention = lab.Retention{KeepLast: 1}
	s1 := e.src.State(t)
	e.backup(t)
	e.restore(t, "latest", s1, "latest")
	if out := e.m.Verify(ctx, e.name); out.Err != nil {
		t.Fatalf("drill: %v", out.Err)
	}
	for range 2 {
		e.src.Change(t)
		e.backup(t)
	}
	// keep_last 1 keeps the third, the floor the first: the second goes
	// (restic forget and prune run).
	if plan, err := e.m.Prune(ctx, e.name, false); err != nil || len(plan.Remove) != 1 || len(plan.Protected) != 1 {
		t.Fatalf("prune: %+v, %v", plan, err)
	}
	e.src.Break(t)
	rep := e.m.Backup(ctx, e.name)
	if rep.Err == nil {
		t.Fatal("backup of a broken source succeeded")
	}
	e.noSecretIn(t, "the error", rep.Err.Error())
	e.noSecretInCatalog(t)
	e.argv.check(t)
}

func snapIDs(snaps []backup.Snapshot) []string {
	ids := make([]string, 0, len(snaps))
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

// assertSet fails t unless got and want hold the same IDs.
func assertSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s: %v, want %v", what, g, w)
	}
}
