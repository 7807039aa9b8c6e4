package logs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/testenv"
)

// composeProject is a real Compose project with one service, "app", whose
// container runs testdata/logger: silent until told to say lines.
type composeProject struct {
	t       *testing.T
	docker  string
	name    string
	file    string
	service string
}

func (p *composeProject) run(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.docker, args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (p *composeProject) compose(args ...string) string {
	p.t.Helper()
	return p.run(append([]string{"compose", "--ansi", "never", "-p", p.name, "-f", p.file}, args...)...)
}

// say makes the container log lines (on its stdout, or stderr).
func (p *composeProject) say(t *testing.T, stderr bool, lines ...string) {
	t.Helper()
	args := []string{"exec", "-T", p.service, "/logger", "say"}
	if stderr {
		args = append(args, "-stderr")
	}
	p.compose(append(args, lines...)...)
}

func randName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// startCompose builds the logger image (FROM scratch: nothing is pulled)
// and starts a project using it; both are removed when the test ends.
func startCompose(t *testing.T) *composeProject {
	t.Helper()
	docker := testenv.Docker(t)
	dir := t.TempDir()
	p := &composeProject{t: t, docker: docker, name: randName("homelab-logs-test-"), file: filepath.Join(dir, "compose.yaml"), service: "app"}
	image := randName("homelab-logs-test:")
	cleanup := func(args ...string) {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			exec.CommandContext(ctx, docker, args...).Run()
		})
	}
	cleanup("rmi", "--force", image) // registered first: runs after the project's removal
	testenv.ScratchImage(t, docker, "./testdata/logger", "logger", "", image,
		"FROM scratch\nCOPY logger /logger\nENTRYPOINT [\"/logger\"]\n")
	compose := "services:\n  app:\n    image: " + image + "\n    pull_policy: never\n    stop_grace_period: 1s\n"
	if err := os.WriteFile(p.file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	cleanup("compose", "-p", p.name, "-f", p.file, "down", "--volumes", "--timeout", "1")
	p.compose("up", "--detach")
	return p
}

// TestCompose runs the conformance suite against a real docker compose
// project, then what is Compose's own: stderr, the project found without
// its file, Compose's notes, and docker's failures.
func TestCompose(t *testing.T) {
	p := startCompose(t)
	notes := &syncBuffer{}
	src := &Compose{Project: p.name, Service: p.service, File: p.file, Docker: p.docker,
		Log: slog.New(slog.NewTextHandler(notes, nil))}
	testSource(t, sourceHarness{
		src: src,
		say: func(t *testing.T, lines ...string) { p.say(t, false, lines...) },
	})
	if t.Failed() {
		return
	}

	t.Run("stderr", func(t *testing.T) {
		p.say(t, true, "on stderr")
		waitSaid(t, src, "on stderr")
		// The text is the container's, exactly: no prefix, timestamp or
		// escape sequence of Compose's.
		if l := read(t, src, Options{Tail: 1}); l[0].Text != "on stderr" {
			t.Errorf("text %q, want %q", l[0].Text, "on stderr")
		}
	})

	t.Run("without the compose file", func(t *testing.T) {
		byLabel := &Compose{Project: p.name, Service: p.service, Docker: p.docker}
		expectLines(t, "tail 2", read(t, byLabel, Options{Tail: 2}), "d1", "on stderr")
	})

	t.Run("unknown service", func(t *testing.T) {
		bad := &Compose{Project: p.name, Service: "nope", File: p.file, Docker: p.docker}
		err := bad.Stream(context.Background(), Options{Tail: 1}, func(Line) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "docker compose logs nope (project "+p.name+"): no such service: nope") {
			t.Errorf("Stream = %v, want docker's reason", err)
		}
	})

	t.Run("daemon unreachable", func(t *testing.T) {
		env := map[string]string{"DOCKER_HOST": "unix://" + filepath.Join(t.TempDir(), "none.sock")}
		bad := &Compose{Project: p.name, Service: p.service, Docker: p.docker,
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
		err := bad.Stream(context.Background(), Options{Tail: 1}, func(Line) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "none.sock") {
			t.Errorf("Stream with DOCKER_HOST unreachable = %v, want an error naming it", err)
		}
	})

	// Last: it stops the container.
	t.Run("follow ends when the container stops", func(t *testing.T) {
		f := follow(t, src, Options{Tail: 1})
		f.expect("on stderr")
		p.compose("stop", "--timeout", "1", p.service)
		select {
		case <-f.done:
			if f.err != nil {
				t.Errorf("Stream = %v, want nil once Compose stops following", f.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Stream still following 30s after the container stopped")
		}
		if notes.count("exited with code") != 1 {
			t.Errorf("notes %q, want Compose's \"exited with code\" once", notes.b.String())
		}
		select {
		case l := <-f.lines:
			t.Errorf("line %q delivered; Compose's own output is a note, not a line", l.Text)
		default:
		}
	})
}

func TestComposeArgs(t *testing.T) {
	since := time.Date(2024, 3, 10, 11, 0, 0, 5e8, zone)
	tests := []struct {
		c    Compose
		opts Options
		want string
	}{
		{Compose{Project: "media", Service: "jellyfin"}, Options{Tail: -1},
			"compose --ansi never --project-name media logs --no-color --no-log-prefix --timestamps --tail all jellyfin"},
		{Compose{Project: "media", Service: "jellyfin", File: "/srv/media/compose.yaml"}, Options{Tail: 100, Follow: true, Since: since},
			"compose --ansi never --project-name media --file /srv/media/compose.yaml logs --no-color --no-log-prefix --timestamps --tail 100 --since 2024-03-10T10:00:00.5Z --follow jellyfin"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.c.Args(tt.opts), " "); got != tt.want {
			t.Errorf("Args(%+v) =\n%s\nwant\n%s", tt.opts, got, tt.want)
		}
	}
}

func TestParseDockerLine(t *testing.T) {
	ts := time.Date(2024, 3, 10, 11, 22, 33, 123456789, time.UTC)
	tests := []struct {
		in   string
		want Line
		ok   bool
	}{
		{"\x1b[2K2024-03-10T11:22:33.123456789Z GET / 200", Line{ts, "GET / 200"}, true},
		{"2024-03-10T11:22:33.123456789Z   indented \x1b[31mred\x1b[0m", Line{ts, "  indented \x1b[31mred\x1b[0m"}, true},
		{"\x1b[2K2024-03-10T11:22:33.123456789Z ", Line{ts, ""}, true},
		{"2024-03-10T11:22:33.123456789Z", Line{ts, ""}, true},
		{"app-1 exited with code 0", Line{Text: "app-1 exited with code 0"}, false},
	}
	for _, tt := range tests {
		got, ok := parseDockerLine([]byte(tt.in))
		if ok != tt.ok || got.Text != tt.want.Text || !got.Time.Equal(tt.want.Time) {
			t.Errorf("parseDockerLine(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestComposeWithoutPlugin: a docker without the compose plugin is said
// so, with the fix (a stand-in docker that answers as docker does).
func TestComposeWithoutPlugin(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "docker")
	script := "#!/bin/sh\necho \"docker: 'compose' is not a docker command.\" >&2\necho \"See 'docker --help'\" >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err := (&Compose{Project: "media", Service: "web", Docker: fake}).Stream(context.Background(), Options{Tail: 5}, func(Line) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "the docker compose v2 plugin is not installed") {
		t.Errorf("Stream = %v, want the missing plugin said", err)
	}
}
