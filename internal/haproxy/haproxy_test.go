package haproxy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/haproxy"
	"homelab/internal/testenv"
)

const cfg = `global
    log stderr format raw local0 notice

defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend public
    bind 127.0.0.1:18080
    default_backend web

backend web
    # homelab writes the server lines
    balance roundrobin
    server blue 127.0.0.1:8081 check
    server old 127.0.0.1:9 disabled

backend other
    server x 127.0.0.1:9
`

// TestRender: the backend's server lines are replaced by one, where the
// first was; every other line, and the other backend, is kept.
func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name, color, addr, opts string
		want                    string
	}{
		{"green", "green", "127.0.0.1:8082", "check inter 1s",
			"    balance roundrobin\n    server green 127.0.0.1:8082 check inter 1s\n\nbackend other\n"},
		{"none", "", "", "", "    balance roundrobin\n\nbackend other\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := haproxy.Render([]byte(cfg), "web", tc.color, tc.addr, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "backend other\n    server x 127.0.0.1:9\n") {
				t.Errorf("rendered:\n%s", out)
			}
			if strings.Count(string(out), "\n") != strings.Count(cfg, "\n")-2+min(1, len(tc.color)) {
				t.Errorf("lines added or lost:\n%s", out)
			}
			active, err := haproxy.Active(out, "web")
			if err != nil || active != tc.color {
				t.Errorf("Active = %q, %v; want %q", active, err, tc.color)
			}
		})
	}
	// A backend with no server line yet gets one after its last line.
	out, err := haproxy.Render([]byte("backend web\n    balance first\n\nlisten stats\n    bind :9\n"), "web", "blue", "127.0.0.1:1", "")
	if err != nil || string(out) != "backend web\n    balance first\n    server blue 127.0.0.1:1\n\nlisten stats\n    bind :9\n" {
		t.Errorf("Render into an empty backend: %q, %v", out, err)
	}
	if _, err := haproxy.Render([]byte(cfg), "nope", "blue", "127.0.0.1:1", ""); !errors.Is(err, haproxy.ErrNoBackend) {
		t.Errorf("unknown backend: %v", err)
	}
	if active, err := haproxy.Active([]byte(cfg), "web"); active != "blue" || err != nil {
		t.Errorf("Active skips disabled servers: %q, %v", active, err)
	}
	if _, err := haproxy.Active([]byte("backend web\n  server a 1.1.1.1:1\n  server b 1.1.1.1:2\n"), "web"); err == nil {
		t.Error("two enabled servers: no error")
	}
}

// TestSwap against the real haproxy -c: a good configuration replaces the
// file; a refused one leaves it as it was, says why, and leaves no check
// file.
func TestSwap(t *testing.T) {
	bin := testenv.HAProxy(t)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	good, _ := haproxy.Render([]byte(cfg), "web", "green", "127.0.0.1:8082", "check")
	if err := haproxy.Swap(t.Context(), bin, path, good, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(good) {
		t.Errorf("not swapped:\n%s", b)
	}
	bad, _ := haproxy.Render(good, "web", "blue", "127.0.0.1:8081", "bogus-keyword")
	err := haproxy.Swap(t.Context(), bin, path, bad, 30*time.Second)
	var ce *haproxy.CheckError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "unknown keyword 'bogus-keyword'") {
		t.Fatalf("bad configuration: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(good) {
		t.Errorf("a refused configuration was swapped in:\n%s", b)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*homelab-check*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}
