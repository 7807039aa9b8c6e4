package health

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
)

func command(run string, timeout time.Duration) *lab.Health {
	return &lab.Health{Command: &lab.CommandProbe{Run: run, Timeout: timeout}}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	runConformance(t, conformance{
		kind:    lab.ProbeCommand,
		healthy: func(t *testing.T) *lab.Health { return command("true", 5*time.Second) },
		unhealthy: func(t *testing.T) (*lab.Health, string) {
			return command(`echo starting >&2; echo "disk full" >&2; echo ignored; exit 3`, 5*time.Second), "disk full (exit status 3)"
		},
		hang: func(t *testing.T, timeout time.Duration) (*lab.Health, Options) {
			return command("sleep 30", timeout), Options{}
		},
	})

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "worker.ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		probe   lab.CommandProbe
		healthy bool
		detail  string
	}{
		{"exit 0", lab.CommandProbe{Run: "exit 0"}, true, "exit 0 in "},
		{"in dir", lab.CommandProbe{Run: "test -f worker.ok", Dir: dir}, true, "exit 0"},
		{"not in dir", lab.CommandProbe{Run: "test -f worker.ok"}, false, "exit status 1"},
		{"no stderr", lab.CommandProbe{Run: "exit 4"}, false, "exit status 4"},
		{"not found", lab.CommandProbe{Run: "no-such-command-here"}, false, "not found (exit status 127)"},
		{"no such dir", lab.CommandProbe{Run: "true", Dir: filepath.Join(dir, "gone")}, false, "dir " + filepath.Join(dir, "gone") + ": no such file or directory"},
		{"ignores a trapped SIGINT past its grace", lab.CommandProbe{Run: "trap '' INT; sleep 3", Timeout: 500 * time.Millisecond}, false, "timed out after 500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.probe
			if p.Timeout == 0 {
				p.Timeout = 5 * time.Second
			}
			start := time.Now()
			r := Probe(t.Context(), service("worker", &lab.Health{Command: &p}), Options{})
			t.Logf("detail %q in %v", r.Detail, time.Since(start))
			if r.Healthy != tt.healthy || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("healthy=%v detail=%q, want %v and %q", r.Healthy, r.Detail, tt.healthy, tt.detail)
			}
			if took := time.Since(start); took > p.Timeout+commandGrace+time.Second {
				t.Errorf("took %v with a timeout of %v", took, p.Timeout)
			}
		})
	}
}
