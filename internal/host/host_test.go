package host

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"homelab/internal/testenv"
)

// run returns the output of a command of procps or coreutils; a missing
// command skips the test, or fails it under CI=true (testenv.Missing).
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testenv.Missing(t, "%s not installed", name)
	}
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestProcAgreesWithTools compares Proc("/proc") with free, uptime and
// nproc, read right after it. Memory moves between the two reads, so it
// agrees within 5% of the total.
func TestProcAgreesWithTools(t *testing.T) {
	in, err := Proc("/proc")
	if err != nil {
		t.Fatal(err)
	}
	free := strings.Fields(strings.Split(run(t, "free", "-b"), "\n")[1]) // Mem: total used free shared buff/cache available
	total, _ := strconv.ParseFloat(free[1], 64)
	avail, _ := strconv.ParseFloat(free[6], 64)
	if float64(in.MemTotal) != total {
		t.Errorf("MemTotal %d, free says %.0f", in.MemTotal, total)
	}
	if !near(float64(in.MemAvailable), avail, total/20) || in.MemUsed != in.MemTotal-in.MemAvailable {
		t.Errorf("MemAvailable %d MemUsed %d, free says available %.0f of %.0f", in.MemAvailable, in.MemUsed, avail, total)
	}
	boot, err := time.ParseInLocation("2006-01-02 15:04:05", strings.TrimSpace(run(t, "uptime", "-s")), time.Local)
	if err != nil {
		t.Fatal(err)
	}
	// uptime -s prints whole seconds, and a few pass between the reads.
	if got := time.Now().Add(-in.Uptime); !near(got.Sub(boot).Seconds(), 0, 5) {
		t.Errorf("booted at %s by Proc, %s by uptime -s", got, boot)
	}
	cpus, _ := strconv.Atoi(strings.TrimSpace(run(t, "nproc", "--all")))
	if in.CPUs < 1 || in.CPUs > cpus {
		t.Errorf("CPUs %d, nproc --all says %d", in.CPUs, cpus)
	}
	la := strings.Fields(mustRead(t, "/proc/loadavg"))
	if l, _ := strconv.ParseFloat(la[2], 64); !near(in.Load15, l, 1) {
		t.Errorf("Load15 %v, /proc/loadavg says %v", in.Load15, l)
	}
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProcErrors: a missing or malformed file is named.
func TestProcErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Proc(dir); err == nil || !strings.Contains(err.Error(), "uptime") {
		t.Errorf("no uptime: %v", err)
	}
	write("uptime", "12.5 3.0\n")
	write("loadavg", "0.5 0.25 x 1/2 3\n")
	if _, err := Proc(dir); err == nil || !strings.Contains(err.Error(), "loadavg") {
		t.Errorf("bad loadavg: %v", err)
	}
	write("loadavg", "0.5 0.25 0.125 1/2 3\n")
	write("meminfo", "MemTotal: 1000 kB\nMemFree: 10 kB\n")
	if _, err := Proc(dir); err == nil || !strings.Contains(err.Error(), "MemAvailable missing") {
		t.Errorf("no MemAvailable: %v", err)
	}
	write("meminfo", "MemTotal: 1000 kB\nMemAvailable: 250 kB\n")
	in, err := Proc(dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Uptime != 12500*time.Millisecond || in.Load1 != 0.5 || in.Load5 != 0.25 || in.Load15 != 0.125 ||
		in.MemTotal != 1024000 || in.MemAvailable != 256000 || in.MemUsed != 768000 {
		t.Errorf("got %+v", in)
	}
}

// TestFilesystemsAgreeWithDf compares Filesystems with df for a
// directory, a path below it that does not exist yet, and a file.
func TestFilesystemsAgreeWithDf(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fss, err := Filesystems("/proc/self/mountinfo", []string{dir, filepath.Join(dir, "not/yet"), file, "/proc/self"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fss) != 2 {
		t.Fatalf("got %d filesystems, want 2 (the temp dir's and /proc): %+v", len(fss), fss)
	}
	var f FS
	for _, x := range fss {
		if x.Mount != "/proc" {
			f = x
		}
	}
	if len(f.Paths) != 3 {
		t.Errorf("paths %v, want the three under %s", f.Paths, dir)
	}
	lines := strings.Split(strings.TrimSpace(run(t, "df", "-B1", "--output=size,used,avail,target", dir)), "\n")
	df := strings.Fields(lines[len(lines)-1])
	size, _ := strconv.ParseFloat(df[0], 64)
	used, _ := strconv.ParseFloat(df[1], 64)
	avail, _ := strconv.ParseFloat(df[2], 64)
	if f.Mount != df[3] {
		t.Errorf("mount %s, df says %s", f.Mount, df[3])
	}
	// Other writers share the filesystem: 1% of its size.
	if float64(f.Total) != size || !near(float64(f.Used), used, size/100) || !near(float64(f.Avail), avail, size/100) {
		t.Errorf("total/used/avail %d/%d/%d, df says %.0f/%.0f/%.0f", f.Total, f.Used, f.Avail, size, used, avail)
	}
}

func TestMountinfoEscapes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(file, []byte("36 35 98:0 / / rw - ext4 /dev/root rw\n37 36 0:1 / /mnt/my\\040disk rw shared:1 - xfs /dev/sdb1 rw\n"), 0o644)
	ms, err := readMountinfo(file)
	if err != nil {
		t.Fatal(err)
	}
	if m := mountOf(ms, "/mnt/my disk/x"); m == nil || m.Mount != "/mnt/my disk" || m.Type != "xfs" || m.Source != "/dev/sdb1" {
		t.Errorf("mount of /mnt/my disk/x: %+v", m)
	}
	if m := mountOf(ms, "/mnt/my diskette"); m == nil || m.Mount != "/" {
		t.Errorf("mount of /mnt/my diskette: %+v", m)
	}
}

func TestForecast(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const gib = 1 << 30
	// 100 GiB free, 10 GiB fewer every day, sampled hourly for 3 days:
	// full 10 days after t0.
	var ss []Sample
	for h := 0; h <= 72; h++ {
		ss = append(ss, Sample{t0.Add(time.Duration(h) * time.Hour), uint64(100*gib - h*10*gib/24)})
	}
	full, ok := Forecast(ss)
	if !ok || !near(full.Sub(t0).Hours(), 240, 0.01) {
		t.Errorf("forecast %s %v, want %s", full, ok, t0.Add(240*time.Hour))
	}
	if d := DaysUntil(full, t0.Add(72*time.Hour)); d != 7 {
		t.Errorf("days until full %v, want 7", d)
	}
	for name, ss := range map[string][]Sample{
		"one":     ss[:1],
		"short":   {{t0, 100}, {t0.Add(time.Minute), 50}},
		"growing": {{t0, 100}, {t0.Add(2 * time.Hour), 200}},
		"steady":  {{t0, 100}, {t0.Add(2 * time.Hour), 100}},
	} {
		if full, ok := Forecast(ss); ok {
			t.Errorf("%s: forecast %s, want none", name, full)
		}
	}
}
