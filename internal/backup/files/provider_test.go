package files_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/backup/files"
	"homelab/internal/backup/providertest"
	"homelab/internal/lab"
)

// TestProvider runs the provider conformance suite.
func TestProvider(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		Kinds: []providertest.RepoKind{providertest.Local, providertest.S3},
		New: func(t *testing.T, _ string) (backup.Provider, providertest.Source) {
			src := newSource(t)
			return &files.Provider{TempDir: src.drills}, src
		},
	})
}

// source is a directory app (files of several modes, a symbolic link, an
// empty directory and a log the target excludes) and a single file
// etc/app.conf, both backed up.
type source struct {
	dir     string
	app     string
	conf    string
	drills  string // the provider's TempDir
	changes int
	digest  string // sha256 of app/a.txt, which Change leaves alone
}

func newSource(t *testing.T) *source {
	t.Helper()
	dir := t.TempDir()
	s := &source{dir: dir, app: filepath.Join(dir, "app"), conf: filepath.Join(dir, "etc", "app.conf"), drills: filepath.Join(dir, "drills")}
	noise := make([]byte, 64<<10)
	rand.Read(noise)
	writeFiles(t, map[string]string{
		filepath.Join(s.app, "a.txt"):         "alpha\n",
		filepath.Join(s.app, "data", "b.bin"): string(noise),
		filepath.Join(s.app, "bin", "run"):    "#!/bin/sh\necho hi\n",
		filepath.Join(s.app, "noise.log"):     "excluded",
		s.conf:                                "port = 80\n",
	})
	for name, mode := range map[string]os.FileMode{"bin/run": 0o755, "data": 0o750} {
		if err := os.Chmod(filepath.Join(s.app, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(s.app, "current")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(s.app, "empty"), s.drills} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte("alpha\n"))
	s.digest = hex.EncodeToString(sum[:])
	return s
}

// spec is the target of the suite's source: the one place these tests
// build a lab.Backup.
func (s *source) Spec() *lab.Backup {
	return &lab.Backup{
		Name:     "files",
		Provider: lab.ProviderRestic,
		Source:   lab.Source{Paths: []string{s.app, s.conf}, Exclude: []string{"*.log"}},
		Drill: lab.Drill{Checks: []lab.Check{
			{Path: filepath.Join(s.app, "a.txt"), SHA256: s.digest},
			{Path: s.conf},
		}},
	}
}

func (s *source) State(t *testing.T) string { return describe(t, "", s.app, s.conf, true) }

// Change rewrites, adds and removes files and changes a mode; a.txt stays.
func (s *source) Change(t *testing.T) {
	t.Helper()
	s.changes++
	n := s.changes
	writeFiles(t, map[string]string{
		filepath.Join(s.app, "data", "b.bin"):              fmt.Sprintf("version %d", n),
		filepath.Join(s.app, fmt.Sprintf("new/%d.txt", n)): "added",
		s.conf: fmt.Sprintf("port = %d\n", 80+n),
	})
	os.RemoveAll(filepath.Join(s.app, "empty"))
	mode := os.FileMode(0o700)
	if n%2 == 0 {
		mode = 0o755
	}
	if err := os.Chmod(filepath.Join(s.app, "bin", "run"), mode); err != nil {
		t.Fatal(err)
	}
}

func (s *source) Destination(t *testing.T) (backup.Destination, func(t *testing.T) string) {
	out := t.TempDir()
	return backup.Destination{Path: out}, func(t *testing.T) string { return describe(t, out, s.app, s.conf, false) }
}

func (s *source) Break(t *testing.T) {
	if err := os.RemoveAll(s.app); err != nil {
		t.Fatal(err)
	}
}

// Stall adds a file of a terabyte with no blocks: restic reads it (zeros)
// for far longer than a test runs; the backup is underway at restic's
// first status line.
func (s *source) Stall(t *testing.T) <-chan struct{} {
	f, err := os.Create(filepath.Join(s.app, "huge.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatalf("a sparse file of 1 TiB: %v", err)
	}
	return nil
}

func (s *source) FailingCheck() lab.Check {
	return lab.Check{Path: filepath.Join(s.app, "a.txt"), SHA256: strings.Repeat("0", 64)}
}

// Leftovers are drill directories and the staging directories and old
// copies of an in-place restore.
func (s *source) Leftovers(t *testing.T) []string {
	var left []string
	for _, pat := range []string{filepath.Join(s.drills, "*"), filepath.Join(s.dir, ".homelab-restore-*"), filepath.Join(s.dir, "*.homelab-old-*"),
		filepath.Join(s.dir, "etc", ".homelab-restore-*"), filepath.Join(s.dir, "etc", "*.homelab-old-*")} {
		m, _ := filepath.Glob(pat)
		left = append(left, m...)
	}
	return left
}

func (s *source) Secrets() []string { return nil }

// describe returns every entry of the given paths under root (type,
// permission bits, content or link target), one line each; without
// excluded, files named *.log are left out (the target excludes them).
func describe(t *testing.T, root, app, conf string, excludeLogs bool) string {
	t.Helper()
	var lines []string
	for _, p := range []string{app, conf} {
		err := filepath.WalkDir(filepath.Join(root, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if excludeLogs && strings.HasSuffix(d.Name(), ".log") {
				return nil
			}
			fi, err := os.Lstat(path)
			if err != nil {
				return err
			}
			line := fmt.Sprintf("%s %s", strings.TrimPrefix(path, root), fi.Mode())
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(path)
				if err != nil {
					return err
				}
				line += " -> " + target
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				line += fmt.Sprintf(" %d %x", len(b), sum[:8])
			}
			lines = append(lines, line)
			return nil
		})
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", p, err))
		}
	}
	return strings.Join(lines, "\n")
}

func writeFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
