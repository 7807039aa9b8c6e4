// Package backuptest builds, for the tests of internal/backup and its
// providers, a lab on disk with a fresh restic repository ("local", real
// restic) and a fresh catalog, and a backup.Manager over them.
package backuptest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// Env is a lab on disk with a fresh repository and catalog.
type Env struct {
	Dir   string
	Lab   *lab.Lab
	Store *catalog.SQLite
	M     *backup.Manager
}

// New writes dir/lab.yaml, with a services section (servicesYAML, may be
// empty) and the backups given as YAML under "backups:", next to a fresh
// restic repository "local", and returns a Manager over it with providers.
// The catalog is closed when the test ends.
func New(t *testing.T, dir string, providers map[string]backup.Provider, servicesYAML, backupsYAML string) *Env {
	t.Helper()
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	doc := fmt.Sprintf("name: test\nstate_dir: %s\nrepositories:\n  local:\n    url: %s\n    password_file: %s\nservices:\n%sbackups:\n%s",
		filepath.Join(dir, "state"), repo, pass, servicesYAML, backupsYAML)
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
		Lab: l, Catalog: store, Providers: providers,
		Repo: func(ctx context.Context, name string) (*restic.Client, error) {
			r := l.Repositories[name]
			return restic.New(ctx, restic.Config{Binary: bin, Repository: r.URL, PasswordFile: r.PasswordFile})
		},
	}
	return &Env{Dir: dir, Lab: l, Store: store, M: m}
}

// MustBackup backs up target and fails the test if the backup fails.
func (e *Env) MustBackup(t *testing.T, target string) backup.RunReport {
	t.Helper()
	rep := e.M.Backup(context.Background(), target)
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	return rep
}

// Runs returns target's backup runs, newest first.
func (e *Env) Runs(t *testing.T, target string) []catalog.Run {
	t.Helper()
	runs, err := e.Store.Runs(context.Background(), catalog.RunFilter{Target: target, Kind: catalog.KindBackup})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// RunCommands runs hand-restore commands (backup.HandRestorer's, comment
// lines skipped) with sh -c and set -e, in an environment of PATH and env
// only, failing the test on the first that fails; it returns their
// combined output.
func RunCommands(t *testing.T, cmds []string, env ...string) string {
	t.Helper()
	var out strings.Builder
	for _, c := range cmds {
		if strings.HasPrefix(c, "# ") {
			continue
		}
		cmd := exec.Command("sh", "-c", "set -e; "+c)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		b, err := cmd.CombinedOutput()
		out.Write(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, b)
		}
	}
	return out.String()
}
