package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// HAProxyMinVersion is the oldest HAProxy the tests use: master-worker
// mode (-W) with seamless reloads on SIGUSR2 to the master.
var HAProxyMinVersion = [2]int{2, 0}

var haproxyVersion = regexp.MustCompile(`(?m)^HA-?Proxy version (\d+)\.(\d+)`)

// HAProxy returns the path of an haproxy >= HAProxyMinVersion:
// $HOMELAB_HAPROXY, else haproxy in PATH, else /usr/sbin/haproxy (where
// Debian installs it, often outside a user's PATH).
func HAProxy(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("HOMELAB_HAPROXY")
	if bin == "" {
		if p, err := exec.LookPath("haproxy"); err == nil {
			bin = p
		} else if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
			bin = "/usr/sbin/haproxy"
		} else {
			Missing(t, "haproxy not found in PATH or /usr/sbin")
		}
	}
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		Missing(t, "%s -v: %v", bin, err)
	}
	m := haproxyVersion.FindSubmatch(out)
	if m == nil {
		Missing(t, "%s -v: no version in %q", bin, out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if major < HAProxyMinVersion[0] || major == HAProxyMinVersion[0] && minor < HAProxyMinVersion[1] {
		Missing(t, "haproxy %d.%d is older than %d.%d", major, minor, HAProxyMinVersion[0], HAProxyMinVersion[1])
	}
	return bin
}

// HAProxyServer is a running HAProxy terminating TLS on 127.0.0.1.
type HAProxyServer struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// PIDFile holds the master's pid: SIGUSR2 to it reloads the
	// configuration and the certificates.
	PIDFile string
	// Config is the configuration file.
	Config string

	cmd *exec.Cmd
	mu  sync.Mutex
	log bytes.Buffer
}

// Log returns what HAProxy wrote so far (its log goes to stderr).
func (h *HAProxyServer) Log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.String()
}

func (h *HAProxyServer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Write(p)
}

// StartHAProxy runs HAProxy for the test, in master-worker mode in the
// foreground (haproxy -W -db -p PIDFILE -f CFG) as a child process in its
// own process group, serving crt (a PEM file with the certificate and its
// key) on a free port of 127.0.0.1; every HTTP request gets "ok". It
// returns once a TLS handshake succeeds, and stops HAProxy on cleanup.
//
// A reload is SIGUSR2 to the master (the pid in PIDFile): the master
// re-executes itself, loads the configuration and certificates again and
// starts new workers, which take over the listening sockets; the old
// workers finish. When the new configuration does not load (a certificate
// whose key does not match, say), the master logs "Loading failure!" and
// the old workers keep serving the old certificate. The master drops a
// SIGUSR2 that arrives while it is still finishing a load (for about
// 100 ms after it logs "Loading success", at start and after each
// reload): a second reload right after a first is lost, which is why
// homelab repeats signal reloads until the TLS check sees the new
// certificate. While it reloads, the master blocks SIGUSR2: a signal sent
// then starts another reload as soon as the first ends, when its new
// worker is often still starting (under load) and cannot hand over the
// listening sockets within the master's 1 s ("Failed to get the sockets
// from the old process!"); the master then binds new ones, which is not
// seamless. homelab does not repeat a signal the process still blocks.
func StartHAProxy(t testing.TB, crt string) *HAProxyServer {
	t.Helper()
	bin := HAProxy(t)
	dir := t.TempDir()
	h := &HAProxyServer{
		Addr:    fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		PIDFile: filepath.Join(dir, "haproxy.pid"),
		Config:  filepath.Join(dir, "haproxy.cfg"),
	}
	cfg := fmt.Sprintf(`global
  log stderr format raw local0 notice
  hard-stop-after 5s
defaults
  mode http
  log global
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend tls
  bind %s ssl crt %s
  http-request return status 200 content-type text/plain string ok
`, h.Addr, crt)
	if err := os.WriteFile(h.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var done <-chan struct{}
	h.cmd, done = runHAProxy(t, h, bin, "-W", "-db", "-p", h.PIDFile, "-f", h.Config)
	deadline := time.Now().Add(15 * time.Second)
	for {
		pid, _ := os.ReadFile(h.PIDFile)
		if strings.TrimSpace(string(pid)) != "" && handshake(h.Addr) == nil {
			return h
		}
		select {
		case <-done:
			t.Fatalf("haproxy exited at start:\n%s", h.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not serve TLS on %s within 15s:\n%s", h.Addr, h.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runHAProxy starts bin with args in its own process group, its output
// to log, and stops it on cleanup (SIGTERM to the master, then SIGKILL to
// the group after 10s); done is closed when it has exited.
func runHAProxy(t testing.TB, log io.Writer, bin string, args ...string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd, done
}

func handshake(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: &tls.Config{InsecureSkipVerify: true}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}
