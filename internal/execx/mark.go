package execx

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type markKey struct{}

// WithMark returns a context whose commands (Run, Output, and the exec
// runtime's commands, which call MarkEnv) get the environment variable
// kv ("KEY=VALUE") on top of their own, and on top of the marks ctx has
// already. Their children inherit it, so that a later process can find
// what a killed homelab left running (Marked). An upgrade marks its
// commands with HOMELAB_SAGA=<saga ID>, a backup run with
// HOMELAB_RUN=<run ID>.
func WithMark(ctx context.Context, kv string) context.Context {
	marks := append(append([]string(nil), MarkEnv(ctx)...), kv)
	return context.WithValue(ctx, markKey{}, marks)
}

// MarkEnv returns the marks of ctx as environment entries to append, or
// nothing.
func MarkEnv(ctx context.Context) []string {
	if marks, ok := ctx.Value(markKey{}).([]string); ok {
		return marks
	}
	return nil
}

// EndMarked ends the processes that carry the mark kv (Marked): SIGTERM,
// then SIGKILL to those still there after grace. It returns the processes
// it found, once they are gone from /proc (reaped, not zombies: a zombie
// still answers kill -0, which restic takes for a live lock holder), or
// after a second grace. It is for the leftovers of a homelab that died:
// the caller must know that no live homelab runs them (the run's lock is
// free).
func EndMarked(kv string, grace time.Duration) ([]Proc, error) {
	procs, err := Marked(kv)
	if err != nil || len(procs) == 0 {
		return procs, err
	}
	for _, p := range procs {
		syscall.Kill(p.PID, syscall.SIGTERM)
	}
	if awaitGone(procs, grace) {
		return procs, nil
	}
	// Only those still carrying the mark: a pid reused meanwhile by
	// another process is not killed.
	left, _ := Marked(kv)
	for _, p := range left {
		syscall.Kill(p.PID, syscall.SIGKILL)
	}
	awaitGone(left, grace)
	return procs, nil
}

// awaitGone waits up to limit until none of procs is in /proc any more
// (their parent, init, has reaped them); false if some still are.
func awaitGone(procs []Proc, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		gone := true
		for _, p := range procs {
			if _, err := os.Stat("/proc/" + strconv.Itoa(p.PID)); err == nil {
				gone = false
				break
			}
		}
		if gone {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
	}
}

// Proc is a process found by Marked.
type Proc struct {
	PID int
	// Cmd is its command line, arguments joined by spaces.
	Cmd string
}

// Marked returns the live processes whose environment holds kv exactly
// (read from /proc/PID/environ, Linux), in pid order: the commands of a
// marked context (WithMark) and their children, even after the homelab
// that started them died. Processes whose environment cannot be read
// (another user's, without root) are not seen; neither is this process.
func Marked(kv string) ([]Proc, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	want := []byte(kv)
	var out []Proc
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		if !containsEntry(env, want) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		out = append(out, Proc{PID: pid, Cmd: strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

// containsEntry reports whether the NUL-separated environ holds kv as a
// whole entry.
func containsEntry(environ, kv []byte) bool {
	for _, e := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(e, kv) {
			return true
		}
	}
	return false
}
