package app

import (
	"context"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/host"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/status"
)

// Where the host is read from: the live /proc.
const (
	procRoot  = "/proc"
	mountinfo = "/proc/self/mountinfo"
)

// SampleHost reads the host homelab runs on at now: /proc, the
// filesystems of l's watched paths (lab.Lab.WatchedPaths), the containers
// of its compose services (runtime.Containers), and, when
// store keeps samples (catalog.Samples, else nil), their free space over
// the last status.ForecastWindow for the days-until-full forecast
// (status.HostOf) and, when the lab has an energy section, the energy
// figures of the last 30 days from the samples (status.EnergyOf; the
// meter that records them is HostSampler's). It returns the status and the samples of this reading
// (one per filesystem, series status.Series), which the daemon records and
// `homelab status` does not. A filesystem that cannot be read is named in
// the status's Error; it never fails.
func SampleHost(ctx context.Context, l *lab.Lab, store catalog.Samples, now time.Time) (status.HostStatus, []catalog.Sample) {
	return sampleHost(ctx, l, store, now, nil)
}

// sampleHost is SampleHost with pending samples not recorded yet (the
// meter's) counted in the energy figures.
func sampleHost(ctx context.Context, l *lab.Lab, store catalog.Samples, now time.Time, pending []catalog.Sample) (status.HostStatus, []catalog.Sample) {
	in, perr := host.Proc(procRoot)
	fss, ferr := host.Filesystems(mountinfo, l.WatchedPaths())
	hist := map[string][]host.Sample{}
	var serr error
	if store != nil {
		for _, f := range fss {
			ss, err := store.SamplesOf(ctx, status.Series(f.Mount), now.Add(-status.ForecastWindow))
			if err != nil {
				serr = err
				break
			}
			for _, s := range ss {
				hist[status.Series(f.Mount)] = append(hist[status.Series(f.Mount)], host.Sample{Time: s.Time, Avail: uint64(s.Value)})
			}
		}
	}
	h := status.HostOf(in, perr, fss, hist, l.Hosts.WarnDays, now)
	h.Containers = runtime.Containers(ctx, l.Services, runtime.Options{}, 0)
	if l.Energy != nil {
		var es []catalog.Sample
		if store != nil {
			var err error
			if es, err = store.SamplesOf(ctx, status.EnergySeries, now.Add(-status.EnergyWindow)); err != nil && serr == nil {
				serr = err
			}
		}
		for _, p := range pending {
			if p.Series == status.EnergySeries {
				es = append(es, p)
			}
		}
		h.Energy = status.EnergyOf(es, l.Energy, now)
	}
	for _, err := range []error{ferr, serr} {
		if err != nil && h.Error == "" {
			h.Error = err.Error()
		} else if err != nil {
			h.Error += "; " + err.Error()
		}
	}
	var out []catalog.Sample
	for _, f := range fss {
		out = append(out, catalog.Sample{Series: status.Series(f.Mount), Time: now, Value: float64(f.Avail)})
	}
	return h, out
}

// hostOf is SampleHost's status for `homelab status`, over store when it
// keeps samples.
func hostOf(ctx context.Context, l *lab.Lab, store catalog.Store, now time.Time) *status.HostStatus {
	ss, _ := store.(catalog.Samples)
	h, _ := SampleHost(ctx, l, ss, now)
	return &h
}
