package files_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
)

// state describes every entry under root (root itself as "."): type,
// permission bits and content or link target, one line each.
func state(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == root {
				lines = append(lines, ". missing")
				return filepath.SkipAll
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %q", b)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// leftovers lists what an in-place restore may leave beside the paths.
func leftovers(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		for _, pat := range []string{".homelab-restore-*", "*.homelab-old-*"} {
			m, _ := filepath.Glob(filepath.Join(d, pat))
			out = append(out, m...)
		}
	}
	return out
}

// inPlaceFixture writes a tree with modes, a symlink and an empty
// directory to <dir>/app, and a single file <dir>/etc/app.conf.
func inPlaceFixture(t *testing.T, dir string) (app, conf string) {
	t.Helper()
	app, conf = filepath.Join(dir, "app"), filepath.Join(dir, "etc", "app.conf")
	writeTree(t, app, map[string]string{"data/a.txt": "alpha\n", "data/b.bin": strings.Repeat("\x00\x01binary", 30000), "bin/run": "#!/bin/sh\necho hi\n", "secret.key": "k", "noise.log": "excluded"})
	writeTree(t, filepath.Dir(conf), map[string]string{"app.conf": "port = 80\n"})
	for name, mode := range map[string]os.FileMode{"bin/run": 0o755, "secret.key": 0o600, "data": 0o750, ".": 0o711} {
		if err := os.Chmod(filepath.Join(app, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("data/a.txt", filepath.Join(app, "current")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(app, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	return app, conf
}

// mutate changes, deletes, adds and re-moves entries of the fixture.
func mutate(t *testing.T, app, conf string) {
	t.Helper()
	writeTree(t, app, map[string]string{"data/a.txt": "ALPHA changed\n", "data/new.txt": "added since", "newdir/x": "added since"})
	for _, p := range []string{filepath.Join(app, "data/b.bin"), filepath.Join(app, "empty"), filepath.Join(app, "current"), conf} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("elsewhere", filepath.Join(app, "current")); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"bin/run": 0o644, ".": 0o755} {
		if err := os.Chmod(filepath.Join(app, name), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilesInPlaceRestoreIsTheSnapshotExactly(t *testing.T) {
	src := t.TempDir()
	app, conf := inPlaceFixture(t, src)
	e := newEnv(t, fmt.Sprintf(`  files:
    provider: restic
    repository: local
    source: {paths: [%s, %s], exclude: ["*.log"]}
`, app, conf))
	ctx := context.Background()
	e.MustBackup(t, "files")
	// What the snapshot holds: the tree without the excluded file.
	if err := os.Remove(filepath.Join(app, "noise.log")); err != nil {
		t.Fatal(err)
	}
	wantApp, wantConf := state(t, app), state(t, filepath.Dir(conf))
	writeTree(t, app, map[string]string{"noise.log": "excluded, not carried over"})
	mutate(t, app, conf)
	if state(t, app) == wantApp {
		t.Fatal("mutate changed nothing")
	}

	for _, bad := range []backup.Destination{{InPlace: true, Path: "/x"}, {InPlace: true, Database: "x"}, {InPlace: true, Replace: true}} {
		if _, err := e.M.PlanRestore(ctx, "files", "latest", bad); err == nil {
			t.Errorf("PlanRestore(%+v) accepted", bad)
		}
	}
	plan, err := e.M.PlanRestore(ctx, "files", "latest", backup.Destination{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(plan.Replaces, ",") != app+","+conf {
		t.Errorf("plan.Replaces = %v", plan.Replaces)
	}
	if _, err := e.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := state(t, app); got != wantApp {
		t.Errorf("app after in-place restore:\n%s\nwant:\n%s", got, wantApp)
	}
	if got := state(t, filepath.Dir(conf)); got != wantConf {
		t.Errorf("etc after in-place restore:\n%s\nwant:\n%s", got, wantConf)
	}
	if left := leftovers(t, src, filepath.Dir(conf)); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestFilesInPlaceRestoreOfAPathNotInTheSnapshotChangesNothing(t *testing.T) {
	src := t.TempDir()
	app, conf := inPlaceFixture(t, src)
	e := newEnv(t, fmt.Sprintf(`  files:
    provider: restic
    repository: local
    source: {paths: [%s]}
`, app))
	ctx := context.Background()
	e.MustBackup(t, "files")
	mutate(t, app, conf)
	writeTree(t, filepath.Dir(conf), map[string]string{"app.conf": "port = 81\n"})
	before := state(t, src)
	// The target now also lists a path the snapshot does not have.
	e.Lab.Backups["files"].Source.Paths = []string{app, conf}
	plan, err := e.M.PlanRestore(ctx, "files", "latest", backup.Destination{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.M.Restore(ctx, plan)
	if err == nil || !strings.Contains(err.Error(), "has no "+conf) {
		t.Fatalf("restore = %v, want an error naming %s", err, conf)
	}
	if got := state(t, src); got != before {
		t.Errorf("a failed in-place restore changed the data:\n%s\nwant:\n%s", got, before)
	}
	if left := leftovers(t, src, filepath.Dir(conf)); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
