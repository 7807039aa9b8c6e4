package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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
	v1 = "1.0.0"
	v2 = "1.0.5"
	v3 = "2.0.0"
)

// fixture is a blue/green service of testapp processes (the exec
// runtime) behind a real HAProxy on loopback, with blue serving v1.
type fixture struct {
	dir    string
	lab    *lab.Lab
	store  *catalog.SQLite
	d      *deploy.Deployer
	lb     *testenv.HAProxyLB
	public string // http://127.0.0.1:PORT/version
}

type fixtureOptions struct {
	// reload is the lab's haproxy.reload section (YAML flow mapping);
	// default the master socket.
	reload string
	// serverOptions is haproxy.server_options.
	serverOptions string
	// migrations: the lab names dir/migrations.
	migrations bool
	// healthyWithin is deploy.healthy_within; default 20s.
	healthyWithin string
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

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	bin := testenv.TestApp(t, v1) // -version makes it any version
	dir := t.TempDir()
	ports := map[string]int{lab.Blue: testenv.FreePort(t), lab.Green: testenv.FreePort(t)}
	front := testenv.FreePort(t)
	lb := testenv.StartHAProxyLB(t, dir, testenv.HAProxyConfig(front, fmt.Sprintf("server blue 127.0.0.1:%d", ports[lab.Blue])), fmt.Sprintf("127.0.0.1:%d", front))
	if o.healthyWithin == "" {
		o.healthyWithin = "20s"
	}
	if o.reload == "" {
		o.reload = "{master_socket: master.sock}"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: bg\nstate_dir: state\nservices:\n  web:\n    deploy:\n      public_url: http://127.0.0.1:%d/version\n      healthy_within: %s\n", front, o.healthyWithin)
	if o.migrations {
		b.WriteString("      migrations: migrations\n")
	}
	fmt.Fprintf(&b, "      haproxy: {config: haproxy.cfg, backend: web, reload: %s, server_options: %q}\n      colors:", o.reload, o.serverOptions)
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
	f := &fixture{dir: dir, lab: l, store: store, lb: lb, public: fmt.Sprintf("http://127.0.0.1:%d/version", front),
		d: &deploy.Deployer{Lab: l, Catalog: store, Who: "tester", Host: "testhost"}}
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
	if err := os.WriteFile(filepath.Join(dir, "blue.version"), []byte(v1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.runtime(t, lab.Blue).Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.awaitPublic(t, v1)
	return f
}

func (f *fixture) runtime(t *testing.T, color string) runtime.Runtime {
	t.Helper()
	c := f.lab.Services["web"].Deploy.Colors.Color(color)
	rt, err := runtime.New(c.Service("web", color), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func (f *fixture) state(t *testing.T, color string) runtime.State {
	t.Helper()
	st, err := f.runtime(t, color).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.State
}

// answer is one GET of the public URL.
func (f *fixture) answer(c *http.Client) (string, error) {
	resp, err := c.Get(f.public)
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

// awaitPublic waits until the public URL answers v.
func (f *fixture) awaitPublic(t *testing.T, v string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := f.answer(c)
		if err == nil && got == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("public URL answers %q, %v; want %s\nHAProxy:\n%s", got, err, v, f.lb.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load is a bounded load generator through HAProxy: workers GET the
// public URL in a loop, half over kept-alive connections and half with a
// new connection per request, until stop is called and at least min
// requests were sent.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	seen       map[string]int64
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (f *fixture) startLoad(t *testing.T, min int64) *load {
	t.Helper()
	l := &load{seen: map[string]int64{}, stop: make(chan struct{})}
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
				v, err := f.answer(c)
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

// end stops the load and fails the test on any failed request.
func (l *load) end(t *testing.T) map[string]int64 {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("load: %d requests ok, %d failed, versions seen %v", l.ok.Load(), l.failed.Load(), l.seen)
	if l.failed.Load() != 0 {
		t.Errorf("%d requests failed: %v", l.failed.Load(), l.errs)
	}
	return l.seen
}

func (f *fixture) deploy(t *testing.T, v string, o deploy.Options) (saga.Record, error) {
	t.Helper()
	p, err := f.d.PlanDeploy(t.Context(), "web", v, o)
	if err != nil {
		return saga.Record{}, err
	}
	return f.d.Run(t.Context(), p)
}

func (f *fixture) history(t *testing.T) []catalog.Deploy {
	t.Helper()
	h, err := f.d.History(t.Context(), "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDeployAndRollbackUnderLoad: v2 is deployed next to v1 while a few
// thousand requests go through HAProxy: none fails, the public URL then
// answers v2, and the history has the deploy; the fast rollback to v1,
// under the same load, fails none either and keeps v2 running.
func TestDeployAndRollbackUnderLoad(t *testing.T) {
	f := newFixture(t, fixtureOptions{})

	l := f.startLoad(t, 3000)
	rec, err := f.deploy(t, v2, deploy.Options{})
	if err != nil {
		t.Fatalf("deploy: %v\nHAProxy:\n%s", err, f.lb.Log())
	}
	seen := l.end(t)
	if rec.State != saga.Done || seen[v2] == 0 {
		t.Errorf("deploy %s; versions seen %v", rec.State, seen)
	}
	if got, err := f.answer(http.DefaultClient); got != v2 || err != nil {
		t.Errorf("public URL answers %q, %v; want %s", got, err, v2)
	}
	h := f.history(t)
	if len(h) != 1 || h[0].Kind != catalog.DeployNew || h[0].ToColor != lab.Green || h[0].ToVersion != v2 ||
		h[0].FromColor != lab.Blue || h[0].FromVersion != v1 || h[0].Who != "tester" || h[0].Host != "testhost" {
		t.Errorf("history %+v", h)
	}
	if f.state(t, lab.Blue) != runtime.Running {
		t.Error("blue (v1) is not kept running for a fast rollback")
	}

	l = f.startLoad(t, 3000)
	start := time.Now()
	p, err := f.d.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Reason: "v2 slow"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Start || p.To != (deploy.Side{Color: lab.Blue, Version: v1}) {
		t.Errorf("rollback plan %+v", p)
	}
	if _, err := f.d.Run(t.Context(), p); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	t.Logf("fast rollback (plan, check, flip, verify, record) took %s", time.Since(start))
	seen = l.end(t)
	if seen[v1] == 0 {
		t.Errorf("versions seen %v", seen)
	}
	if got, _ := f.answer(http.DefaultClient); got != v1 {
		t.Errorf("public URL answers %q after the rollback; want %s", got, v1)
	}
	h = f.history(t)
	if len(h) != 2 || h[0].Kind != catalog.DeployRollback || h[0].Reason != "v2 slow" || h[0].ToColor != lab.Blue || h[0].FromVersion != v2 {
		t.Errorf("history after the rollback %+v", h)
	}
	if f.state(t, lab.Green) != runtime.Running {
		t.Error("green (v2) stopped by the rollback")
	}
}

// TestDeployHealthGateFails: v3 never passes its probe: traffic never
// leaves v2, the v3 color ends stopped, exit with the reason.
func TestDeployHealthGateFails(t *testing.T) {
	f := newFixture(t, fixtureOptions{healthyWithin: "8s"})
	if _, err := f.deploy(t, v2, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(f.lb.Config)
	l := f.startLoad(t, 500)
	rec, err := f.deploy(t, v3, deploy.Options{})
	seen := l.end(t)
	var se *saga.Error
	if !errors.As(err, &se) || rec.State != saga.Compensated || !strings.Contains(err.Error(), "health probe") {
		t.Fatalf("deploy of v3: %s, %v; want compensated after the health gate", rec.State, err)
	}
	if len(seen) != 1 || seen[v2] == 0 {
		t.Errorf("traffic left v2: %v", seen)
	}
	if after, _ := os.ReadFile(f.lb.Config); string(after) != string(before) {
		t.Errorf("HAProxy's configuration changed:\n%s", after)
	}
	if f.state(t, lab.Blue) != runtime.Stopped {
		t.Error("the v3 color (blue) still runs")
	}
	if h := f.history(t); len(h) != 1 || h[0].ToVersion != v2 {
		t.Errorf("history %+v", h)
	}
}

// TestDeployConfigRefused: a server line HAProxy refuses: nothing is
// swapped, v1 still serves, the new color is stopped.
func TestDeployConfigRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{serverOptions: "no-such-keyword", reload: "{pid_file: haproxy.pid}"})
	before, _ := os.ReadFile(f.lb.Config)
	rec, err := f.deploy(t, v2, deploy.Options{})
	if err == nil || rec.State != saga.Compensated || !strings.Contains(err.Error(), "haproxy -c refused") || !strings.Contains(err.Error(), "no-such-keyword") {
		t.Fatalf("deploy: %s, %v; want compensated, haproxy -c refused", rec.State, err)
	}
	if after, _ := os.ReadFile(f.lb.Config); string(after) != string(before) {
		t.Errorf("HAProxy's configuration changed:\n%s", after)
	}
	if _, err := os.Stat(f.lb.Config + ".homelab-check"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check file left: %v", err)
	}
	if got, err := f.answer(http.DefaultClient); got != v1 || err != nil {
		t.Errorf("public URL answers %q, %v; want %s", got, err, v1)
	}
	if f.state(t, lab.Green) != runtime.Stopped {
		t.Error("green still runs")
	}
	if h := f.history(t); len(h) != 0 {
		t.Errorf("history %+v", h)
	}
}

// TestRollbackColorGone: with the previous color stopped, the fast
// rollback is refused with the reason; --redeploy starts the previous
// version again and flips to it.
func TestRollbackColorGone(t *testing.T) {
	f := newFixture(t, fixtureOptions{reload: "{pid_file: haproxy.pid}"})
	if _, err := f.deploy(t, v2, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := f.runtime(t, lab.Blue).Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := f.d.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Reason: "bad release"})
	var re *deploy.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "is gone") || !strings.Contains(err.Error(), "--redeploy") {
		t.Fatalf("fast rollback with blue stopped: %v; want refused, gone", err)
	}
	p, err := f.d.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Redeploy: true, Reason: "bad release"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Start || p.Kind != catalog.DeployRedeploy || p.To != (deploy.Side{Color: lab.Blue, Version: v1}) {
		t.Errorf("redeploy plan %+v", p)
	}
	if _, err := f.d.Run(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.answer(http.DefaultClient); got != v1 {
		t.Errorf("public URL answers %q; want %s", got, v1)
	}
	if h := f.history(t); len(h) != 2 || h[0].Kind != catalog.DeployRedeploy || h[0].Reason != "bad release" {
		t.Errorf("history %+v", h)
	}
}

// TestDeployContractRefused: a release with DROP COLUMN is refused
// without --allow-contract, and deploys with it and a reason, recorded.
func TestDeployContractRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{migrations: true})
	for rel, sql := range map[string]string{
		"1.0.0/001_init.sql":  "CREATE TABLE users (id int, email text, mail text);",
		"1.0.5/001_nick.sql":  "ALTER TABLE users ADD COLUMN nick text;",
		"1.0.5/002_email.sql": "-- the old address\nALTER TABLE users DROP COLUMN email;",
	} {
		p := filepath.Join(f.dir, "migrations", rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.d.PlanDeploy(t.Context(), "web", v2, deploy.Options{})
	var ce *deploy.ContractError
	if !errors.As(err, &ce) || len(ce.Statements) != 1 || !strings.Contains(err.Error(), "002_email.sql:2: drops column users.email") {
		t.Fatalf("plan: %v; want a ContractError naming 002_email.sql:2", err)
	}
	if _, err := f.d.PlanDeploy(t.Context(), "web", v2, deploy.Options{AllowContract: true}); err == nil {
		t.Error("--allow-contract without a reason was taken")
	}
	if _, err := f.deploy(t, v2, deploy.Options{AllowContract: true, Reason: "email moved to mail in 1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if h := f.history(t); len(h) != 1 || !h[0].AllowContract || h[0].Reason != "email moved to mail in 1.0.0" {
		t.Errorf("history %+v", h)
	}
	// Going back past the contract warns.
	if err := f.runtime(t, lab.Blue).Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := f.d.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Redeploy: true, Reason: "r"})
	if err != nil || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "contract") {
		t.Errorf("redeploy plan warnings %q, %v", p.Warnings, err)
	}
}

// TestStateDisagrees: a configuration changed by hand behind homelab's
// back refuses the next deploy.
func TestStateDisagrees(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if _, err := f.deploy(t, v2, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(f.lb.Config)
	os.WriteFile(f.lb.Config, []byte(strings.Replace(string(cfg), "server green", "server blue", 1)), 0o644)
	_, err := f.d.PlanDeploy(context.Background(), "web", "1.1.0", deploy.Options{})
	var re *deploy.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "catalog says green") {
		t.Errorf("plan: %v", err)
	}
}
