package upgrade

import (
	"context"
	"fmt"
	"slices"
	"time"

	"homelab/internal/lab"
	"homelab/internal/runtime"
)

// Service returns the lab's service name and its runtime (ServiceRuntime);
// an error when the lab file has no such service.
func (u *Upgrader) Service(name string) (*lab.Service, runtime.Runtime, error) {
	s := u.Lab.Services[name]
	if s == nil {
		return nil, nil, fmt.Errorf("service %s is not in %s", name, u.Lab.Path)
	}
	rt, err := u.ServiceRuntime(s)
	return s, rt, err
}

// Running returns those of names whose runtime does not report them
// stopped, in order (what a saga stops and must start again); an error
// when a state cannot be read.
func (u *Upgrader) Running(ctx context.Context, names []string) ([]string, error) {
	var running []string
	for _, name := range names {
		_, rt, err := u.Service(name)
		if err != nil {
			return nil, err
		}
		st, err := rt.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("service %s: state unknown: %w", name, err)
		}
		if st.State != runtime.Stopped {
			running = append(running, name)
		}
	}
	return running, nil
}

// StopAll stops names in order (runtime Stop: a stopped one is left
// alone), stopping at the first that fails.
func (u *Upgrader) StopAll(ctx context.Context, names []string) error {
	for _, name := range names {
		_, rt, err := u.Service(name)
		if err != nil {
			return err
		}
		u.note("stopping %s", name)
		if err := rt.Stop(ctx); err != nil {
			return err
		}
	}
	return nil
}

// StartAll starts names in reverse order (the reverse of a stop order),
// stopping at the first that fails.
func (u *Upgrader) StartAll(ctx context.Context, names []string) error {
	for _, name := range slices.Backward(names) {
		_, rt, err := u.Service(name)
		if err != nil {
			return err
		}
		u.note("starting %s", name)
		if err := rt.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// GateAll waits until each of names is healthy (WaitHealthy), in reverse
// order, each within its upgrade.healthy_within, else within.
func (u *Upgrader) GateAll(ctx context.Context, names []string, within time.Duration) error {
	for _, name := range slices.Backward(names) {
		s, rt, err := u.Service(name)
		if err != nil {
			return err
		}
		w := within
		if s.Upgrade != nil && s.Upgrade.HealthyWithin > 0 {
			w = s.Upgrade.HealthyWithin
		}
		if err := u.WaitHealthy(ctx, s, rt, w); err != nil {
			return err
		}
	}
	return nil
}
