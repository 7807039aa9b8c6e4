package status

import (
	"maps"
	"slices"
	"time"

	"homelab/internal/health"
	"homelab/internal/lab"
)

// ServiceStatus is a service of the lab and what its health probe saw.
type ServiceStatus struct {
	Name string
	// Runtime is the kind of the service's runtime: compose, systemd or
	// exec.
	Runtime string
	// Probe is the kind of its health probe (lab.ProbeHTTP, ...); "" when
	// the service has none, and then Healthy, Detail and Duration are
	// zero.
	Probe    string
	Healthy  bool
	Detail   string
	Duration time.Duration
}

// Failing reports whether the service has a probe and the probe failed.
func (s ServiceStatus) Failing() bool { return s.Probe != "" && !s.Healthy }

// AddServices lists every service of l in r, sorted by name, with its
// probe's result from results (health.CheckAll); a failing probe makes r
// unhealthy. A service with a probe but no result counts as failing.
//
// It is separate from Build, which only reads the catalog, because probing
// is live I/O: the CLI and the daemon run the probes their own way.
func (r *Report) AddServices(l *lab.Lab, results []health.Result) {
	byName := map[string]health.Result{}
	for _, res := range results {
		byName[res.Service] = res
	}
	r.Services = nil
	for _, name := range slices.Sorted(maps.Keys(l.Services)) {
		s := l.Services[name]
		ss := ServiceStatus{Name: name, Runtime: s.RuntimeKind(), Probe: s.Health.Kind()}
		if ss.Probe != "" {
			if res, ok := byName[name]; ok {
				ss.Healthy, ss.Detail, ss.Duration = res.Healthy, res.Detail, res.Duration
			} else {
				ss.Detail = "not probed"
			}
		}
		if ss.Failing() {
			r.Healthy = false
		}
		r.Services = append(r.Services, ss)
	}
}

// FailingServices counts the services whose probe failed.
func (r Report) FailingServices() int {
	n := 0
	for _, s := range r.Services {
		if s.Failing() {
			n++
		}
	}
	return n
}

// ProbedServices counts the services that have a health probe.
func (r Report) ProbedServices() int {
	n := 0
	for _, s := range r.Services {
		if s.Probe != "" {
			n++
		}
	}
	return n
}
