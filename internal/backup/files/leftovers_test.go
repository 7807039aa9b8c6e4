package files

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestRemoveDeadDrills: a drill directory whose homelab process is gone
// (a drill killed with its homelab) is removed by the next drill of the
// target; those of live processes, of another target whose name starts
// the same, and other files are left.
func TestRemoveDeadDrills(t *testing.T) {
	tmp := t.TempDir()
	const deadPID, livePID = 4000001, 4000002
	orig := processAlive
	processAlive = func(pid int) bool { return pid == livePID }
	defer func() { processAlive = orig }()
	mk := func(name string) {
		if err := os.MkdirAll(filepath.Join(tmp, name, "srv"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dead := drillDirPrefix("app") + strconv.Itoa(deadPID) + "-123456"
	live := drillDirPrefix("app") + strconv.Itoa(livePID) + "-654321"
	otherTarget := drillDirPrefix("app-x") + strconv.Itoa(deadPID) + "-111"
	oldStyle := drillDirPrefix("app") + "987654" // before pids: cannot tell, left alone
	for _, n := range []string{dead, live, otherTarget, oldStyle} {
		mk(n)
	}
	if left := removeDeadDrills(tmp, "app"); len(left) != 0 {
		t.Errorf("not removed: %v", left)
	}
	entries, _ := os.ReadDir(tmp)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{live, otherTarget, oldStyle}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("left %v, want %v", names, want)
	}
}
