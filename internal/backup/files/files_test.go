package files_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/restic"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilesRoundTripByteIdentical(t *testing.T) {
	// Its own temporary directory, so that the drills of other tests
	// running at the same time are not taken for this one's leftovers.
	t.Setenv("TMPDIR", t.TempDir())
	src := t.TempDir()
	tree := map[string]string{"a.txt": "alpha\n", "sub/b.bin": strings.Repeat("\x00\x01binary", 50000), "sub/deep/c": "c", "skip.log": "noise"}
	writeTree(t, src, tree)
	e := newEnv(t, fmt.Sprintf(`  files:
    provider: restic
    repository: local
    source: {paths: [%s], exclude: ["*.log"]}
    retention: {keep_last: 2}
    drill:
      checks:
        - path: %s/a.txt
          sha256: 5b4e0b1b7b2a3c3b2c16a0b1c6f0dd3f2d56a0eb35b0b1b1f9e4b67d3a1c3c0f
`, src, src))
	ctx := context.Background()
	rep := e.MustBackup(t, "files")
	if rep.Run.Result != catalog.ResultOK || rep.Run.SnapshotID == "" || rep.Run.Files != 3 {
		t.Fatalf("run = %+v", rep.Run)
	}
	plan, err := e.M.PlanRestore(ctx, "files", "latest", backup.Destination{Path: filepath.Join(e.Dir, "out")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	for name, body := range tree {
		got, err := os.ReadFile(filepath.Join(e.Dir, "out", src, name))
		if name == "skip.log" {
			if err == nil {
				t.Error("excluded file was restored")
			}
			continue
		}
		if err != nil || string(got) != body {
			t.Errorf("%s: restored content differs (%v)", name, err)
		}
	}
	// The drill's sha256 expectation above is deliberately wrong: the drill
	// restores and verifies, then fails on that check and says why.
	out := e.M.Verify(ctx, "files")
	if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed || !strings.Contains(out.Drill.Output, "sha256 is ") {
		t.Fatalf("drill = %+v, err %v", out.Drill, out.Err)
	}
	if out.Drill.RTO <= 0 {
		t.Error("RTO not measured")
	}
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "homelab-drill-files-*")); len(left) > 0 {
		t.Errorf("drill left its directory behind: %v", left)
	}
}

func TestFilesMissingSourcePathFails(t *testing.T) {
	e := newEnv(t, `  files:
    provider: restic
    repository: local
    source: {paths: [/nonexistent/homelab-test-path]}
`)
	rep := e.M.Backup(context.Background(), "files")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "do not exist") || rep.Run.Result != catalog.ResultFailed {
		t.Fatalf("rep = %+v", rep)
	}
}

// TestFilesSymlinkSourcePathFails: a source path that is a symbolic link
// (data on another disk, linked into place) fails the backup with what to
// list instead, rather than giving a snapshot of the link alone; an
// in-place restore refuses to replace such a link.
func TestFilesSymlinkSourcePathFails(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "disk", "app")
	writeTree(t, real, map[string]string{"data.txt": "the data"})
	link := filepath.Join(dir, "data")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fmt.Sprintf(`  files:
    provider: restic
    repository: local
    source: {paths: [%s]}
`, link))
	ctx := context.Background()
	rep := e.M.Backup(ctx, "files")
	want := "source path " + link + " is a symbolic link to " + real + ": restic would store the link, not the data; list " + real + " in source.paths instead"
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), want) || rep.Run.Result != catalog.ResultFailed || rep.Run.SnapshotID != "" {
		t.Fatalf("backup of a symlinked path: %+v", rep)
	}
	// A snapshot of the link itself (as restic takes it) is not restored
	// in place over the link.
	repo, err := e.M.Repo(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Backup(ctx, restic.BackupOptions{Paths: []string{link}, Tags: []string{"homelab", "target:files"}}, nil); err != nil {
		t.Fatal(err)
	}
	plan, err := e.M.PlanRestore(ctx, "files", "latest", backup.Destination{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.M.Restore(ctx, plan); err == nil || !strings.Contains(err.Error(), "cannot restore "+link+" in place: source path "+link+" is a symbolic link") {
		t.Fatalf("in-place restore over a link: %v", err)
	}
	if got, err := os.Readlink(link); err != nil || got != real {
		t.Errorf("the link is now %q, %v", got, err)
	}
}
