package execx

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunExitCodeAndRedactedStderr(t *testing.T) {
	err := Run(context.Background(), Cmd{
		Name:    "sh",
		Args:    []string{"-c", `echo "auth failed for s3cret" >&2; exit 7`},
		Secrets: []string{"s3cret"},
	})
	var ce *CmdError
	if !errors.As(err, &ce) {
		t.Fatalf("want *CmdError, got %v", err)
	}
	if ce.ExitCode != 7 {
		t.Errorf("exit code = %d, want 7", ce.ExitCode)
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(ce.Stderr, "auth failed for ***") {
		t.Errorf("secret not redacted: %q", err.Error())
	}
}

func TestRunEnvIsExplicit(t *testing.T) {
	t.Setenv("HOMELAB_LEAK", "x")
	out, err := Output(context.Background(), Cmd{Name: "sh", Args: []string{"-c", `echo "$HOMELAB_LEAK|$MINE"`}, Env: []string{"MINE=y"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "|y" {
		t.Errorf("got %q, want only the explicit variable", got)
	}
}

func TestRunStderrCapped(t *testing.T) {
	err := Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", `i=0; while [ $i -lt 500 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; exit 1`}})
	var ce *CmdError
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	if len(ce.Stderr) > StderrCap+8 || !strings.Contains(ce.Stderr, "line 499") {
		t.Errorf("stderr not capped to its tail: %d bytes", len(ce.Stderr))
	}
}

func TestRunLines(t *testing.T) {
	var lines []string
	err := Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "printf 'a\\nb\\nc'"}, OnStdout: func(b []byte) { lines = append(lines, string(b)) }})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, ",") != "a,b,c" {
		t.Errorf("lines = %q", lines)
	}
}

func TestRunCancelSendsInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var out []string
	err := Run(ctx, Cmd{
		Name:     "sh",
		Args:     []string{"-c", `trap 'echo got-int; exit 130' INT; while true; do sleep 0.05; done`},
		OnStdout: func(b []byte) { out = append(out, string(b)) },
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
	if strings.Join(out, "") != "got-int" {
		t.Errorf("child did not see SIGINT: %q", out)
	}
}

func TestPassEnv(t *testing.T) {
	env := map[string]string{"DOCKER_HOST": "unix:///x.sock", "OTHER": "y"}
	got := PassEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, DockerVars...)
	if len(got) != 1 || got[0] != "DOCKER_HOST=unix:///x.sock" {
		t.Fatalf("PassEnv = %q", got)
	}
}
