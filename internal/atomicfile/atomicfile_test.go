package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "sub", "k.key")
	if err := Write(f, []byte("one"), 0o600, 0o770); err != nil {
		t.Fatal(err)
	}
	if perm(t, f) != 0o600 || string(read(t, f)) != "one" {
		t.Fatalf("mode %v", perm(t, f))
	}
	// An existing file keeps its mode, without "other" bits for keys.
	os.Chmod(f, 0o644)
	if err := Write(f, []byte("two"), 0o600, 0o770); err != nil {
		t.Fatal(err)
	}
	if perm(t, f) != 0o640 || string(read(t, f)) != "two" {
		t.Errorf("mode %v", perm(t, f))
	}
	if os.Geteuid() == 0 {
		os.Chown(f, 4242, 4243)
		Write(f, []byte("three"), 0o600, 0o770)
		fi, _ := os.Stat(f)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4242 || st.Gid != 4243 {
			t.Errorf("owner %d:%d, want 4242:4243", st.Uid, st.Gid)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(f))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// A failed rename (the target is a directory) leaves the target as it was
// and no temporary file behind.
func TestWriteFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "conf")
	if err := os.MkdirAll(filepath.Join(target, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Write(target, []byte("x"), 0o644, 0o777)
	if err == nil {
		t.Fatal("write over a non-empty directory succeeded")
	}
	if !strings.Contains(err.Error(), target) {
		t.Errorf("error %q does not name %s", err, target)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "conf" || !entries[0].IsDir() {
		t.Errorf("left behind: %v", entries)
	}
}
