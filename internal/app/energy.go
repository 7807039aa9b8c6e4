package app

import (
	"context"
	"sync"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/host"
	"homelab/internal/lab"
	"homelab/internal/status"
)

// maxGap is how many sampling intervals may pass between two meter
// readings for the watts model to count the time between them: a longer
// gap (the daemon stopped, the machine suspended) is not counted.
const maxGap = 3

// HostSampler is SampleHost with an energy meter: the daemon keeps one
// and calls Sample every hosts.sample_interval. Each call reads the
// lab's energy source (RAPL counters under energy.powercap, with
// wrap-around, or /proc/stat's CPU times for the watts model) and adds
// what was used since the previous call to a cumulative count of joules,
// recorded as status.EnergySeries and continued from the catalog's
// newest sample after a restart (the first reading after a start is a
// baseline: the time the daemon was down is not counted). The watts
// model also records status.CPUSeries. Safe for one caller at a time.
type HostSampler struct {
	// Proc is the proc file system; default /proc.
	Proc string

	mu     sync.Mutex
	rapl   []host.RAPLZone
	cpu    *host.CPUTimes
	last   time.Time
	total  float64
	loaded bool // total continues the catalog's newest energy sample
}

// Sample reads the host as SampleHost does, meters the energy, and
// returns the status (with the energy of the last 30 days) and the
// samples to record.
func (s *HostSampler) Sample(ctx context.Context, l *lab.Lab, store catalog.Samples, now time.Time) (status.HostStatus, []catalog.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pending []catalog.Sample
	var meterErr error
	if l.Energy != nil {
		pending, meterErr = s.meter(ctx, l, store, now)
	}
	h, ss := sampleHost(ctx, l, store, now, pending)
	if h.Energy != nil && meterErr != nil {
		h.Energy.Error = meterErr.Error()
	}
	return h, append(ss, pending...)
}

// meter reads the energy source and returns the new samples.
func (s *HostSampler) meter(ctx context.Context, l *lab.Lab, store catalog.Samples, now time.Time) ([]catalog.Sample, error) {
	e := l.Energy
	var joules float64
	var out []catalog.Sample
	counted := false
	if e.RAPL {
		zs, err := host.RAPL(e.Powercap)
		if err != nil {
			s.rapl = nil
			return nil, err
		}
		if s.rapl != nil {
			joules, counted = host.RAPLJoules(s.rapl, zs), true
		}
		s.rapl = zs
	} else {
		proc := s.Proc
		if proc == "" {
			proc = procRoot
		}
		cpu, err := host.ReadCPU(proc)
		if err != nil {
			s.cpu = nil
			return nil, err
		}
		if s.cpu != nil && now.After(s.last) && now.Sub(s.last) <= maxGap*l.Hosts.SampleInterval {
			share := host.BusyShare(*s.cpu, cpu)
			joules, counted = host.ModelJoules(e.Watts.Idle, e.Watts.Busy, share, now.Sub(s.last).Seconds()), true
			out = append(out, catalog.Sample{Series: status.CPUSeries, Time: now, Value: share})
		}
		s.cpu = &cpu
	}
	prevTime := s.last
	s.last = now
	if !counted {
		return out, nil
	}
	if !s.loaded && store != nil {
		prev, err := store.SamplesOf(ctx, status.EnergySeries, now.Add(-catalog.SampleMaxAge))
		if err != nil {
			return out, err
		}
		if len(prev) > 0 {
			s.total = prev[len(prev)-1].Value
		}
	}
	if !s.loaded {
		// The first count starts the series where it stood (or at 0) at
		// the baseline reading, then adds the count.
		out = append(out, catalog.Sample{Series: status.EnergySeries, Time: prevTime, Value: s.total})
		s.loaded = true
	}
	s.total += joules
	return append(out, catalog.Sample{Series: status.EnergySeries, Time: now, Value: s.total}), nil
}
