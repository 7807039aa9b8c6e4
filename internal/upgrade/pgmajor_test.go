package upgrade

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/saga"
)

// pgPlanEnv is a lab with a PostgreSQL server db running major 15 (its
// version command says so; pg/15 holds PG_VERSION and 1 MiB of data).
func pgPlanEnv(t *testing.T) (*Upgrader, string) {
	t.Helper()
	dir := t.TempDir()
	doc := `name: plan
state_dir: ./state
repositories:
  local: {url: ./repo, password_env: NOPE}
services:
  db:
    runtime: {exec: {start: "true", stop: "true", status: "true", version: "echo x", set_version: "true {{.Version}}"}}
    postgres:
      data_dir: "pg/{{.Major}}"
      bin_dirs: {15: /opt/pg/15/bin, 17: /opt/pg/17/bin}
      dependents: [app]
      mode: copy
    upgrade: {backup_before: [db-dump]}
  app:
    runtime: {exec: {start: "true", stop: "true", status: "true"}}
backups:
  db-dump: {provider: postgres, repository: local, source: {database: shop}}
`
	path := filepath.Join(dir, "lab.yaml")
	must(t, os.WriteFile(path, []byte(doc), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "pg", "15"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "pg", "15", "PG_VERSION"), []byte("15\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "pg", "15", "base"), make([]byte, 1<<20), 0o600))
	l, err := lab.Load(path)
	must(t, err)
	store, err := catalog.Open(t.Context(), filepath.Join(l.StateDir, "catalog.db"))
	must(t, err)
	t.Cleanup(func() { store.Close() })
	return &Upgrader{
		Lab: l, Backups: &backup.Manager{Lab: l, Catalog: store}, Journal: store,
		Runtime: func(s *lab.Service) (runtime.Runtime, error) {
			rt, err := runtime.New(s, runtime.Options{})
			return &fakeVersioner{Runtime: rt, version: "15"}, err
		},
		FreeSpace: func(string) (int64, error) { return 1 << 40, nil },
	}, dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPlanPGMajor: a new major is pg_upgrade's walk, straight to it, with
// the mode and the space of a copy; refusals are plan errors.
func TestPlanPGMajor(t *testing.T) {
	u, dir := pgPlanEnv(t)
	ctx := t.Context()
	p, err := u.Plan(ctx, "db", "17", PlanOptions{})
	must(t, err)
	pg := p.Postgres
	if pg == nil {
		t.Fatal("no PostgreSQL plan")
	}
	if pg.Old.Data != filepath.Join(dir, "pg", "15") || pg.New.Data != filepath.Join(dir, "pg", "17") || pg.New.Bin != "/opt/pg/17/bin" {
		t.Fatalf("clusters %+v %+v", pg.Old, pg.New)
	}
	if pg.Mode != "copy" || pg.Space < 1<<20 || pg.Space > 2<<20 || pg.Port != lab.DefaultPGUpgradePort {
		t.Fatalf("mode %s, space %d, port %d", pg.Mode, pg.Space, pg.Port)
	}
	if strings.Join(p.Path, ",") != "17" || strings.Join(pg.Dependents, ",") != "app" {
		t.Fatalf("path %v, dependents %v", p.Path, pg.Dependents)
	}
	names := stepNames(t, u, p)
	want := "preflight for PostgreSQL 17,restore point before 17,stop dependents,stop PostgreSQL 15,pg_upgrade to 17,start PostgreSQL 17,start dependents on 17,analyze 17"
	if strings.Join(names, ",") != want {
		t.Fatalf("steps %s", strings.Join(names, ","))
	}

	var pe *PlanError
	if _, err := u.Plan(ctx, "db", "16", PlanOptions{}); !errors.As(err, &pe) || !strings.Contains(err.Error(), "no entry for PostgreSQL 16") {
		t.Errorf("to 16: %v", err)
	}
	if _, err := u.Plan(ctx, "db", "14", PlanOptions{AllowDowngrade: true}); !errors.As(err, &pe) || !strings.Contains(err.Error(), "cannot go down a major") {
		t.Errorf("to 14: %v", err)
	}
	if p, err := u.Plan(ctx, "db", "15.9", PlanOptions{}); err != nil || p.Postgres != nil {
		t.Errorf("a minor version: %v, %+v", err, p.Postgres)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "pg", "17"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "pg", "17", "PG_VERSION"), []byte("17\n"), 0o600))
	if _, err := u.Plan(ctx, "db", "17", PlanOptions{}); !errors.As(err, &pe) || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("new data directory in use: %v", err)
	}
}

// TestPGLinkRestorePointAfterDependents: in link mode a rollback after
// the new major started is the restore point, so it is taken once the
// dependents are stopped (else what they wrote between the two is lost).
func TestPGLinkRestorePointAfterDependents(t *testing.T) {
	u, _ := pgPlanEnv(t)
	p, err := u.Plan(t.Context(), "db", "17", PlanOptions{})
	must(t, err)
	p.Postgres.Mode = "link"
	names := stepNames(t, u, p)
	want := "preflight for PostgreSQL 17,stop dependents,restore point before 17,stop PostgreSQL 15,pg_upgrade to 17,start PostgreSQL 17,start dependents on 17,analyze 17"
	if strings.Join(names, ",") != want {
		t.Fatalf("link-mode steps %s", strings.Join(names, ","))
	}
}

// TestPGSwitchJournalsStartBeforeSetVersion: a set_version command may
// start the new major itself (apt-get does) and then fail; the journal
// must say the new major may have started, so that a link-mode rollback
// rebuilds the old cluster instead of starting it on files PostgreSQL 17
// wrote.
func TestPGSwitchJournalsStartBeforeSetVersion(t *testing.T) {
	u, dir := pgPlanEnv(t)
	ctx := t.Context()
	p, err := u.Plan(ctx, "db", "17", PlanOptions{})
	must(t, err)
	// PostgreSQL 17's postgres --describe-config, for the carry-over.
	bin := filepath.Join(dir, "bin17")
	must(t, os.Mkdir(bin, 0o755))
	must(t, os.WriteFile(filepath.Join(bin, "postgres"), []byte("#!/bin/sh\nexit 0\n"), 0o755))
	p.Postgres.New.Bin = bin
	must(t, os.MkdirAll(p.Postgres.New.Data, 0o700))
	steps, err := u.steps(p)
	must(t, err)
	var sw saga.Step
	for _, s := range steps {
		if s.Name == pgSwitchStep("17") {
			sw = saga.Step{Name: s.Name, Do: s.Do}
		}
	}
	r := &saga.Runner{Journal: u.Journal, StateDir: u.Lab.StateDir}
	rec, err := r.Run(ctx, saga.Saga{Kind: "test", Subject: "db", Steps: []saga.Step{sw}})
	if err == nil || !strings.Contains(err.Error(), "not in a plan") {
		t.Fatalf("switch with a failing set_version: %v", err)
	}
	for _, st := range rec.Steps {
		if st.Name == sw.Name && st.Data[pgStartedKey] == "true" {
			return
		}
	}
	t.Fatalf("a set_version that failed left no %q in the journal: %+v", pgStartedKey, rec.Steps)
}

// TestPGFinalizeNeedsServingNewMajor: --finalize deletes the old cluster
// only while the service runs, healthy, from the new major's cluster.
func TestPGFinalizeNeedsServingNewMajor(t *testing.T) {
	u, dir := pgPlanEnv(t)
	u.Runtime = func(s *lab.Service) (runtime.Runtime, error) {
		rt, err := runtime.New(s, runtime.Options{})
		return &fakeVersioner{Runtime: rt, version: "17"}, err
	}
	ctx := t.Context()
	pg17 := filepath.Join(dir, "pg", "17")
	must(t, os.MkdirAll(pg17, 0o700))
	must(t, os.WriteFile(filepath.Join(pg17, "PG_VERSION"), []byte("17\n"), 0o600))
	if _, err := u.Finalize(ctx, "db"); err == nil || !strings.Contains(err.Error(), "is not running in "+pg17) {
		t.Fatalf("finalize with PostgreSQL 17 stopped: %v", err)
	}
	if !exists(filepath.Join(dir, "pg", "15", "PG_VERSION")) {
		t.Fatal("the old cluster was deleted while PostgreSQL 17 was not running")
	}
	// A live postmaster (this process) in the new cluster.
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n" + pg17 + "\n0\n5432\n/tmp\n")
	must(t, os.WriteFile(filepath.Join(pg17, "postmaster.pid"), pid, 0o600))
	old, err := u.Finalize(ctx, "db")
	must(t, err)
	if len(old) != 1 || old[0].Major != "15" || exists(filepath.Join(dir, "pg", "15")) {
		t.Fatalf("finalize removed %+v", old)
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// stepNames are the names of the steps of p's saga.
func stepNames(t *testing.T, u *Upgrader, p Plan) []string {
	t.Helper()
	steps, err := u.steps(p)
	must(t, err)
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	return names
}
