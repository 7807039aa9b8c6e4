package labsnapshot

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/deploy"
	"homelab/internal/deploy/deploytest"
	"homelab/internal/lab"
	"homelab/internal/saga"
	"homelab/internal/testenv"
	"homelab/internal/upgrade"
)

// TestRestoreRefusedWhileUnfinished: a lab snapshot restore refuses, in
// its plan and again when it runs, while another saga of the lab is
// unfinished (an upgrade left needing attention would later put its
// restore point and version back over the restored lab), naming the saga
// and its --resume; nothing is changed.
func TestRestoreRefusedWhileUnfinished(t *testing.T) {
	m, store, at := newTestManager(t, "name: t\nstate_dir: state\n")

	// Nothing unfinished: the plan is made (the check does not refuse
	// everything).
	p, err := m.PlanRestore(t.Context(), "before")
	if err != nil {
		t.Fatalf("plan with nothing unfinished: %v", err)
	}

	const id = "20261123T100000Z-0000abcd"
	if err := store.CreateSaga(t.Context(), catalog.Saga{ID: id, Kind: "upgrade", Subject: "web",
		Plan: []string{"set version 2.0.0"}, State: catalog.SagaNeedsAttention, Start: at, End: at}); err != nil {
		t.Fatal(err)
	}
	want := "finish it first with homelab upgrade --resume " + id
	if _, err := m.PlanRestore(t.Context(), "before"); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("plan with an unfinished upgrade: %v; want refused, %q", err, want)
	}
	// A plan made before the upgrade failed is refused when it runs.
	rec, _, err := m.Restore(t.Context(), p)
	if err == nil || !strings.Contains(err.Error(), want) || rec.ID != "" {
		t.Errorf("restore with an unfinished upgrade: saga %q, %v; want refused before a saga starts", rec.ID, err)
	}
	if all, err := store.LabSnapshotList(t.Context(), 0); err != nil || len(all) != 1 {
		t.Errorf("lab snapshots after the refusal: %d, %v; want only before (no restore point taken)", len(all), err)
	}
}

// newTestManager loads labYAML, opens its catalog with a complete lab
// snapshot "before" of no members (nothing for restic to list), and
// returns a Manager over them whose clock is an hour after at, the
// snapshot's time.
func newTestManager(t *testing.T, labYAML string) (*Manager, *catalog.SQLite, time.Time) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(labYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := catalog.Open(t.Context(), filepath.Join(dir, "state", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	putComplete(t, store, catalog.LabSnapshot{Name: "before"}, at)
	b := &backup.Manager{Lab: l, Catalog: store}
	return &Manager{Lab: l, Backups: b, Upgrader: &upgrade.Upgrader{Lab: l, Backups: b}, Now: func() time.Time { return at.Add(time.Hour) }}, store, at
}

// putComplete records ls as a complete lab snapshot created and finished
// at at, replacing a lab snapshot of its name.
func putComplete(t *testing.T, st catalog.LabSnapshots, ls catalog.LabSnapshot, at time.Time) {
	t.Helper()
	if err := st.DeleteLabSnapshot(t.Context(), ls.Name); err != nil && !errors.Is(err, catalog.ErrNotFound) {
		t.Fatal(err)
	}
	ls.State, ls.Created = catalog.LabSnapshotCreating, at
	if err := st.CreateLabSnapshot(t.Context(), ls); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishLabSnapshot(t.Context(), ls.Name, catalog.LabSnapshotComplete, at, ""); err != nil {
		t.Fatal(err)
	}
}

// writer returns a func that writes a file of dir, failing t on error.
func writer(t *testing.T, dir string) func(name, text string) {
	return func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreFlipsTheRecordedColor: a lab snapshot records the color
// that serves a blue/green service (the deploy state, HAProxy agreeing);
// a restore plans and makes the flip back to it when it is the color kept
// for a fast rollback on the recorded version (deploy's fast rollback,
// against a real HAProxy), and otherwise says plainly it leaves the color
// that serves, and why.
func TestRestoreFlipsTheRecordedColor(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{})
	b := &backup.Manager{Lab: f.Lab, Catalog: f.Store}
	m := &Manager{Lab: f.Lab, Backups: b, Upgrader: &upgrade.Upgrader{Lab: f.Lab, Backups: b}, Deployer: f.D}
	ctx := t.Context()
	record := func(name string) {
		t.Helper()
		ls, err := m.capture(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ls.Name = name
		putComplete(t, f.Store, ls, time.Now())
	}

	record("blue-v1") // blue serves v1 (adopted from HAProxy)
	got, err := f.Store.LabSnapshot(ctx, "blue-v1")
	if err != nil {
		t.Fatal(err)
	}
	blue := catalog.ServingColor{Color: lab.Blue, Version: deploytest.V1}
	if want := map[string]catalog.ServingColor{"web": blue}; !maps.Equal(got.Colors, want) {
		t.Fatalf("recorded colors %v, want %v", got.Colors, want)
	}
	if _, err := f.Deploy(t, deploytest.V2, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	green := catalog.ServingColor{Color: lab.Green, Version: deploytest.V2}
	record("green-v2")

	p, err := m.PlanRestore(ctx, "blue-v1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []ColorPlan{{Service: "web", Recorded: blue, Serving: green, Flip: true}}; !slices.Equal(p.Colors, want) {
		t.Fatalf("plan colors %+v, want %+v", p.Colors, want)
	}
	rec, colors, err := m.Restore(ctx, p)
	if err != nil || rec.State != saga.Done {
		t.Fatalf("restore: %s, %v", rec.State, err)
	}
	if len(colors) != 1 || !colors[0].Flip || colors[0].Why != "" {
		t.Fatalf("restore colors %+v, want web flipped", colors)
	}
	f.AwaitPublic(t, deploytest.V1)
	if st, err := f.D.State(ctx, "web"); err != nil || st.Active != (deploy.Side{Color: lab.Blue, Version: deploytest.V1}) {
		t.Fatalf("after the restore: %+v, %v; want blue (1.0.0) serving, the catalog agreeing with HAProxy", st.Active, err)
	}
	if h := f.History(t); h[0].Kind != catalog.DeployRollback || h[0].Reason != "homelab snapshot restore blue-v1" {
		t.Errorf("newest deploy record %+v, want the restore's rollback", h[0])
	}

	// HAProxy's configuration disagreeing with the catalog refuses the
	// plan: the restore point could not record the serving color.
	cfg, err := os.ReadFile(f.Lab.Services["web"].Deploy.HAProxy.Config)
	if err != nil {
		t.Fatal(err)
	}
	writer(t, f.Dir)("haproxy.cfg", strings.Replace(string(cfg), "server blue", "server green", 1))
	if _, err := m.PlanRestore(ctx, "green-v2"); err == nil || !strings.Contains(err.Error(), "service web: its serving color") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("plan with HAProxy disagreeing: %v; want refused", err)
	}
	writer(t, f.Dir)("haproxy.cfg", string(cfg))

	// Green (kept, v2) is stopped: the restore of green-v2 cannot flip
	// back to it, and says so; blue keeps serving.
	if _, err := f.D.Cleanup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	p, err = m.PlanRestore(ctx, "green-v2")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Colors) != 1 || p.Colors[0].Flip || p.Colors[0].Serves() != blue || !strings.Contains(p.Colors[0].Why, "the recorded green (1.0.5) is not kept for a fast rollback (none is)") {
		t.Fatalf("plan colors %+v, want blue left serving: green not kept", p.Colors)
	}
	rec, colors, err = m.Restore(ctx, p)
	if err != nil || rec.State != saga.Done || len(colors) != 1 || colors[0].Flip {
		t.Fatalf("restore: %s, %+v, %v", rec.State, colors, err)
	}
	f.AwaitPublic(t, deploytest.V1)
}

// TestRestoreUndoSetsTheLiveVersion: the version a failed restore sets
// back is the one the service ran when the restore began, not the one
// its plan saw: a service upgraded between the plan and the run (while
// the operator confirmed) gets that upgrade's version back with the
// restore point's data, which that version wrote.
func TestRestoreUndoSetsTheLiveVersion(t *testing.T) {
	m, _, _ := newTestManager(t, `name: t
state_dir: state
services:
  app:
    runtime:
      exec: {start: "touch running", stop: "rm -f running", status: "test -f running", version: "cat version", set_version: "echo {{.Version}} > version"}
    health: {command: {run: 'test "$(cat version)" != 1.0.0'}}
    upgrade: {healthy_within: 2s}
`)
	dir := filepath.Dir(m.Lab.Path)
	write := writer(t, dir)
	write("running", "")
	write("version", "2.0.0\n")
	st, _ := m.store()
	// "before" was taken at 1.0.0, which (here) never becomes healthy.
	putComplete(t, st, catalog.LabSnapshot{Name: "before", Versions: map[string]string{"app": "1.0.0"}}, m.now().Add(-time.Hour))
	m.Upgrader.Poll = 50 * time.Millisecond
	p, err := m.PlanRestore(t.Context(), "before")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions) != 1 || p.Versions[0] != (VersionChange{Service: "app", From: "2.0.0", To: "1.0.0"}) {
		t.Fatalf("plan's versions %+v", p.Versions)
	}
	write("version", "3.0.0\n") // upgraded after the plan
	rec, _, err := m.Restore(t.Context(), p)
	if err == nil || rec.State != saga.Compensated {
		t.Fatalf("restore: %s, %v; want compensated after the health gate", rec.State, err)
	}
	if !p.Changed(rec) {
		t.Error("Changed: false for a restore that set a version")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "version")); string(b) != "3.0.0\n" {
		t.Errorf("after the undone restore app runs %q, want 3.0.0 (what it ran when the restore began)", b)
	}
}

// TestRestoreChanged: a restore changed the lab once a member's restore or
// the version step began, not when it failed stopping services or taking
// its restore point (the CLI then does not claim it restored the restore
// point).
func TestRestoreChanged(t *testing.T) {
	p := RestorePlan{Name: "before", PreRestore: "pre-restore-before-x", Members: []catalog.LabSnapshotMember{{Target: "files"}, {Target: "db"}}}
	fwd := func(names ...string) saga.Record {
		var r saga.Record
		for i, n := range names {
			r.Steps = append(r.Steps, catalog.SagaStep{Seq: i + 1, Name: n, Phase: catalog.PhaseForward})
		}
		return r
	}
	for _, tc := range []struct {
		rec  saga.Record
		want bool
	}{
		{fwd(stopStep), false},
		{fwd(stopStep, "restore point pre-restore-before-x"), false},
		{fwd(stopStep, "restore point pre-restore-before-x", "restore files"), true},
		{fwd(stopStep, "restore point pre-restore-before-x", "restore files", "restore db", setVersionsStep), true},
	} {
		if got := p.Changed(tc.rec); got != tc.want {
			t.Errorf("Changed(%v) = %v, want %v", tc.rec.Steps, got, tc.want)
		}
	}
	// A compensation row of a restore step alone is not a forward row.
	undo := saga.Record{Steps: []catalog.SagaStep{{Seq: 3, Name: "restore files", Phase: catalog.PhaseCompensate}}}
	if p.Changed(undo) {
		t.Error("Changed: true for compensation rows only")
	}
}

// TestDeleteCreatingNamesItsSaga: a lab snapshot still being created is
// not deleted, and the error names the command that finishes its saga: a
// restore's restore point is finished by snapshot restore --resume.
func TestDeleteCreatingNamesItsSaga(t *testing.T) {
	m, store, at := newTestManager(t, "name: t\nstate_dir: state\n")
	for _, tc := range []struct{ id, kind, name string }{
		{"20261123T100000Z-00000001", KindCreate, "b"},
		{"20261123T100000Z-00000002", KindRestore, "pre-restore-before-20261123T100000Z"},
	} {
		if err := store.CreateSaga(t.Context(), catalog.Saga{ID: tc.id, Kind: tc.kind, Subject: Subject,
			Plan: []string{"x"}, State: catalog.SagaRunning, Start: at}); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateLabSnapshot(t.Context(), catalog.LabSnapshot{Name: tc.name, State: catalog.LabSnapshotCreating, SagaID: tc.id, Created: at}); err != nil {
			t.Fatal(err)
		}
		want := "homelab " + tc.kind + " --resume " + tc.id
		if _, err := m.Delete(t.Context(), tc.name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("delete %s: %v; want refused, %q", tc.name, err, want)
		}
		if _, err := store.LabSnapshot(t.Context(), tc.name); err != nil {
			t.Errorf("%s deleted: %v", tc.name, err)
		}
	}
}

// TestUnfinishedRestoreBlocksUpgradeAndDeploy: a lab snapshot restore
// left unfinished (its health gate failed and putting the lab back failed
// too: it needs attention, its service locks released) refuses an upgrade
// and a deploy of the lab's services, naming itself and its --resume: a
// later --resume would put the old versions and data back over them.
// Once it is resumed they run.
func TestUnfinishedRestoreBlocksUpgradeAndDeploy(t *testing.T) {
	const color = `
          address: 127.0.0.1:%[1]d
          health: {http: {url: "http://127.0.0.1:%[1]d/"}}
          runtime: {exec: {start: "touch %[2]s.running", stop: "rm -f %[2]s.running", status: "test -f %[2]s.running", version: "cat %[2]s.version", set_version: "echo {{.Version}} > %[2]s.version"}}`
	m, store, at := newTestManager(t, `name: t
state_dir: state
services:
  app:
    runtime:
      exec: {start: "touch running", stop: "test ! -e fail-stop && rm -f running", status: "test -f running", version: "cat version", set_version: "echo {{.Version}} > version"}
    health: {command: {run: "test -e healthy"}}
    upgrade: {healthy_within: 1s}
  web:
    deploy:
      public_url: http://127.0.0.1:1/version
      healthy_within: 1s
      haproxy: {config: haproxy.cfg, backend: web, reload: {pid_file: haproxy.pid}}
      colors:
        blue:`+fmt.Sprintf(color, testenv.FreePort(t), "blue")+`
        green:`+fmt.Sprintf(color, testenv.FreePort(t), "green")+`
`)
	dir := filepath.Dir(m.Lab.Path)
	write := writer(t, dir)
	write("haproxy.cfg", "backend web\n    server blue 127.0.0.1:1\n")
	write("blue.version", "1.0.0\n")
	write("running", "")
	write("version", "2.0.0\n")
	m.Deployer = &deploy.Deployer{Lab: m.Lab, Catalog: store, Poll: 50 * time.Millisecond}
	m.Upgrader.Poll, m.Upgrader.Journal = 50*time.Millisecond, store
	ctx := t.Context()
	// "before" ran app 1.0.0; app cannot be stopped, and is not healthy
	// when started again.
	putComplete(t, store, catalog.LabSnapshot{Name: "before", Versions: map[string]string{"app": "1.0.0"}}, at)
	p, err := m.PlanRestore(ctx, "before")
	if err != nil {
		t.Fatal(err)
	}
	write("fail-stop", "")
	rec, _, err := m.Restore(ctx, p)
	if rec.State != saga.NeedsAttention {
		t.Fatalf("restore: %s, %v; want needs_attention", rec.State, err)
	}

	want := "finish it first with homelab snapshot restore --resume " + rec.ID
	up, err := m.Upgrader.Plan(ctx, "app", "3.0.0", upgrade.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Upgrader.Run(ctx, up); !errors.Is(err, saga.ErrUnfinished) || !strings.Contains(err.Error(), want) || got.ID != "" {
		t.Errorf("upgrade of app under the unfinished restore: saga %q, %v; want refused, %q", got.ID, err, want)
	}
	dp, err := m.Deployer.PlanDeploy(ctx, "web", "1.0.5", deploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Deployer.Run(ctx, dp); !errors.Is(err, saga.ErrUnfinished) || !strings.Contains(err.Error(), want) || got.ID != "" {
		t.Errorf("deploy of web under the unfinished restore: saga %q, %v; want refused, %q", got.ID, err, want)
	}

	// --resume puts the lab back; then they run (the upgrade to its end,
	// the deploy until its color's health gate, which nothing answers).
	write("healthy", "")
	if got, err := m.Resume(ctx, rec.ID); err != nil || got.State != saga.Compensated {
		t.Fatalf("resume: %s, %v", got.State, err)
	}
	if err := os.Remove(filepath.Join(dir, "fail-stop")); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Upgrader.Run(ctx, up); err != nil || got.State != saga.Done {
		t.Errorf("upgrade of app after the resume: %s, %v; want done", got.State, err)
	}
	if got, err := m.Deployer.Run(ctx, dp); errors.Is(err, saga.ErrUnfinished) || got.ID == "" {
		t.Errorf("deploy of web after the resume: saga %q, %v; want it run", got.ID, err)
	}
}
