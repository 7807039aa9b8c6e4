package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// ErrBusy is matched (errors.Is) by every *BusyError.
var ErrBusy = errors.New("target busy")

// PollInterval is how often Acquire with wait retries a busy lock.
const PollInterval = 200 * time.Millisecond

// BusyError reports a lock held by another process (or another Lock in this
// one). It matches ErrBusy.
type BusyError struct {
	// Name is the lock's name (a target, or a repository).
	Name string
	// Holder describes the holder, e.g.
	// `pid 1234, started 2026-11-23T10:00:00Z, "homelab backup run db"`;
	// empty if the lock file did not say.
	Holder string
	// Waited is true if the caller waited for the lock and gave up.
	Waited bool
}

func (e *BusyError) Error() string {
	holder := "another homelab process"
	if e.Holder != "" {
		holder += " (" + e.Holder + ")"
	}
	advice := "retry later or pass --wait"
	if e.Waited {
		advice = "gave up waiting"
	}
	return fmt.Sprintf("target %q is busy: %s holds it; %s", e.Name, holder, advice)
}

// Is reports whether target is ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Lock is a held lock. Release it when done; exiting releases it too.
type Lock struct {
	name string
	fl   *flock.Flock
}

// holder is what a lock file says about the process holding it.
type holder struct {
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`  // when the process started
	Acquired time.Time `json:"acquired"` // when it took the lock
	Cmd      string    `json:"cmd"`
}

// processStart is close enough to this process's start time.
var processStart = time.Now().UTC().Truncate(time.Second)

// Path returns the lock file of name under stateDir:
// <stateDir>/locks/<name>.lock.
func Path(stateDir, name string) string {
	return filepath.Join(stateDir, "locks", name+".lock")
}

// Acquire takes the exclusive lock called name under stateDir, creating
// <stateDir>/locks (mode 0700) if needed. If another Lock holds it, Acquire
// returns a *BusyError at once, or, if wait is set, retries every
// PollInterval until it gets the lock or ctx is done; then the error wraps
// both ctx.Err() and a *BusyError naming the holder. A name must be a
// plain file name (no path separators).
func Acquire(ctx context.Context, stateDir, name string, wait bool) (*Lock, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("lock %q: invalid name", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	path := Path(stateDir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	fl := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR))
	var tick *time.Ticker
	for {
		ok, err := fl.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if ok {
			break
		}
		if !wait {
			return nil, &BusyError{Name: name, Holder: readHolder(path)}
		}
		if tick == nil {
			tick = time.NewTicker(PollInterval)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", &BusyError{Name: name, Holder: readHolder(path), Waited: true}, ctx.Err())
		case <-tick.C:
		}
	}
	writeHolder(path)
	return &Lock{name: name, fl: fl}, nil
}

// Name returns the lock's name.
func (l *Lock) Name() string { return l.name }

// Release empties the lock file and releases the lock. Releasing twice is a
// no-op.
func (l *Lock) Release() error {
	if !l.fl.Locked() {
		return nil
	}
	// Best effort: a stale holder line would only mislead a later message.
	_ = os.Truncate(l.fl.Path(), 0)
	if err := l.fl.Unlock(); err != nil {
		return fmt.Errorf("release lock %s: %w", l.name, err)
	}
	return nil
}

// AcquireAll takes the locks called names (in sorted order, so that two
// callers never deadlock, duplicates ignored) and returns a function that
// releases them all. If any Acquire fails, the locks already taken are
// released and its error is returned.
func AcquireAll(ctx context.Context, stateDir string, names []string, wait bool) (release func() error, err error) {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var held []*Lock
	release = func() error {
		var errs []error
		for _, l := range slices.Backward(held) {
			errs = append(errs, l.Release())
		}
		held = nil
		return errors.Join(errs...)
	}
	for _, name := range sorted {
		l, err := Acquire(ctx, stateDir, name, wait)
		if err != nil {
			if rerr := release(); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return nil, err
		}
		held = append(held, l)
	}
	return release, nil
}

// writeHolder records this process in the lock file at path. It is best
// effort: the lock is held either way.
func writeHolder(path string) {
	h := holder{
		PID:      os.Getpid(),
		Started:  processStart,
		Acquired: time.Now().UTC(),
		Cmd:      commandLine(),
	}
	b, err := json.Marshal(h)
	if err != nil {
		return
	}
	_ = os.WriteFile(path, append(b, '\n'), 0o600) // truncates first
}

// readHolder describes the holder recorded in the lock file at path, or
// returns "" if it cannot be read.
func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var h holder
	if json.Unmarshal(b, &h) != nil || h.PID == 0 {
		return ""
	}
	return fmt.Sprintf("pid %d, started %s, %q", h.PID, h.Started.Format(time.RFC3339), h.Cmd)
}

// commandLine is this process's command line with the program's base name,
// e.g. "homelab backup run db".
func commandLine() string {
	if len(os.Args) == 0 {
		return ""
	}
	args := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	return strings.Join(args, " ")
}
