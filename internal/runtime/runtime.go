// Package runtime drives the services of a lab through the way each runs:
// a Docker Compose service (the `docker compose` v2 CLI), a systemd unit
// (systemctl), or shell commands (exec). A runtime reports the service's
// state and uptime and stops and starts it; backups stop services for a
// consistent copy with it (StopAll / Restart).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"homelab/internal/lab"
)

// State is a service's run state as its runtime reports it.
type State string

// States.
const (
	// Running: the service's process or containers are up.
	Running State = "running"
	// Stopped: not running (never started, stopped, exited or failed).
	Stopped State = "stopped"
	// Restarting: between stopped and running (a container restarting, a
	// unit activating or deactivating).
	Restarting State = "restarting"
)

// Status is a service's state at one instant.
type Status struct {
	State State `json:"state"`
	// Since is when the service entered State: for Running, when it
	// started (its uptime is now minus Since). Zero when the runtime
	// cannot tell.
	Since time.Time `json:"since,omitzero"`
	// Detail is the runtime's own words, such as "exited (137)" or
	// "active (running)"; may be empty.
	Detail string `json:"detail,omitempty"`
	// Health is the runtime's own health verdict where it has one: for
	// compose, Docker's HEALTHCHECK state of the running containers
	// (HealthHealthy when every one is healthy, HealthUnhealthy when one
	// is, else HealthStarting). Empty when the runtime has none.
	Health string `json:"health,omitempty"`
}

// Health verdicts of Status.Health (Docker's .State.Health.Status words).
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Uptime is how long a running service has been up at now; 0 when it is
// not running or its start time is not known.
func (s Status) Uptime(now time.Time) time.Duration {
	if s.State != Running || s.Since.IsZero() || now.Before(s.Since) {
		return 0
	}
	return now.Sub(s.Since)
}

// Runtime drives one service.
type Runtime interface {
	// Kind is lab.RuntimeCompose, lab.RuntimeSystemd or lab.RuntimeExec.
	Kind() string
	// Status reports the service's state. An error means the state could
	// not be read (the runtime's tool failed), not that the service is
	// down.
	Status(ctx context.Context) (Status, error)
	// Start starts the service and returns once the runtime reports it
	// started (not necessarily healthy). Starting a running service is
	// not an error.
	Start(ctx context.Context) error
	// Stop stops the service and returns once it has stopped. Stopping a
	// stopped service is not an error.
	Stop(ctx context.Context) error
}

// ErrNoRuntime is returned by New for a service without a runtime.
var ErrNoRuntime = errors.New("no runtime")

// Options are the tools runtimes call, for tests; zero values mean the
// ones in PATH.
type Options struct {
	Docker    string // the docker CLI (with the compose v2 plugin)
	Systemctl string // systemctl
}

// New returns the runtime of s: an error wrapping ErrNoRuntime when s has
// none.
func New(s *lab.Service, o Options) (Runtime, error) {
	r := s.Runtime
	switch r.Kind() {
	case lab.RuntimeCompose:
		return newCompose(s.Name, r.Compose, o), nil
	case lab.RuntimeSystemd:
		return newSystemd(s.Name, r.Systemd, o), nil
	case lab.RuntimeExec:
		return newExec(s.Name, r.Exec), nil
	}
	return nil, fmt.Errorf("service %s: %w", s.Name, ErrNoRuntime)
}

// Result is a service's state as StatusAll read it.
type Result struct {
	Service string
	Status  Status
	// Err is why the state could not be read; Status is then zero.
	Err error
}

// StatusAll reads the state of every service of services that has a
// runtime, all at once, each bounded by timeout (default 10s), so it
// takes about as long as the slowest. Results are in no particular order.
func StatusAll(ctx context.Context, services map[string]*lab.Service, o Options, timeout time.Duration) []Result {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ch := make(chan Result)
	n := 0
	for name, s := range services {
		rt, err := New(s, o)
		if errors.Is(err, ErrNoRuntime) {
			continue
		}
		n++
		go func() {
			if err != nil {
				ch <- Result{Service: name, Err: err}
				return
			}
			sctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := rt.Status(sctx)
			if err != nil && sctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %s", timeout)
			}
			ch <- Result{Service: name, Status: st, Err: err}
		}()
	}
	out := make([]Result, 0, n)
	for range n {
		out = append(out, <-ch)
	}
	return out
}
