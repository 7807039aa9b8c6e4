package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// logsLab writes a lab file whose services have every kind of log source
// (and none), and web's log file with lines.
func logsLab(t *testing.T, webLog string) string {
	t.Helper()
	dir := t.TempDir()
	lab := `name: logs
services:
  web:
    runtime: {exec: {start: "true", stop: "true", status: "true"}}
    logs: {file: logs/web.log}
  worker:
    runtime: {exec: {start: "true", stop: "true", status: "true"}}
  cache:
    runtime: {systemd: {unit: redis.service}}
  probe-only:
    health: {tcp: {address: "127.0.0.1:6379"}}
  gone:
    logs: {file: logs/gone.log}
`
	if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "logs", "web.log"), []byte(webLog), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLogsOptions(t *testing.T) {
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	dir := logsLab(t, "")
	tests := []struct {
		args    []string
		tail    int
		follow  bool
		since   time.Time
		wantErr string
	}{
		{args: []string{"web"}, tail: DefaultLogsTail},
		{args: []string{"web", "--tail", "5", "--follow"}, tail: 5, follow: true},
		{args: []string{"web", "-n", "all", "-f"}, tail: -1, follow: true},
		{args: []string{"web", "--tail", "0", "-f"}, tail: 0, follow: true},
		{args: []string{"web", "--since", "10m"}, tail: -1, since: now.Add(-10 * time.Minute)},
		{args: []string{"web", "--since", "2024-03-10T08:00:00Z", "--tail", "3"}, tail: 3, since: time.Date(2024, 3, 10, 8, 0, 0, 0, time.UTC)},
		{args: []string{"nope"}, wantErr: `unknown service "nope" (known: cache, gone, probe-only, web, worker)`},
		{args: []string{}, wantErr: "accepts 1 arg(s), received 0"},
		{args: []string{"web", "worker"}, wantErr: "accepts 1 arg(s), received 2"},
		{args: []string{"web", "--tail", "-1"}, wantErr: `bad --tail "-1"`},
		{args: []string{"web", "--tail", "lots"}, wantErr: `bad --tail "lots"`},
		{args: []string{"web", "--since", "yesterday"}, wantErr: `bad --since "yesterday"`},
		{args: []string{"web", "--since", "-5m"}, wantErr: `bad --since "-5m"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := &Factory{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, LabFlag: filepath.Join(dir, "lab.yaml"),
				Now: func() time.Time { return now }}
			var got *LogsOptions
			cmd := NewCmdLogs(f, func(o *LogsOptions) error { got = o; return nil })
			cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr(err.Error()) })
			cmd.SetArgs(tt.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || ExitCode(err) != ExitUsage {
					t.Fatalf("err = %v (exit %d), want usage error %q", err, ExitCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Service != tt.args[0] || got.Tail != tt.tail || got.Follow != tt.follow || !got.Since.Equal(tt.since) {
				t.Errorf("options %+v, want service %s, tail %d, follow %v, since %v", got, tt.args[0], tt.tail, tt.follow, tt.since)
			}
		})
	}
}

// lockedBuffer is an output written by a running command and read by the
// test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runLogs runs homelab as Main does and returns stdout, stderr and the
// exit code.
func execLogs(ctx context.Context, dir string, args ...string) (string, string, int) {
	var out, errOut lockedBuffer
	code := Run(ctx, &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, append([]string{"--lab", filepath.Join(dir, "lab.yaml"), "logs"}, args...))
	return out.String(), errOut.String(), code
}

func TestLogsRun(t *testing.T) {
	now := time.Now()
	stamp := func(ago time.Duration, s string) string { return now.Add(-ago).UTC().Format(time.RFC3339) + " " + s }
	var webLog strings.Builder
	for i, ago := range []time.Duration{3 * time.Hour, 2 * time.Hour, time.Hour, 20 * time.Minute, time.Minute} {
		webLog.WriteString(stamp(ago, "line "+string(rune('1'+i))) + "\n")
	}
	webLog.WriteString("\tcontinues line 5\n")
	dir := logsLab(t, webLog.String())
	ctx := context.Background()

	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // lines, exactly
		inStderr string
	}{
		{"tail", []string{"web", "--tail", "2"}, 0, []string{stamp(time.Minute, "line 5"), "\tcontinues line 5"}, ""},
		{"default tail: all 6 of them", []string{"web"}, 0, strings.Split(strings.TrimSuffix(webLog.String(), "\n"), "\n"), ""},
		{"since a duration", []string{"web", "--since", "30m"}, 0, []string{stamp(20*time.Minute, "line 4"), stamp(time.Minute, "line 5"), "\tcontinues line 5"}, ""},
		{"since with tail", []string{"web", "--since", "30m", "-n", "1"}, 0, []string{"\tcontinues line 5"}, ""},
		{"unknown service", []string{"nope"}, ExitUsage, nil, `homelab: unknown service "nope" (known: cache, gone, probe-only, web, worker)`},
		{"exec runtime without logs.file", []string{"worker"}, ExitUsage, nil,
			"homelab: service worker: no log source: an exec runtime keeps no logs: set services.worker.logs.file in " + filepath.Join(dir, "lab.yaml")},
		{"no runtime, no logs.file", []string{"probe-only"}, ExitUsage, nil,
			"homelab: service probe-only: no log source: set services.probe-only.logs.file in " + filepath.Join(dir, "lab.yaml")},
		// The unit's journal, read with journalctl: on a machine without
		// journald (as this one), or where redis.service never logged,
		// journalctl finds no entries and says nothing.
		{"systemd: the journal, here empty", []string{"cache"}, 0, nil, ""},
		{"log file missing", []string{"gone"}, ExitFailed, nil, "homelab: logs of gone (file " + filepath.Join(dir, "logs", "gone.log") + "): open " + filepath.Join(dir, "logs", "gone.log") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := execLogs(ctx, dir, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			var want string
			if tt.stdout != nil {
				want = strings.Join(tt.stdout, "\n") + "\n"
			}
			if out != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
			}
			if !strings.Contains(errOut, tt.inStderr) || (tt.inStderr == "" && errOut != "") {
				t.Errorf("stderr %q, want %q", errOut, tt.inStderr)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		out, errOut, code := execLogs(ctx, dir, "--json", "web", "--tail", "2")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("stdout %q, want 2 JSON lines", out)
		}
		var first, second map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
			t.Fatal(err)
		}
		wantTime := now.Add(-time.Minute).UTC().Truncate(time.Second).Format(time.RFC3339)
		if first["message_type"] != "log_line" || first["service"] != "web" || first["text"] != stamp(time.Minute, "line 5") || first["time"] != wantTime {
			t.Errorf("first line %v, want log_line of web at %s", first, wantTime)
		}
		if _, ok := second["time"]; ok || second["text"] != "\tcontinues line 5" {
			t.Errorf("second line %v, want no time (the line has none)", second)
		}
	})
}

// TestLogsFollowInterrupted: a follow prints new lines as they come and
// ends with exit 130, and nothing on stderr, when interrupted.
func TestLogsFollowInterrupted(t *testing.T) {
	dir := logsLab(t, "old 1\nold 2\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
			[]string{"--lab", filepath.Join(dir, "lab.yaml"), "logs", "web", "--tail", "1", "--follow"})
	}()
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("stdout %q after 10s, want %q (stderr %q)", out.String(), want, errOut.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitOutput("old 2\n")
	w, err := os.OpenFile(filepath.Join(dir, "logs", "web.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("new 1\n"); err != nil {
		t.Fatal(err)
	}
	waitOutput("old 2\nnew 1\n")
	cancel()
	select {
	case code := <-done:
		if code != ExitInterrupted {
			t.Errorf("exit %d, want %d", code, ExitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("homelab logs --follow still running 10s after the interrupt")
	}
	if errOut.String() != "" {
		t.Errorf("stderr %q, want nothing", errOut.String())
	}
}

// TestLogsDefaultTail: without --tail (nor --since), the last
// DefaultLogsTail lines.
func TestLogsDefaultTail(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 150; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	dir := logsLab(t, b.String())
	out, errOut, code := execLogs(context.Background(), dir, "web")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != DefaultLogsTail || lines[0] != "line 51" || lines[99] != "line 150" {
		t.Errorf("exit %d, %d lines from %q to %q, want %d lines from line 51 to line 150 (stderr %q)",
			code, len(lines), lines[0], lines[len(lines)-1], DefaultLogsTail, errOut)
	}
}
