package host

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"
)

// Info is the machine at one instant, as /proc says it.
type Info struct {
	// Hostname is os.Hostname.
	Hostname string
	// Uptime is the first field of /proc/uptime.
	Uptime time.Duration
	// Load1, Load5 and Load15 are /proc/loadavg's load averages.
	Load1, Load5, Load15 float64
	// CPUs is the number of CPUs the kernel has online
	// (runtime.NumCPU of a process allowed on all of them).
	CPUs int
	// MemTotal and MemAvailable are /proc/meminfo's, in bytes; MemUsed
	// is their difference (what `free` calls used plus what it cannot
	// reclaim).
	MemTotal, MemAvailable, MemUsed uint64
}

// Proc reads Info from the proc file system mounted at root ("/proc" on
// a live system; tests pass a directory of their own). An error names
// the file that is missing or malformed.
func Proc(root string) (Info, error) {
	var in Info
	in.Hostname, _ = os.Hostname()
	in.CPUs = goruntime.NumCPU()
	up, err := fields(filepath.Join(root, "uptime"), 1)
	if err != nil {
		return Info{}, err
	}
	secs, err := strconv.ParseFloat(up[0], 64)
	if err != nil {
		return Info{}, fmt.Errorf("read %s: %w", filepath.Join(root, "uptime"), err)
	}
	in.Uptime = time.Duration(secs * float64(time.Second))
	la, err := fields(filepath.Join(root, "loadavg"), 3)
	if err != nil {
		return Info{}, err
	}
	for i, p := range []*float64{&in.Load1, &in.Load5, &in.Load15} {
		if *p, err = strconv.ParseFloat(la[i], 64); err != nil {
			return Info{}, fmt.Errorf("read %s: %w", filepath.Join(root, "loadavg"), err)
		}
	}
	if in.MemTotal, in.MemAvailable, err = meminfo(filepath.Join(root, "meminfo")); err != nil {
		return Info{}, err
	}
	in.MemUsed = in.MemTotal - min(in.MemTotal, in.MemAvailable)
	return in, nil
}

// fields returns the first n whitespace-separated fields of file.
func fields(file string, n int) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < n {
		return nil, fmt.Errorf("read %s: %d fields, want at least %d", file, len(f), n)
	}
	return f, nil
}

// meminfo returns MemTotal and MemAvailable of a /proc/meminfo file, in
// bytes.
func meminfo(file string) (total, avail uint64, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, fmt.Errorf("read %w", err)
	}
	var gotTotal, gotAvail bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "MemTotal" && name != "MemAvailable") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, 0, fmt.Errorf("read %s: %s: no value", file, name)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read %s: %s: %w", file, name, err)
		}
		if name == "MemTotal" {
			total, gotTotal = kb*1024, true
		} else {
			avail, gotAvail = kb*1024, true
		}
	}
	if !gotTotal || !gotAvail {
		return 0, 0, fmt.Errorf("read %s: MemTotal or MemAvailable missing", file)
	}
	return total, avail, nil
}
