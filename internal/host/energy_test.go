package host

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeRAPL writes a powercap tree: two packages with sub-zones (which
// must not count) and a zone of another driver.
func fakeRAPL(t *testing.T, dir string, pkg0, pkg1 uint64) {
	t.Helper()
	zone := func(name, label string, uj, max uint64) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for file, v := range map[string]string{"name": label, "energy_uj": strconv.FormatUint(uj, 10), "max_energy_range_uj": strconv.FormatUint(max, 10)} {
			if err := os.WriteFile(filepath.Join(d, file), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	const max = 262143328850
	zone("intel-rapl:0", "package-0", pkg0, max)
	zone("intel-rapl:0:0", "core", pkg0/2, max)
	zone("intel-rapl:1", "package-1", pkg1, max)
	zone("intel-rapl-mmio:0", "package-0", 5, max)
}

// TestRAPLWrap: package-0 wraps between the readings, package-1 does not;
// the joules are the hand-computed sum.
func TestRAPLWrap(t *testing.T) {
	dir := t.TempDir()
	const max = 262143328850
	fakeRAPL(t, dir, max-1_000_000, 10_000_000) // 1 J before the wrap
	prev, err := RAPL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(prev) != 2 || prev[0].Name != "package-0" || prev[1].Dir != "intel-rapl:1" || prev[0].MaxUJ != max {
		t.Fatalf("zones %+v", prev)
	}
	fakeRAPL(t, dir, 4_000_000, 35_000_000) // package-0: 1 J + 4 J; package-1: 25 J
	cur, err := RAPL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if j := RAPLJoules(prev, cur); math.Abs(j-30) > 1e-9 {
		t.Errorf("joules %v, want 1+4+25 = 30", j)
	}
	if _, err := RAPL(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no intel-rapl zone") {
		t.Errorf("empty powercap: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "intel-rapl:1", "energy_uj"), []byte("x\n"), 0o644)
	if _, err := RAPL(dir); err == nil || !strings.Contains(err.Error(), "intel-rapl:1/energy_uj") {
		t.Errorf("bad counter: %v", err)
	}
}

func TestCPUAndModel(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// user nice system idle iowait irq softirq steal guest guest_nice
	write("cpu  100 0 50 800 50 0 0 0 30 0\ncpu0 1 2 3 4\n")
	a, err := ReadCPU(dir)
	if err != nil || a.Busy != 150 || a.Total != 1000 {
		t.Fatalf("%+v %v", a, err)
	}
	write("cpu  400 0 50 1300 50 0 0 0 30 0\n")
	b, _ := ReadCPU(dir)
	if s := BusyShare(a, b); s != 0.375 { // 300 busy of 800
		t.Errorf("busy share %v, want 0.375", s)
	}
	if j := ModelJoules(18, 45, 0.375, 600); j != (18+27*0.375)*600 {
		t.Errorf("model joules %v", j)
	}
	if _, err := ReadCPU("/proc"); err != nil {
		t.Errorf("live /proc/stat: %v", err)
	}
}
