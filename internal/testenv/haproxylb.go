package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// HAProxyLB is a running HAProxy load balancer for blue/green tests, in
// master-worker mode with a master CLI socket.
type HAProxyLB struct {
	// Config is its configuration file, PIDFile the master's pid, and
	// MasterSocket the master CLI socket (haproxy -S).
	Config, PIDFile, MasterSocket string

	cmd *exec.Cmd
	log *HAProxyServer // only its log buffer
}

// Log returns what HAProxy wrote so far.
func (h *HAProxyLB) Log() string { return h.log.Log() }

// HAProxyConfig is a configuration for StartHAProxyLB: an HTTP frontend on
// 127.0.0.1:port whose default backend is "web", with servers (whole
// "server ..." lines, possibly none).
func HAProxyConfig(port int, servers ...string) string {
	cfg := fmt.Sprintf(`global
    log stderr format raw local0 notice
    hard-stop-after 30s

defaults
    mode http
    log global
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend public
    bind 127.0.0.1:%d
    default_backend web

backend web
`, port)
	for _, s := range servers {
		cfg += "    " + s + "\n"
	}
	return cfg
}

// StartHAProxyLB writes cfg to dir/haproxy.cfg and runs HAProxy on it
// for the test (haproxy -W -db -S dir/master.sock -p dir/haproxy.pid -f
// dir/haproxy.cfg, in its own process group), returning once addr (its
// frontend, host:port) accepts connections. It is stopped on cleanup.
func StartHAProxyLB(t testing.TB, dir, cfg, addr string) *HAProxyLB {
	t.Helper()
	bin := HAProxy(t)
	h := &HAProxyLB{
		Config:       filepath.Join(dir, "haproxy.cfg"),
		PIDFile:      filepath.Join(dir, "haproxy.pid"),
		MasterSocket: filepath.Join(dir, "master.sock"),
		log:          &HAProxyServer{},
	}
	if err := os.WriteFile(h.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var done <-chan struct{}
	h.cmd, done = runHAProxy(t, h.log, bin, "-W", "-db", "-S", h.MasterSocket, "-p", h.PIDFile, "-f", h.Config)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			if _, err := os.Stat(h.MasterSocket); err == nil {
				return h
			}
		}
		select {
		case <-done:
			t.Fatalf("haproxy exited at start:\n%s", h.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s within 15s:\n%s", addr, h.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
