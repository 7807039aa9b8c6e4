// Package s3mirror runs the real homelab against the real S3 server
// (versitygw) for an s3-mirror target: a mirror killed mid-copy with
// SIGKILL, a damaged snapshot failing the drill on status, and the
// errors of wrong keys, a missing bucket and an unreachable endpoint.
package s3mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"homelab/e2e/e2etest"
	"homelab/internal/catalog"
	"homelab/internal/testenv"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

const labFile = `name: mirror
state_dir: ./state
backups:
  media:
    provider: s3-mirror
    source: {endpoint: %s, bucket: %s, access_key_id_env: SRC_KEY, secret_access_key_env: SRC_SECRET}
    destination: {endpoint: %s, bucket: %s, prefix: mirrors, access_key_id_env: DST_KEY, secret_access_key_env: DST_SECRET}
    retention: {keep_last: 3}
    drill: {checks: [{min_objects: 40}]}
`

// stall is a reverse proxy in front of the S3 server that, once armed,
// holds every object GET after the first `after` until the client goes
// away, and closes held when it holds one: homelab is then mid-copy.
type stall struct {
	armed atomic.Bool
	after int64
	gets  atomic.Int64
	once  sync.Once
	held  chan struct{}
}

func (s *stall) handler(target *url.URL) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(target) // keeps the Host header the client signed
	rp.ErrorLog = log.New(io.Discard, "", 0)         // held requests end as "context canceled"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isObjectGet := r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
		if s.armed.Load() && isObjectGet && s.gets.Add(1) > s.after {
			s.once.Do(func() { close(s.held) })
			<-r.Context().Done()
			return
		}
		rp.ServeHTTP(w, r)
	})
}

type env struct {
	t        *testing.T
	dir      string
	srv      *testenv.S3Server
	c        *minio.Client
	src, dst string
	vars     []string
	proxy    *stall
	proxyURL string
}

func newEnv(t *testing.T) *env {
	srv := testenv.S3(t)
	e := &env{t: t, dir: t.TempDir(), srv: srv, c: srv.Client(t), proxy: &stall{after: 10, held: make(chan struct{})}}
	e.src, e.dst = srv.Bucket(t, "src"), srv.Bucket(t, "backups")
	u, _ := url.Parse(srv.URL)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.proxy.handler(u)}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	e.proxyURL = "http://" + l.Addr().String()
	for i := range 40 {
		body := bytes.Repeat([]byte{byte(i)}, 64<<10+i)
		if _, err := e.c.PutObject(context.Background(), e.src, fmt.Sprintf("dir %d/obj-%02d", i%4, i), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The source is reached through the proxy: another endpoint than the
	// destination, so the copies are streamed through homelab.
	if err := os.WriteFile(filepath.Join(e.dir, "lab.yaml"), []byte(fmt.Sprintf(labFile, e.proxyURL, e.src, srv.URL, e.dst)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.vars = append(os.Environ(), "SRC_KEY="+srv.AccessKeyID, "SRC_SECRET="+srv.SecretAccessKey,
		"DST_KEY="+srv.AccessKeyID, "DST_SECRET="+srv.SecretAccessKey)
	return e
}

func (e *env) command(extra []string, args ...string) *exec.Cmd {
	cmd := exec.Command("homelab", append([]string{"--lab", filepath.Join(e.dir, "lab.yaml")}, args...)...)
	cmd.Dir = e.dir
	cmd.Env = append(append([]string(nil), e.vars...), extra...)
	return cmd
}

// run runs homelab and returns its stdout, stderr and exit code.
func (e *env) run(extra []string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	cmd := e.command(extra, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(nil, args...)
	if code != 0 {
		e.t.Fatalf("homelab %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// snapshotDirs lists what the destination holds under mirrors/media/ (the
// posix backend keeps objects as files).
func (e *env) snapshotDirs() []string {
	entries, _ := os.ReadDir(filepath.Join(e.srv.Dir, e.dst, "mirrors", "media"))
	var out []string
	for _, d := range entries {
		out = append(out, d.Name())
	}
	return out
}

// TestKilledMidCopy: homelab killed with SIGKILL while it copies leaves
// objects but no listed snapshot; the next backup succeeds, removes the
// leftovers, and the catalog has the killed run as interrupted.
func TestKilledMidCopy(t *testing.T) {
	e := newEnv(t)
	e.proxy.armed.Store(true)
	cmd := e.command(nil, "backup", "run", "media")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-e.proxy.held: // mid-copy: ten objects copied, the rest held
	case err := <-exited:
		t.Fatalf("homelab ended (%v) before it was held mid-copy:\n%s", err, out.String())
	case <-time.After(5 * time.Minute): // only stops a test that would hang
		cmd.Process.Kill()
		t.Fatalf("homelab never reached the held copy:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	e.proxy.armed.Store(false)
	left := e.snapshotDirs()
	if len(left) != 1 || strings.HasSuffix(left[0], ".manifest.json") {
		t.Fatalf("after the kill the destination holds %v, want one snapshot directory and no manifest", left)
	}
	if list := e.must("backup", "list", "media"); strings.Contains(list, left[0]) {
		t.Fatalf("the incomplete snapshot is listed:\n%s", list)
	}
	e.must("backup", "run", "media")
	now := e.snapshotDirs()
	if len(now) != 2 || now[0] == left[0] || now[1] == left[0] {
		t.Fatalf("after the next backup the destination holds %v, want the new snapshot and its manifest only (not %s)", now, left[0])
	}
	list := e.must("backup", "list", "media")
	if !strings.Contains(list, strings.TrimSuffix(now[1], ".manifest.json")) || !strings.Contains(list, "40") {
		t.Errorf("backup list does not show the new snapshot of 40 objects:\n%s", list)
	}
	store, err := catalog.Open(context.Background(), filepath.Join(e.dir, "state", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	runs, err := store.Runs(context.Background(), catalog.RunFilter{Target: "media", Kind: catalog.KindBackup})
	if err != nil || len(runs) != 2 || runs[1].Result != catalog.ResultInterrupted || runs[0].Result != catalog.ResultOK {
		t.Fatalf("runs %+v %v: want the killed one interrupted, the next ok", runs, err)
	}
}

// TestDamagedSnapshotOnStatus: a changed object in the stored snapshot
// fails the drill: exit 1, recorded, and status shows it.
func TestDamagedSnapshotOnStatus(t *testing.T) {
	e := newEnv(t)
	e.must("backup", "run", "media")
	e.must("backup", "verify", "media")
	id := strings.TrimSuffix(e.snapshotDirs()[0], "/")
	key := "mirrors/media/" + id + "/dir 1/obj-05"
	body := bytes.Repeat([]byte{0xee}, 64<<10+5)
	if _, err := e.c.PutObject(context.Background(), e.dst, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := e.run(nil, "backup", "verify", "media")
	if code != 1 || !strings.Contains(out+errOut, `"dir 1/obj-05" has MD5`) {
		t.Fatalf("verify of a damaged snapshot: exit %d\n%s%s", code, out, errOut)
	}
	st, _, _ := e.run(nil, "status")
	t.Logf("status:\n%s", st)
	if !strings.Contains(st, "1 drill failed") || !strings.Contains(st, "just now FAILED") || !strings.Contains(st, "drill_failed") {
		t.Errorf("status does not show the failed drill of media:\n%s", st)
	}
}

// TestErrorsCLI: wrong keys, a missing bucket and an unreachable endpoint
// exit 1 with one line that names the cause and holds no secret.
func TestErrorsCLI(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	const wrong = "wrong-secret-4b1d6c0e9a"
	lab, _ := os.ReadFile(filepath.Join(e.dir, "lab.yaml"))
	for _, tc := range []struct {
		name  string
		extra []string
		lab   string
		want  string
	}{
		{"wrong keys", []string{"SRC_SECRET=" + wrong}, "", "the keys are wrong"},
		{"missing bucket", nil, strings.Replace(string(lab), "bucket: "+e.dst, "bucket: gone-bucket", 1), "destination bucket gone-bucket on " + e.srv.URL + ": the bucket does not exist"},
		{"unreachable", nil, strings.Replace(string(lab), "endpoint: "+e.proxyURL, "endpoint: "+closed, 1), "cannot reach the endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lab != "" {
				os.WriteFile(filepath.Join(e.dir, "lab.yaml"), []byte(tc.lab), 0o644)
				defer os.WriteFile(filepath.Join(e.dir, "lab.yaml"), lab, 0o644)
			}
			out, errOut, code := e.run(tc.extra, "backup", "run", "media")
			lines := strings.Split(strings.TrimSpace(out+errOut), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("exit %d, output (want one line with %q):\n%s%s", code, tc.want, out, errOut)
			}
			for _, s := range []string{e.srv.SecretAccessKey, wrong} {
				if strings.Contains(out+errOut, s) {
					t.Errorf("a secret is in the output:\n%s%s", out, errOut)
				}
			}
			t.Logf("output: %s%s", out, errOut)
		})
	}
}

// TestRestoreCLI: backup restore of a mirror snapshot into a new bucket
// (the target found from the snapshot ID), and over the source: refused
// off a terminal without --yes, and with --delete removing what the
// snapshot does not have.
func TestRestoreCLI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.must("backup", "run", "media")
	id := strings.TrimSuffix(e.snapshotDirs()[0], "/")
	out := e.must("backup", "restore", id, "--to-bucket", "restored")
	if !strings.Contains(out, "into bucket restored") {
		t.Errorf("restore output:\n%s", out)
	}
	n := 0
	for o := range e.c.ListObjects(ctx, "restored", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != 40 {
		t.Errorf("restored bucket holds %d objects, want 40", n)
	}
	if _, err := e.c.PutObject(ctx, e.src, "added later", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := e.run(nil, "backup", "restore", "latest", "--target", "media", "--to-bucket", e.src, "--delete"); code == 0 {
		t.Fatalf("a restore over the source ran without --yes off a terminal:\n%s%s", out, errOut)
	}
	e.must("backup", "restore", "latest", "--target", "media", "--to-bucket", e.src, "--delete", "--yes")
	if _, err := e.c.StatObject(ctx, e.src, "added later", minio.StatObjectOptions{}); err == nil {
		t.Error("restore --delete left an object that is not in the snapshot")
	}
}

// TestServe: homelab serve runs an s3-mirror target's scheduled backups
// (each followed by a prune) and drills like any other target's, and
// /metrics reports them.
func TestServe(t *testing.T) {
	e := newEnv(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	lab, _ := os.ReadFile(filepath.Join(e.dir, "lab.yaml"))
	scheduled := strings.Replace(string(lab), "    retention: {keep_last: 3}\n",
		"    schedule: \"@every 2s\"\n    retention: {keep_last: 1}\n", 1)
	scheduled = strings.Replace(scheduled, "drill: {checks:", "drill: {schedule: \"@every 3s\", checks:", 1)
	scheduled += "serve:\n  listen: " + listen + "\n"
	if err := os.WriteFile(filepath.Join(e.dir, "lab.yaml"), []byte(scheduled), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := e.command([]string{"HOMELAB_MIN_EVERY=1s"}, "serve")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("homelab serve exited with %v after SIGTERM\n%s", err, log.String())
		}
	}()
	store, err := catalog.Open(context.Background(), filepath.Join(e.dir, "state", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	count := func(kind catalog.Kind) int {
		rs, _ := store.Runs(context.Background(), catalog.RunFilter{Target: "media", Kind: kind, Result: catalog.ResultOK})
		return len(rs)
	}
	drills := func() int {
		ds, _ := store.Drills(context.Background(), catalog.DrillFilter{Target: "media", Result: catalog.ResultOK})
		return len(ds)
	}
	e2etest.Eventually(t, 3*time.Minute, "two scheduled backups, a prune and a drill of media",
		func() bool { return count(catalog.KindBackup) >= 2 && count(catalog.KindPrune) >= 1 && drills() >= 1 },
		log.String)
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `target="media"`) {
		t.Errorf("/metrics says nothing of media:\n%s", body)
	}
}
