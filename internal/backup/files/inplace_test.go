package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// tree describes every entry under root: path, mode and content.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s", p, fi.Mode())
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
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

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newRepo returns a client of a new restic repository, with the real
// restic.
func newRepo(t *testing.T) *restic.Client {
	t.Helper()
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	client, err := restic.New(context.Background(), restic.Config{Binary: bin, Repository: repo, PasswordFile: pass})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// A swap that fails midway puts back the paths already swapped: the data
// is as it was before the restore, and nothing is left beside it.
func TestInPlaceSwapFailureMidwayPutsBack(t *testing.T) {
	ctx := context.Background()
	client := newRepo(t)
	root := t.TempDir()
	paths := []string{filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "sub", "c")}
	for _, p := range paths {
		write(t, filepath.Join(p, "f"), "backed up "+p)
	}
	tg := backup.Target{Spec: &lab.Backup{Name: "t", Source: lab.Source{Paths: paths}}, Repo: client}
	snap, err := (&Provider{}).Backup(ctx, tg, "run1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		write(t, filepath.Join(p, "f"), "changed "+p)
		write(t, filepath.Join(p, "added"), "added since")
	}
	if err := os.RemoveAll(paths[1]); err != nil { // b is gone: restored fresh
		t.Fatal(err)
	}
	before := tree(t, root)

	c := paths[2]
	for _, tc := range []struct {
		name string
		fail func(from, to string) bool
	}{
		{"moving the last path aside", func(from, to string) bool { return from == c }},
		{"moving the last path in", func(from, to string) bool { return to == c && strings.Contains(from, stagingPrefix) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Provider{rename: func(from, to string) error {
				if tc.fail(from, to) {
					return &os.LinkError{Op: "rename", Old: from, New: to, Err: errors.New("injected failure")}
				}
				return os.Rename(from, to)
			}}
			err := p.Restore(ctx, tg, snap, backup.Destination{InPlace: true}, nil)
			if err == nil || !strings.Contains(err.Error(), "injected failure") || !strings.Contains(err.Error(), "swap restored "+c) {
				t.Fatalf("restore = %v", err)
			}
			if got := tree(t, root); got != before {
				t.Errorf("after a failed swap:\n%s\nwant:\n%s", got, before)
			}
		})
	}

	// Without the failure the same restore succeeds: the snapshot exactly.
	if err := (&Provider{}).Restore(ctx, tg, snap, backup.Destination{InPlace: true}, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		entries, _ := os.ReadDir(p)
		b, err := os.ReadFile(filepath.Join(p, "f"))
		if err != nil || string(b) != "backed up "+p || len(entries) != 1 {
			t.Errorf("%s after restore: %q, %v, %d entries", p, b, err, len(entries))
		}
	}
}

func TestOutermostAndIncludePattern(t *testing.T) {
	got := outermost([]string{"/srv/b", "/srv/a/x", "/srv/a", "/srv/a2", "/srv/b/", "/srv/a/x/y"})
	if want := "/srv/a /srv/a2 /srv/b"; strings.Join(got, " ") != want {
		t.Errorf("outermost = %v, want %s", got, want)
	}
	if got := includePattern(`/srv/a[1]/x*?\y`); got != `/srv/a\[1\]/x\*\?\\y` {
		t.Errorf("includePattern = %s", got)
	}
}

// A path whose name restic's include patterns would read as a pattern is
// restored as that path only.
func TestInPlacePatternCharacters(t *testing.T) {
	ctx := context.Background()
	client := newRepo(t)
	root := t.TempDir()
	odd, sibling := filepath.Join(root, "data[1]*"), filepath.Join(root, "data1x")
	write(t, filepath.Join(odd, "f"), "odd")
	write(t, filepath.Join(sibling, "f"), "sibling")
	tg := backup.Target{Spec: &lab.Backup{Name: "t", Source: lab.Source{Paths: []string{odd, sibling}}}, Repo: client}
	snap, err := (&Provider{}).Backup(ctx, tg, "run1", nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.Spec.Source.Paths = []string{odd}
	write(t, filepath.Join(odd, "f"), "changed")
	write(t, filepath.Join(sibling, "f"), "changed")
	if err := (&Provider{}).Restore(ctx, tg, snap, backup.Destination{InPlace: true}, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(odd, "f")); string(b) != "odd" {
		t.Errorf("odd path: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(sibling, "f")); string(b) != "changed" {
		t.Errorf("a path the include pattern should not match was restored: %q", b)
	}
}
