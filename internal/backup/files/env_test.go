package files_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/backup/files"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// env is a lab on disk with a fresh repository and catalog, for the tests
// of this provider beyond the conformance suite (provider_test.go).
type env struct {
	dir   string
	lab   *lab.Lab
	store *catalog.SQLite
	m     *backup.Manager
}

// mustBackup backs up target and fails the test if the backup fails.
func (e *env) mustBackup(t *testing.T, target string) backup.RunReport {
	t.Helper()
	rep := e.m.Backup(context.Background(), target)
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	return rep
}

// newEnv writes lab.yaml (backups given as YAML under "backups:") next to a
// fresh restic repository, "local", and returns a Manager over it with
// this provider as restic.
func newEnv(t *testing.T, backupsYAML string) *env {
	t.Helper()
	dir := t.TempDir()
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	doc := fmt.Sprintf("name: test\nstate_dir: %s\nrepositories:\n  local:\n    url: %s\n    password_file: %s\nbackups:\n%s", filepath.Join(dir, "state"), repo, pass, backupsYAML)
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatalf("lab: %v\n%s", err, doc)
	}
	store, err := catalog.Open(context.Background(), filepath.Join(l.StateDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m := &backup.Manager{
		Lab: l, Catalog: store,
		Providers: map[string]backup.Provider{"restic": &files.Provider{}},
		Repo: func(ctx context.Context, name string) (*restic.Client, error) {
			r := l.Repositories[name]
			return restic.New(ctx, restic.Config{Binary: bin, Repository: r.URL, PasswordFile: r.PasswordFile})
		},
	}
	return &env{dir: dir, lab: l, store: store, m: m}
}
