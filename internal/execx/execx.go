package execx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StderrCap is how much of a failed command's stderr a CmdError keeps (the
// tail, where tools put the final reason).
const StderrCap = 1024

// passEnv lists the variables of homelab's own environment that every child
// inherits. Everything else must be set explicitly in Cmd.Env.
var passEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "LANG", "LC_ALL", "TZ", "XDG_CACHE_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// BaseEnv returns KEY=VALUE pairs for the variables in passEnv that are set.
func BaseEnv() []string {
	var env []string
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Cmd describes one external command.
type Cmd struct {
	Name string   // program, looked up in PATH
	Args []string // never secrets
	// Env is added to BaseEnv (later entries win). Secrets go here.
	Env []string
	// Secrets are redacted (replaced by "***") from error text and from
	// lines passed to OnStderr.
	Secrets []string
	Dir     string
	Stdin   io.Reader
	// Stdout receives the raw output when OnStdout is nil.
	Stdout io.Writer
	// OnStdout, when set, gets each line of stdout (without the newline).
	// Lines up to 64 MiB are supported.
	OnStdout func(line []byte)
	// OnStderr, when set, gets each line of stderr, redacted.
	OnStderr func(line string)
	// GracePeriod is how long a cancelled command has between SIGINT and
	// SIGKILL. Default 10s.
	GracePeriod time.Duration
	// OutlivesHomelab: the command goes on if homelab dies (no SIGTERM on
	// homelab's death, see Run). For commands that change a service's
	// state (docker compose up/stop, systemctl), which are better
	// finished than cut off halfway.
	OutlivesHomelab bool
	// Credential, when set, runs the command as that user and group (as
	// root: PostgreSQL's tools refuse to run as root).
	Credential *syscall.Credential
}

// CmdError is a command that could not start or exited non-zero.
type CmdError struct {
	Cmd      string // program and arguments, redacted
	ExitCode int    // -1 when it did not start or died by a signal
	Stderr   string // tail of stderr, at most StderrCap bytes, redacted
	Err      error
}

func (e *CmdError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if e.ExitCode >= 0 {
		msg = fmt.Sprintf("%s: exit status %d", e.Cmd, e.ExitCode)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

// Run runs c to completion. It returns nil on exit status 0, a *CmdError
// otherwise. When ctx is cancelled the child gets SIGINT, then SIGKILL
// after c.GracePeriod; the error then wraps ctx.Err().
func Run(ctx context.Context, c Cmd) error {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Env = append(append(BaseEnv(), MarkEnv(ctx)...), c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdin = c.Stdin
	// SIGINT to the child's whole process group, so `sh -c` hooks and
	// restic's --stdin-from-command child stop too.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = c.GracePeriod
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 10 * time.Second
	}
	// Own process group: a terminal's Ctrl-C reaches homelab, which then
	// interrupts children deliberately and in order. Being in their own
	// group, children would outlive a homelab killed with SIGKILL (a
	// restic holding its repository lock, a pg_dump holding a
	// connection): Pdeathsig sends them SIGTERM when homelab dies, which
	// restic and pg_dump handle by cleaning up (restic removes its lock).
	// Linux delivers it when the thread that started the child exits; Go
	// only ends a thread when a goroutine locked to it exits, which
	// nothing that calls Run does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if c.OutlivesHomelab {
		cmd.SysProcAttr.Pdeathsig = 0
	}
	cmd.SysProcAttr.Credential = c.Credential

	red := redactor(c.Secrets)
	tail := &tailBuffer{max: 8 * StderrCap}
	var wg sync.WaitGroup
	stderrR, stderrW := io.Pipe()
	cmd.Stderr = stderrW
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderrR)
		sc.Buffer(make([]byte, 64*1024), 16<<20)
		for sc.Scan() {
			line := red(sc.Text())
			tail.WriteString(line + "\n")
			if c.OnStderr != nil {
				c.OnStderr(line)
			}
		}
		io.Copy(io.Discard, stderrR)
	}()
	var stdoutR *io.PipeReader
	if c.OnStdout != nil {
		var stdoutW *io.PipeWriter
		stdoutR, stdoutW = io.Pipe()
		cmd.Stdout = stdoutW
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(stdoutR)
			sc.Buffer(make([]byte, 64*1024), 64<<20)
			for sc.Scan() {
				c.OnStdout(sc.Bytes())
			}
			io.Copy(io.Discard, stdoutR)
		}()
	} else {
		cmd.Stdout = c.Stdout
	}

	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	stderrW.Close()
	if w, ok := cmd.Stdout.(*io.PipeWriter); ok && stdoutR != nil {
		w.Close()
	}
	wg.Wait()
	if err == nil {
		return nil
	}
	ce := &CmdError{Cmd: red(strings.Join(append([]string{c.Name}, c.Args...), " ")), ExitCode: -1, Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitCode()
	}
	if ctx.Err() != nil {
		ce.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		ce.ExitCode = -1
	}
	ce.Stderr = capTail(tail.String(), StderrCap)
	return ce
}

// Output runs c and returns its stdout (c.Stdout and c.OnStdout are ignored).
func Output(ctx context.Context, c Cmd) ([]byte, error) {
	var buf bytes.Buffer
	c.Stdout, c.OnStdout = &buf, nil
	err := Run(ctx, c)
	return buf.Bytes(), err
}

func redactor(secrets []string) func(string) string {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, "***")
		}
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// Redact replaces every secret in s by "***".
func Redact(s string, secrets ...string) string { return redactor(secrets)(s) }

func capTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) WriteString(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, s...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// DockerVars are the variables of homelab's environment that tell the
// docker CLI which daemon to talk to (docker(1), "Environment
// variables"); they are passed on to docker when set.
var DockerVars = []string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION"}

// PassEnv returns NAME=value for each of names that lookup finds
// (os.LookupEnv when lookup is nil), for Cmd.Env.
func PassEnv(lookup func(string) (string, bool), names ...string) []string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var env []string
	for _, k := range names {
		if v, ok := lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
