package host

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DefaultPowercap is where Linux shows RAPL (Running Average Power Limit)
// energy counters.
const DefaultPowercap = "/sys/class/powercap"

// RAPLZone is one top-level RAPL zone (a CPU package, "package-0", or
// "psys"): its counter of energy used in microjoules, which wraps to 0
// after MaxUJ.
type RAPLZone struct {
	// Dir is the zone's directory name ("intel-rapl:0").
	Dir, Name       string
	EnergyUJ, MaxUJ uint64
}

// topZone matches the top-level zones only: their sub-zones (core,
// uncore, dram: intel-rapl:0:1) are parts of them, counted already.
var topZone = regexp.MustCompile(`^intel-rapl:[0-9]+$`)

// RAPL reads the top-level RAPL zones under dir (DefaultPowercap),
// sorted by directory. No zone at all is an error (RAPL missing, or
// energy_uj unreadable: root only on recent kernels); so is a zone
// without a readable counter.
func RAPL(dir string) ([]RAPLZone, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rapl: %w", err)
	}
	var zs []RAPLZone
	for _, e := range ents {
		if !topZone.MatchString(e.Name()) {
			continue
		}
		zd := filepath.Join(dir, e.Name())
		z := RAPLZone{Dir: e.Name()}
		name, _ := os.ReadFile(filepath.Join(zd, "name"))
		z.Name = strings.TrimSpace(string(name))
		if z.EnergyUJ, err = readUint(filepath.Join(zd, "energy_uj")); err != nil {
			return nil, fmt.Errorf("rapl: %w", err)
		}
		if z.MaxUJ, err = readUint(filepath.Join(zd, "max_energy_range_uj")); err != nil {
			return nil, fmt.Errorf("rapl: %w", err)
		}
		zs = append(zs, z)
	}
	if len(zs) == 0 {
		return nil, fmt.Errorf("rapl: no intel-rapl zone in %s", dir)
	}
	slices.SortFunc(zs, func(a, b RAPLZone) int { return strings.Compare(a.Dir, b.Dir) })
	return zs, nil
}

func readUint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}

// RAPLJoules is the energy used between two readings of zones (matched
// by Dir; a zone in only one is left out), in joules. A counter lower
// than before wrapped once past its MaxUJ, so readings must come oftener
// than a counter can wrap twice: the common range of 262143328850 µJ
// lasts about 43 minutes at 100 W.
func RAPLJoules(prev, cur []RAPLZone) float64 {
	var uj uint64
	for _, c := range cur {
		i := slices.IndexFunc(prev, func(p RAPLZone) bool { return p.Dir == c.Dir })
		if i < 0 {
			continue
		}
		p := prev[i]
		if c.EnergyUJ >= p.EnergyUJ {
			uj += c.EnergyUJ - p.EnergyUJ
		} else {
			uj += c.MaxUJ - p.EnergyUJ + c.EnergyUJ
		}
	}
	return float64(uj) / 1e6
}

// CPUTimes are the first line of /proc/stat: the CPU time of all CPUs
// since boot, busy (all but idle and iowait) and in total, in clock
// ticks.
type CPUTimes struct{ Busy, Total uint64 }

// ReadCPU reads CPUTimes from the proc file system at root.
func ReadCPU(root string) (CPUTimes, error) {
	file := filepath.Join(root, "stat")
	b, err := os.ReadFile(file)
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return CPUTimes{}, fmt.Errorf("read %s: no cpu line", file)
	}
	var t CPUTimes
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return CPUTimes{}, fmt.Errorf("read %s: %w", file, err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is counted in user already.
		if i >= 8 {
			break
		}
		t.Total += v
		if i != 3 && i != 4 {
			t.Busy += v
		}
	}
	return t, nil
}

// BusyShare is the share of CPU time busy between two readings, 0..1 (0
// when no time passed).
func BusyShare(prev, cur CPUTimes) float64 {
	if cur.Total <= prev.Total || cur.Busy < prev.Busy {
		return 0
	}
	return min(1, float64(cur.Busy-prev.Busy)/float64(cur.Total-prev.Total))
}

// ModelJoules is the energy of a machine drawing idle watts at rest and
// busy watts at full load, over seconds at the given busy share: the
// linear model idle + (busy-idle)·share.
func ModelJoules(idle, busy, share, seconds float64) float64 {
	return (idle + (busy-idle)*share) * seconds
}
