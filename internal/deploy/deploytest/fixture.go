// Package deploytest is the blue/green fixture that the deploy tests and
// the crash test share: testapp processes of two colors (the exec
// runtime) behind a real HAProxy on loopback, and a bounded load
// generator through it. It is imported by tests only.
package deploytest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/deploy"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/testenv"
)

// Versions of the testapp: v3 (2.x) never becomes healthy.
const (
	V1 = "1.0.0"
	V2 = "1.0.5"
	V3 = "2.0.0"
)

// Fixture is a blue/green service of testapp processes (the exec
// runtime) behind a real HAProxy on loopback, with blue serving v1.
type Fixture struct {
	Dir   string
	Lab   *lab.Lab
	Store *catalog.SQLite
	// D deploys as user tester on host testhost.
	D  *deploy.Deployer
	LB *testenv.HAProxyLB
	// Public is http://127.0.0.1:PORT/version, through HAProxy.
	Public string
}

type Options struct {
	// Reload is the lab's haproxy.reload section (YAML flow mapping);
	// default the master socket.
	Reload string
	// ServerOptions is haproxy.server_options.
	ServerOptions string
	// Migrations: the lab names dir/migrations.
	Migrations bool
	// HealthyWithin is deploy.healthy_within; default 20s.
	HealthyWithin string
}

// colorYAML is one color's section: the testapp started on the version
// in <color>.version, stopped by SIGTERM (it removes its pid file).
const colorYAML = `
        %[1]s:
          address: 127.0.0.1:%[2]d
          health: {http: {url: "http://127.0.0.1:%[2]d/healthz", expect: 200, timeout: 2s}}
          runtime:
            exec:
              start: nohup %[3]s serve -addr 127.0.0.1:%[2]d -version "$(cat %[1]s.version)" -pidfile %[1]s.pid > %[1]s.log 2>&1 &
              stop: if [ -s %[1]s.pid ]; then kill "$(cat %[1]s.pid)"; fi
              pid_file: %[1]s.pid
              version: cat %[1]s.version
              set_version: echo {{.Version}} > %[1]s.version
              timeout: 20s`

// New makes the fixture: a lab file in a temporary directory, HAProxy
// running, blue started on v1 and answering through HAProxy, the catalog
// open. Everything is stopped on cleanup.
func New(t testing.TB, o Options) *Fixture {
	t.Helper()
	bin := testenv.TestApp(t, V1) // -version makes it any version
	dir := t.TempDir()
	ports := map[string]int{lab.Blue: testenv.FreePort(t), lab.Green: testenv.FreePort(t)}
	front := testenv.FreePort(t)
	lb := testenv.StartHAProxyLB(t, dir, testenv.HAProxyConfig(front, fmt.Sprintf("server blue 127.0.0.1:%d", ports[lab.Blue])), fmt.Sprintf("127.0.0.1:%d", front))
	if o.HealthyWithin == "" {
		o.HealthyWithin = "20s"
	}
	if o.Reload == "" {
		o.Reload = "{master_socket: master.sock}"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: bg\nstate_dir: state\nservices:\n  web:\n    deploy:\n      public_url: http://127.0.0.1:%d/version\n      healthy_within: %s\n", front, o.HealthyWithin)
	if o.Migrations {
		b.WriteString("      migrations: migrations\n")
	}
	fmt.Fprintf(&b, "      haproxy: {config: haproxy.cfg, backend: web, reload: %s, server_options: %q}\n      colors:", o.Reload, o.ServerOptions)
	for _, c := range lab.Colors {
		fmt.Fprintf(&b, colorYAML, c, ports[c], bin)
	}
	b.WriteString("\n")
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	store, err := catalog.Open(t.Context(), filepath.Join(dir, "state", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &Fixture{Dir: dir, Lab: l, Store: store, LB: lb, Public: fmt.Sprintf("http://127.0.0.1:%d/version", front),
		D: &deploy.Deployer{Lab: l, Catalog: store, Who: "tester", Host: "testhost"}}
	t.Cleanup(func() { // the testapps outlive their start commands
		for _, c := range lab.Colors {
			if pid, err := os.ReadFile(filepath.Join(dir, c+".pid")); err == nil {
				if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
					syscall.Kill(n, syscall.SIGKILL)
				}
			}
		}
	})
	// Blue serves v1 before homelab knows the service.
	if err := os.WriteFile(filepath.Join(dir, "blue.version"), []byte(V1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Runtime(t, lab.Blue).Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.AwaitPublic(t, V1)
	return f
}

// Runtime is color's runtime.
func (f *Fixture) Runtime(t testing.TB, color string) runtime.Runtime {
	t.Helper()
	c := f.Lab.Services["web"].Deploy.Colors.Color(color)
	rt, err := runtime.New(c.Service("web", color), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// State is color's run state.
func (f *Fixture) State(t testing.TB, color string) runtime.State {
	t.Helper()
	st, err := f.Runtime(t, color).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.State
}

// Answer is one GET of the public URL: the version that answers.
func (f *Fixture) Answer(c *http.Client) (string, error) {
	resp, err := c.Get(f.Public)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// AwaitPublic waits until the public URL answers v.
func (f *Fixture) AwaitPublic(t testing.TB, v string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := f.Answer(c)
		if err == nil && got == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("public URL answers %q, %v; want %s\nHAProxy:\n%s", got, err, v, f.LB.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Load is a bounded load generator through HAProxy: workers GET the
// public URL in a loop, half over kept-alive connections and half with a
// new connection per request, until stop is called and at least min
// requests were sent.
type Load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	seen       map[string]int64
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

// StartLoad starts the load, returning after its first 100 requests.
func (f *Fixture) StartLoad(t testing.TB, min int64) *Load {
	t.Helper()
	l := &Load{seen: map[string]int64{}, stop: make(chan struct{})}
	for i := range 8 {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1}}
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					if l.ok.Load()+l.failed.Load() >= min {
						return
					}
				default:
				}
				time.Sleep(2 * time.Millisecond) // bounded: at most ~4000 requests a second
				v, err := f.Answer(c)
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					if len(l.errs) < 10 {
						l.errs = append(l.errs, err.Error())
					}
				} else {
					l.ok.Add(1)
					l.seen[v]++
				}
				l.mu.Unlock()
			}
		})
	}
	// Let it run before the change begins.
	for l.ok.Load()+l.failed.Load() < 100 {
		time.Sleep(10 * time.Millisecond)
	}
	return l
}

// End stops the load and fails the test on any failed request.
func (l *Load) End(t testing.TB) map[string]int64 {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("load: %d requests ok, %d failed, versions seen %v", l.ok.Load(), l.failed.Load(), l.seen)
	if l.failed.Load() != 0 {
		t.Errorf("%d requests failed: %v", l.failed.Load(), l.errs)
	}
	return l.seen
}

// Deploy plans and runs a deploy of web at v.
func (f *Fixture) Deploy(t testing.TB, v string, o deploy.Options) (saga.Record, error) {
	t.Helper()
	p, err := f.D.PlanDeploy(t.Context(), "web", v, o)
	if err != nil {
		return saga.Record{}, err
	}
	return f.D.Run(t.Context(), p)
}

// History is web's deploy records, newest first.
func (f *Fixture) History(t testing.TB) []catalog.Deploy {
	t.Helper()
	h, err := f.D.History(t.Context(), "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Homelab is the command `homelab --lab LAB ARGS...` in the fixture's
// directory: the homelab in PATH (an end-to-end test's TestMain puts this
// build there).
func (f *Fixture) Homelab(args ...string) *exec.Cmd {
	cmd := exec.Command("homelab", append([]string{"--lab", f.Lab.Path}, args...)...)
	cmd.Dir = f.Dir
	return cmd
}
