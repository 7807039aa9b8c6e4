package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"homelab/internal/execx"
	"homelab/internal/lab"
)

// execRuntime drives a service with the shell commands of the lab file.
type execRuntime struct {
	name string
	cfg  *lab.ExecRuntime
}

func newExec(name string, cfg *lab.ExecRuntime) *execRuntime {
	return &execRuntime{name: name, cfg: cfg}
}

func (r *execRuntime) Kind() string { return lab.RuntimeExec }

// Status runs the status command when there is one: exit 0 is Running,
// 1 to 3 Stopped, and anything else an error, as for the "status" action
// of an LSB init script (LSB Core 5.0, "Init Script Actions": 0 running,
// 1 dead with a pid file, 2 dead with a lock file, 3 not running, 4
// unknown). Without one, the service runs when the process in pid_file is
// alive. With a pid_file, a running service's Since is its process's
// start time (/proc/<pid>/stat).
func (r *execRuntime) Status(ctx context.Context) (Status, error) {
	var st Status
	if strings.TrimSpace(r.cfg.Status) != "" {
		out, code, err := r.run(ctx, "status", r.cfg.Status)
		switch {
		case err != nil && code < 0:
			return Status{}, fmt.Errorf("service %s: status command %q: %w", r.name, r.cfg.Status, err)
		case code == 0:
			st.State = Running
		case code >= 1 && code <= 3:
			st.State = Stopped
		default:
			return Status{}, fmt.Errorf("service %s: status command %q: exit status %d (0 running, 1-3 stopped): %s", r.name, r.cfg.Status, code, out)
		}
		st.Detail = firstLine(out)
	}
	if r.cfg.PIDFile == "" {
		return st, nil
	}
	pid, since, alive, err := pidStatus(r.cfg.PIDFile)
	if err != nil {
		return Status{}, fmt.Errorf("service %s: %w", r.name, err)
	}
	if st.State == "" { // no status command: the pid file decides
		st.State = Stopped
		if alive {
			st.State = Running
			st.Detail = fmt.Sprintf("pid %d", pid)
		}
	}
	if st.State == Running && alive {
		st.Since = since
	}
	return st, nil
}

// Start runs the start command unless the service already runs.
func (r *execRuntime) Start(ctx context.Context) error {
	return r.transition(ctx, "start", r.cfg.Start, Running)
}

// Stop runs the stop command unless the service is already stopped.
func (r *execRuntime) Stop(ctx context.Context) error {
	return r.transition(ctx, "stop", r.cfg.Stop, Stopped)
}

// transition runs cmd unless the service is already in state want, then
// checks that it is.
func (r *execRuntime) transition(ctx context.Context, verb, cmd string, want State) error {
	st, err := r.Status(ctx)
	if err != nil {
		return err
	}
	if st.State == want {
		return nil
	}
	if out, _, err := r.run(ctx, verb, cmd); err != nil {
		return fmt.Errorf("service %s: %s command %q: %w%s", r.name, verb, cmd, err, suffix(out))
	}
	// A stop command may return while the process is still exiting: give
	// it until the timeout to be reported in the wanted state.
	deadline := time.Now().Add(r.cfg.Timeout)
	for {
		st, err := r.Status(ctx)
		if err != nil {
			return err
		}
		if st.State == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s: still %s %s after its %s command", r.name, st.State, r.cfg.Timeout, verb)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run runs cmd with /bin/sh -c in the runtime's directory and returns its
// combined output (at most execx.StderrCap bytes, the tail, with the
// values of env_from redacted) and exit status (-1 when it did not exit
// by itself: a timeout, a signal, or an env_from variable that is not
// set, which fails before anything runs). Output goes to a file rather
// than a pipe, so a start command that leaves a daemon in the background
// holding the output open still returns when the shell exits.
//
// The command's environment is homelab's base environment (execx.BaseEnv),
// then the runtime's env, then its env_from with the values read from
// homelab's environment now, then HOMELAB_SERVICE, HOMELAB_ACTION (verb)
// and the context's mark (execx.WithMark); later entries win.
func (r *execRuntime) run(ctx context.Context, verb, cmd string) (string, int, error) {
	env, secrets, err := r.env()
	if err != nil {
		return "", -1, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	out, err := os.CreateTemp("", "homelab-exec-*.out")
	if err != nil {
		return "", -1, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Dir = r.cfg.Dir
	c.Env = append(append(append(execx.BaseEnv(), env...), "HOMELAB_SERVICE="+r.name, "HOMELAB_ACTION="+verb), execx.MarkEnv(ctx)...)
	c.Stdout, c.Stderr = out, out
	// Own process group, so a timeout interrupts the whole command; a
	// daemon the command starts should detach itself (setsid, nohup).
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGTERM) }
	c.WaitDelay = 5 * time.Second
	err = c.Run()
	text := execx.Redact(readTail(out.Name(), execx.StderrCap), secrets...)
	if err == nil {
		return text, 0, nil
	}
	if ctx.Err() != nil {
		return text, -1, fmt.Errorf("timed out after %s", r.cfg.Timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return text, ee.ExitCode(), fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return text, -1, err
}

// env is the runtime's env and env_from as NAME=value entries (sorted by
// name, env first), and the values of env_from, to redact. The values of
// env_from are read from homelab's environment by lab.Secret's rule; an
// unset or empty one is an error naming the field and the variable
// ("env_from.API_TOKEN APP_TOKEN is not set").
func (r *execRuntime) env() (env, secrets []string, err error) {
	for _, k := range slices.Sorted(maps.Keys(r.cfg.Env)) {
		env = append(env, k+"="+r.cfg.Env[k])
	}
	from := r.cfg.EnvFromSecrets()
	for _, k := range slices.Sorted(maps.Keys(from)) {
		v, err := from[k].Resolve()
		if err != nil {
			return nil, nil, err
		}
		env = append(env, k+"="+v)
		secrets = append(secrets, v)
	}
	return env, secrets, nil
}

// pidStatus reads a pid file and reports the pid, whether that process is
// alive, and its start time. A missing or empty pid file means not
// running; a pid file that does not hold a number is an error.
func pidStatus(path string) (pid int, since time.Time, alive bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, err
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return 0, time.Time{}, false, nil
	}
	pid, err = strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, time.Time{}, false, fmt.Errorf("pid file %s: expected a process id, got %q", path, firstLine(s))
	}
	// Signal 0 checks that the process exists; EPERM means it exists but
	// belongs to another user.
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pid, time.Time{}, false, nil
	}
	if p, err := procfs.NewDefaultFS(); err == nil {
		if proc, err := p.Proc(pid); err == nil {
			if stat, err := proc.Stat(); err == nil {
				if stat.State == "Z" { // exited, not yet reaped
					return pid, time.Time{}, false, nil
				}
				if start, err := stat.StartTime(); err == nil {
					sec := int64(start)
					since = time.Unix(sec, int64((start-float64(sec))*1e9))
				}
			}
		}
	}
	return pid, since, true, nil
}

// readTail returns at most max bytes from the end of the file at path.
func readTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(-max, 2)
	}
	b := make([]byte, max)
	n, _ := f.Read(b)
	return strings.TrimSpace(string(b[:n]))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// suffix is ": out" for a non-empty out.
func suffix(out string) string {
	if out = strings.TrimSpace(out); out != "" {
		return ": " + out
	}
	return ""
}
