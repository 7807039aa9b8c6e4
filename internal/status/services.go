package status

import (
	"maps"
	"slices"
	"time"

	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
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
	// State is what its runtime reports (runtime.Running, Stopped,
	// Restarting), StateUnknown when it could not be read (StateError
	// says why), or "" when the service has no runtime or AddStates was
	// not called.
	State string
	// Since is when a running service started (zero when not known).
	Since      time.Time
	StateError string
}

// StateUnknown is ServiceStatus.State when the runtime could not be read.
const StateUnknown = "unknown"

// Failing reports whether the service's probe failed, or its runtime
// reports it not running (stopped, restarting, or unknown).
func (s ServiceStatus) Failing() bool {
	return (s.Probe != "" && !s.Healthy) || (s.State != "" && s.State != string(runtime.Running))
}

// Uptime is how long a running service has been up at now, or 0.
func (s ServiceStatus) Uptime(now time.Time) time.Duration {
	return runtime.Status{State: runtime.State(s.State), Since: s.Since}.Uptime(now)
}

// AddStates records the runtimes' states (runtime.StatusAll) on the
// services AddServices listed; a service that is not running, or whose
// state cannot be read, makes r unhealthy.
func (r *Report) AddStates(states []runtime.Result) {
	byName := map[string]runtime.Result{}
	for _, st := range states {
		byName[st.Service] = st
	}
	for i := range r.Services {
		s := &r.Services[i]
		st, ok := byName[s.Name]
		switch {
		case !ok:
			continue
		case st.Err != nil:
			s.State, s.StateError = StateUnknown, st.Err.Error()
		default:
			s.State, s.Since = string(st.Status.State), st.Status.Since
		}
		if s.Failing() {
			r.Healthy = false
		}
	}
}

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

// FailingServices counts the services whose probe failed or that are not
// running.
func (r Report) FailingServices() int {
	n := 0
	for _, s := range r.Services {
		if s.Failing() {
			n++
		}
	}
	return n
}

// CheckedServices counts the services that have a health probe or a
// runtime state.
func (r Report) CheckedServices() int {
	n := 0
	for _, s := range r.Services {
		if s.Probe != "" || s.State != "" {
			n++
		}
	}
	return n
}
