package backup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/runtime"
	"homelab/internal/saga"
)

// restartTimeout bounds the restart of the services a backup stopped. It
// runs on a context that outlives the backup's own, so a cancelled or
// timed-out backup still brings its services back.
const restartTimeout = 5 * time.Minute

// ServiceStop is what a backup did to one service of its stop list.
type ServiceStop struct {
	Service string `json:"service"`
	// Was is the state found before the backup (runtime.State).
	Was runtime.State `json:"was"`
	// Stopped is true when the backup stopped it (it was running).
	Stopped bool `json:"stopped"`
	// Restarted is true once it was started again.
	Restarted bool `json:"restarted"`
	// Down is how long it was down because of the backup.
	Down  time.Duration `json:"down_ns,omitempty"`
	Error string        `json:"error,omitempty"`
}

// runtimeOf returns the runtime of a lab service.
func (m *Manager) runtimeOf(s *lab.Service) (runtime.Runtime, error) {
	if m.Runtime != nil {
		return m.Runtime(s)
	}
	return runtime.New(s, runtime.Options{})
}

// stopped is what a backup did to its stop list, to restart what it
// stopped.
type stopped struct {
	m     *Manager
	items []stopItem
	// locks are the upgrade locks of the stopped services, held until
	// they run again.
	locks []*lock.Lock
}

type stopItem struct {
	ServiceStop
	rt runtime.Runtime // nil when the backup did not stop it
	at time.Time       // when it was stopped
}

// waitUpgrades waits, with m.Wait and outside an upgrade, until no
// service of the stop list names is being upgraded (its saga.LockName
// lock is held by no process: lock.WaitReleased), holding no lock
// meanwhile: an upgrade takes its restore points while it holds that lock, so a backup holding the target's lock
// and waiting for it would wait for an upgrade that waits for it. A
// scheduled backup (the daemon waits) thus runs after an upgrade instead
// of failing during it. Errors: ctx's end while waiting, naming the
// upgrade's process.
func (m *Manager) waitUpgrades(ctx context.Context, target string, names []string) error {
	if !m.Wait || len(m.Upgrading) > 0 {
		return nil
	}
	for _, name := range names {
		held, holder, err := lock.Held(m.Lab.StateDir, saga.LockName(name))
		if err != nil || !held {
			continue // stopServices takes the lock, or says why not
		}
		m.log().Info("waiting for an upgrade to finish before the backup stops its service", "target", target, "service", name, "holder", holder)
		if err := lock.WaitReleased(ctx, m.Lab.StateDir, saga.LockName(name)); err != nil {
			return fmt.Errorf("stop %s: it is being upgraded (%s); the backup waited for the upgrade to finish: %w", name, holder, err)
		}
	}
	return nil
}

// stopServices stops the target's stop list in order, for a consistent
// copy. A service that is already stopped is left alone (and stays
// stopped afterwards). When a state cannot be read or a stop fails, the
// backup must not go on with a service that may still be writing: the
// error is returned, and the caller restarts what was stopped so far
// with restart.
func (m *Manager) stopServices(ctx context.Context, target string, names []string) (*stopped, error) {
	s := &stopped{m: m}
	for _, name := range names {
		svc := m.Lab.Services[name]
		if svc == nil {
			return s, fmt.Errorf("stop %s: no such service in the lab file", name)
		}
		rt, err := m.runtimeOf(svc)
		if err != nil {
			return s, fmt.Errorf("stop %s: %w", name, err)
		}
		st, err := rt.Status(ctx)
		if err != nil {
			return s, fmt.Errorf("stop %s: state unknown, so the copy would not be consistent: %w", name, err)
		}
		item := ServiceStop{Service: name, Was: st.State}
		if !slices.Contains(m.Upgrading, name) {
			// An upgrade of the service (a saga on it, package saga) must
			// not have it stopped under its health gate or rollback; and
			// none may start while the copy runs.
			l, err := lock.Acquire(ctx, m.Lab.StateDir, saga.LockName(name), false)
			if err != nil {
				return s, fmt.Errorf("stop %s: it is being upgraded, so the backup does not stop it: %w", name, err)
			}
			s.locks = append(s.locks, l)
		}
		if st.State == runtime.Stopped {
			m.log().Info("service already stopped: left stopped", "target", target, "service", name)
			s.add(item, nil)
			continue
		}
		m.log().Info("stopping service for a consistent copy", "target", target, "service", name, "runtime", rt.Kind())
		if err := rt.Stop(ctx); err != nil {
			// It may be half stopped: start it again with the others.
			item.Stopped = true
			s.add(item, rt)
			return s, fmt.Errorf("stop %s: %w", name, err)
		}
		item.Stopped = true
		s.add(item, rt)
	}
	return s, nil
}

func (s *stopped) add(item ServiceStop, rt runtime.Runtime) {
	s.items = append(s.items, stopItem{ServiceStop: item, rt: rt, at: s.m.now()})
}

// restart starts the services the backup stopped, in reverse order, on a
// context that survives the backup's cancellation. It tries every one and
// returns the errors joined.
func (s *stopped) restart(ctx context.Context, target string) error {
	if s == nil {
		return nil
	}
	defer func() {
		for _, l := range s.locks {
			l.Release()
		}
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restartTimeout)
	defer cancel()
	var errs []error
	for i := len(s.items) - 1; i >= 0; i-- {
		it := &s.items[i]
		if it.rt == nil {
			continue
		}
		if err := it.rt.Start(ctx); err != nil {
			it.Error = err.Error()
			errs = append(errs, fmt.Errorf("restart %s: %w", it.Service, err))
			s.m.log().Error("service not restarted after the backup", "target", target, "service", it.Service, "err", err)
			continue
		}
		it.Restarted, it.Down = true, s.m.now().Sub(it.at)
		s.m.log().Info("service restarted", "target", target, "service", it.Service, "down", it.Down.Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

// report is what the backup did to each service, in stop-list order.
func (s *stopped) report() []ServiceStop {
	if s == nil {
		return nil
	}
	out := make([]ServiceStop, len(s.items))
	for i, it := range s.items {
		out[i] = it.ServiceStop
	}
	return out
}

// restartError is the backup's error when its services could not all be
// restarted: the snapshot may be good, but a service is down.
func restartError(snapshot string, err error) error {
	msg := "backup done"
	if snapshot != "" {
		msg = "snapshot " + snapshot + " saved"
	}
	return fmt.Errorf("%s, but a stopped service is still down: %s", msg, strings.ReplaceAll(err.Error(), "\n", "; "))
}
