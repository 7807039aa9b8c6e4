package upgrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/runtime"
	"homelab/internal/version"
)

func TestPickVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3":                  "1.2.3",
		"  16.7.10-ce.0\n":       "16.7.10-ce.0",
		"app 1.2.3 (build 7)":    "1.2.3",
		"gitlab-ce 17.0.0-ce.0,": "17.0.0-ce.0",
		"v2.0.0-rc1":             "v2.0.0-rc1",
	} {
		v, err := pickVersion(in)
		if err != nil || v.String() != want {
			t.Errorf("pickVersion(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for _, in := range []string{"", "no version here", "latest"} {
		if v, err := pickVersion(in); err == nil {
			t.Errorf("pickVersion(%q) = %v; want an error", in, v)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for url, want := range map[string]string{"/srv/repo": "/srv/repo", "local:/srv/repo": "/srv/repo", "s3:host/bucket": "", "sftp:u@h:/r": "", "rest:http://h/": ""} {
		got, ok := localPath(url)
		if got != want || ok != (want != "") {
			t.Errorf("localPath(%q) = %q, %v", url, got, ok)
		}
	}
}

// fakeVersioner is a runtime whose version is a variable: Plan only reads it.
type fakeVersioner struct {
	runtime.Runtime
	version string
}

func (f *fakeVersioner) Version(context.Context) (string, error)  { return f.version, nil }
func (f *fakeVersioner) SetVersion(context.Context, string) error { return errors.New("not in a plan") }

// planEnv is a lab with a GitLab service (preset) and its catalog.
func planEnv(t *testing.T, running string) *Upgrader {
	t.Helper()
	dir := t.TempDir()
	doc := `name: plan
state_dir: ./state
repositories:
  local: {url: ./repo, password_env: NOPE}
services:
  gitlab:
    runtime: {exec: {start: "true", stop: "true", status: "true", version: "echo x", set_version: "true {{.Version}}"}}
    upgrade:
      preset: gitlab
      required_stops: [17.11.9-ce.0]
      backup_before: [gitlab-db, gitlab-config]
      healthy_within: 20m
backups:
  gitlab-db: {provider: postgres, repository: local, source: {database: gitlab}}
  gitlab-config: {provider: restic, repository: local, source: {paths: [./etc]}}
`
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := catalog.Open(t.Context(), filepath.Join(l.StateDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &Upgrader{
		Lab: l, Backups: &backup.Manager{Lab: l, Catalog: store}, Journal: store,
		Runtime: func(s *lab.Service) (runtime.Runtime, error) {
			rt, err := runtime.New(s, runtime.Options{})
			return &fakeVersioner{Runtime: rt, version: running}, err
		},
	}
}

// TestPlanGitLab: the path through the GitLab preset's required stops and
// the lab's pin, and an estimate from the catalog's past backups.
func TestPlanGitLab(t *testing.T) {
	u := planEnv(t, "gitlab-ce 16.3.9-ce.0")
	ctx := t.Context()
	start := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i, d := range []time.Duration{40 * time.Second, 60 * time.Second} {
		r, err := u.Backups.Catalog.StartRun(ctx, catalog.Run{Target: "gitlab-db", Kind: catalog.KindBackup, Start: start.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		r.End, r.Result = r.Start.Add(d), catalog.ResultOK
		if err := u.Backups.Catalog.FinishRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	p, err := u.Plan(ctx, "gitlab", "17.0.0-ce.0", PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"16.7.10-ce.0", "16.11.10-ce.0", "17.0.0-ce.0"}; !slices.Equal(p.Path, want) {
		t.Errorf("path %v, want %v", p.Path, want)
	}
	if p.From != "16.3.9-ce.0" || p.To != "17.0.0-ce.0" || p.HealthyWithin != 20*time.Minute || p.AfterRollback != "running" {
		t.Errorf("plan %+v", p)
	}
	if e := p.Estimate; e.Backups != 50*time.Second || e.Total != 150*time.Second || !slices.Equal(e.Unknown, []string{"gitlab-config"}) {
		t.Errorf("estimate %+v, want 50s per restore point, 150s in all, gitlab-config unknown", e)
	}

	// Downgrades are refused unless allowed; the same version is nothing to do.
	if _, err := u.Plan(ctx, "gitlab", "16.1.0-ce.0", PlanOptions{}); !errors.Is(err, version.ErrDowngrade) {
		t.Errorf("downgrade: %v", err)
	}
	if p, err := u.Plan(ctx, "gitlab", "16.1.0-ce.0", PlanOptions{AllowDowngrade: true}); err != nil || !p.Downgrade || !slices.Equal(p.Path, []string{"16.1.0-ce.0"}) {
		t.Errorf("allowed downgrade: %+v, %v", p, err)
	}
	if _, err := u.Plan(ctx, "gitlab", "16.3.9-ce.0", PlanOptions{}); !errors.Is(err, version.ErrAlreadyAt) {
		t.Errorf("same version: %v", err)
	}
	if _, err := u.Plan(ctx, "gitlab", "17.0.0-ee.0", PlanOptions{}); !errors.Is(err, version.ErrEditionMismatch) {
		t.Errorf("other edition: %v", err)
	}
	if _, err := u.Plan(ctx, "nope", "1.0.0", PlanOptions{}); err == nil {
		t.Error("unknown service: no error")
	}
}

// TestCheckSpace: a restore point fails closed when the local repository
// has less free space than the target's last backup added.
func TestCheckSpace(t *testing.T) {
	u := planEnv(t, "16.3.9-ce.0")
	ctx := t.Context()
	var asked string
	free := int64(0)
	u.FreeSpace = func(path string) (int64, error) { asked = path; return free, nil }
	// No backup yet: nothing to compare with.
	if w, err := u.checkSpace(ctx, "gitlab-db"); err != nil || w != "" {
		t.Fatalf("no past backup: %q, %v", w, err)
	}
	r, err := u.Backups.Catalog.StartRun(ctx, catalog.Run{Target: "gitlab-db", Kind: catalog.KindBackup, Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	r.End, r.Result, r.BytesAdded = time.Now(), catalog.ResultOK, 3<<20
	if err := u.Backups.Catalog.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	free = 3<<20 - 1
	_, err = u.checkSpace(ctx, "gitlab-db")
	if err == nil || !strings.Contains(err.Error(), "has 3.0 MiB free, less than the 3.0 MiB its last backup added") {
		t.Fatalf("too little space: %v", err)
	}
	// The repository does not exist yet: its nearest parent is measured.
	if want := filepath.Dir(u.Lab.Repositories["local"].URL); asked != want {
		t.Errorf("measured %s, want %s", asked, want)
	}
	free = 3 << 20
	if w, err := u.checkSpace(ctx, "gitlab-db"); err != nil || w != "" {
		t.Fatalf("enough space: %q, %v", w, err)
	}
	// A remote repository is not measured, and that is said, also in the
	// plan.
	u.Lab.Repositories["local"].URL = "s3:s3.example.org/bucket"
	free, asked = 0, ""
	w, err := u.checkSpace(ctx, "gitlab-db")
	want := "restore point gitlab-db: repository local (s3:s3.example.org/bucket) is remote: its free space cannot be measured; make sure it has room for the restore point (the last backup of gitlab-db added 3.0 MiB)"
	if err != nil || w != want || asked != "" {
		t.Fatalf("remote repository: %q, %v (measured %q)\nwant %q", w, err, asked, want)
	}
	p, err := u.Plan(ctx, "gitlab", "16.7.10-ce.0", PlanOptions{})
	wantPlan := []string{want, "restore point gitlab-config: repository local (s3:s3.example.org/bucket) is remote: its free space cannot be measured; make sure it has room for the restore point"}
	if err != nil || !slices.Equal(p.Warnings, wantPlan) {
		t.Errorf("plan warnings = %q, %v; want %q", p.Warnings, err, wantPlan)
	}
	// An s3-mirror target's destination is a bucket: not measured
	// either, and that is said too.
	db := u.Lab.Backups["gitlab-db"]
	db.Provider, db.Repository = lab.ProviderS3Mirror, ""
	db.Source.Bucket = "uploads"
	db.Destination = lab.S3Location{Endpoint: "http://127.0.0.1:9000", Bucket: "backups"}
	w, err = u.checkSpace(ctx, "gitlab-db")
	want = "restore point gitlab-db: its destination bucket backups on http://127.0.0.1:9000 is remote: its free space cannot be measured; make sure it has room for a copy of bucket uploads"
	if err != nil || w != want || asked != "" {
		t.Fatalf("s3-mirror target: %q, %v (measured %q)\nwant %q", w, err, asked, want)
	}
}

// preflighter is a postgres provider (for Plan and the restore point) that
// finds what findings holds; it backs up nothing.
type preflighter struct {
	backup.Provider
	findings []backup.Finding
	needs    []backup.Need
}

func (p *preflighter) Preflight(_ context.Context, t backup.Target, need backup.Need) ([]backup.Finding, error) {
	p.needs = append(p.needs, need)
	return p.findings, nil
}

// A restore point the rollback could not restore: Plan lists the finding,
// Run refuses the plan before a saga begins, and a finding that appears
// after the plan fails the first restore point before the service is
// stopped or anything backed up.
func TestPreflightRefuses(t *testing.T) {
	u := planEnv(t, "gitlab-ce 16.3.9-ce.0")
	ctx := t.Context()
	finding := backup.Finding{Target: "gitlab-db", Role: "gitlab", Needs: "CREATEDB (or superuser)", For: "to create the staging database gitlab_homelab_restore_* and rename it into place"}
	pf := &preflighter{findings: []backup.Finding{finding}}
	u.Backups.Providers = map[string]backup.Provider{lab.ProviderPostgres: pf}
	u.Backups.Repo = func(context.Context, string) (*restic.Client, error) { return nil, nil }
	p, err := u.Plan(ctx, "gitlab", "16.7.10-ce.0", PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Preflight, []backup.Finding{finding}) {
		t.Fatalf("plan preflight = %v", p.Preflight)
	}
	if len(pf.needs) != 1 || pf.needs[0].Drill || pf.needs[0].Restore == nil || !pf.needs[0].Restore.InPlace {
		t.Fatalf("preflight asked for %+v, want an in-place restore", pf.needs)
	}
	_, err = u.Run(ctx, p)
	var pe *PreflightError
	want := "upgrade of gitlab refused before anything changed: a rollback could not restore its data: target gitlab-db: role gitlab needs CREATEDB (or superuser) to create the staging database gitlab_homelab_restore_* and rename it into place"
	if !errors.As(err, &pe) || err.Error() != want {
		t.Fatalf("Run: %v, want %q", err, want)
	}
	sagas, err := u.Journal.Sagas(ctx, catalog.SagaFilter{Kind: Kind})
	if err != nil || len(sagas) != 0 {
		t.Fatalf("sagas after a refused plan: %v, %v", sagas, err)
	}

	// Found only after the plan (a role changed): the first restore
	// point fails at it, nothing was backed up.
	p.Preflight = nil
	_, err = u.Run(ctx, p)
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "role gitlab needs CREATEDB") {
		t.Fatalf("Run with a finding after the plan: %v", err)
	}
	runs, err := u.Backups.Catalog.Runs(ctx, catalog.RunFilter{Kind: catalog.KindBackup})
	if err != nil || len(runs) != 0 {
		t.Fatalf("backups after a refused restore point: %v, %v", runs, err)
	}
}
