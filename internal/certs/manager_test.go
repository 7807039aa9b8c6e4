package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/lock"
)

// newLab writes text (with {{DIR}} replaced by a fresh directory) as that
// directory's lab.yaml and loads it.
func newLab(t *testing.T, text string) *lab.Lab {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "{{DIR}}", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// manager returns a Manager for l whose clock reads *now.
func manager(l *lab.Lab, now *time.Time) *Manager {
	return &Manager{Lab: l, Now: func() time.Time { return *now }, VerifyInterval: 20 * time.Millisecond}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// setup creates the CA and issues every leaf at epoch.
func setup(t *testing.T, l *lab.Lab, now *time.Time) *Manager {
	t.Helper()
	m := manager(l, now)
	ctx := context.Background()
	if _, err := m.Init(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Certs.LeafNames() {
		if _, err := m.Issue(ctx, n, false); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// leafFiles returns the content of a leaf's cert, key and bundle.
func leafFiles(t *testing.T, l *lab.Leaf) [3][]byte {
	t.Helper()
	var out [3][]byte
	out[0], out[1] = read(t, l.CertFile), read(t, l.KeyFile)
	if l.BundleFile != "" {
		out[2] = read(t, l.BundleFile)
	}
	return out
}

// serveFiles is a TLS server that reads the pair from disk at every
// handshake, like a consumer that picks up new files on its own.
func serveFiles(t *testing.T, certFile, keyFile string) string {
	return serveTLS(t, func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &c, err
	})
}

// serveFixed is a TLS server that never reloads: it serves the pair
// loaded at start.
func serveFixed(t *testing.T, certFile, keyFile string) string {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return serveTLS(t, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil })
}

func serveTLS(t *testing.T, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: get})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func servedFP(t *testing.T, addr string) string {
	t.Helper()
	c, err := Served(context.Background(), addr, "web.lab")
	if err != nil {
		t.Fatal(err)
	}
	return Fingerprint(c)
}

func TestLabDefaults(t *testing.T) {
	l := newLab(t, `name: devlab
certs:
  leaves:
    web:
      sans: [WEB.lab, "*.Web.lab", 127.0.0.1]
      bundle_file: out/web.bundle.pem
      reload: {pid_file: run/haproxy.pid, signal: sigusr2}
      verify: {address: 127.0.0.1:8443}
`)
	dir := filepath.Dir(l.Path)
	c := l.Certs
	w := c.Leaves["web"]
	for _, tc := range []struct{ what, got, want string }{
		{"dir", c.Dir, filepath.Join(dir, "pki")},
		{"ca cert", c.CACert(), filepath.Join(dir, "pki", "ca.pem")},
		{"common name", c.CA.CommonName, "devlab CA"},
		{"cert_file", w.CertFile, filepath.Join(dir, "pki", "web.pem")},
		{"key_file", w.KeyFile, filepath.Join(dir, "pki", "web.key")},
		{"bundle_file", w.BundleFile, filepath.Join(dir, "out", "web.bundle.pem")},
		{"pid_file", w.Reload.PIDFile, filepath.Join(dir, "run", "haproxy.pid")},
		{"signal", w.Reload.Signal, "USR2"},
		{"sans", strings.Join(w.SANs, ","), "web.lab,*.web.lab,127.0.0.1"},
		{"server name", w.ServerName(), "web.lab"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	if c.CA.Validity != lab.DefaultCAValidity || w.Validity != lab.DefaultLeafValidity || c.RotationWindow != lab.DefaultRotationWindow || w.Verify.Timeout != lab.DefaultVerifyTimeout {
		t.Errorf("defaults: ca %s leaf %s window %v verify %s", c.CA.Validity, w.Validity, c.RotationWindow, w.Verify.Timeout)
	}
}

const webLab = `certs:
  leaves:
    web:
      sans: [web.lab, 127.0.0.1]
      bundle_file: pki/web.bundle.pem
      validity: 2160h
`

func TestInitIssueStatus(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := manager(l, &now)
	ctx := context.Background()

	rep, _ := Status(l, now)
	if rep.Healthy || rep.CA.Exists || !strings.Contains(rep.CA.Issues[0], "cert init") || !strings.Contains(rep.Leaves[0].Issues[0], "cert issue web") {
		t.Fatalf("before init: %+v", rep)
	}
	if _, err := m.Issue(ctx, "web", false); !errors.Is(err, ErrNoCA) {
		t.Fatalf("issue without CA: %v", err)
	}

	ca, err := m.Init(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	c := &l.Certs
	if !strings.HasSuffix(ca.Subject, " CA,O=homelab") {
		t.Errorf("CA subject %q", ca.Subject)
	}
	if perm(t, c.CAKey()) != 0o600 || perm(t, c.CACert()) != 0o644 {
		t.Errorf("CA modes: key %v cert %v", perm(t, c.CAKey()), perm(t, c.CACert()))
	}
	if !bytes.Equal(read(t, c.CABundle()), read(t, c.CACert())) {
		t.Error("ca-bundle.pem is not the CA")
	}
	if _, err := m.Init(ctx, false); !errors.Is(err, ErrExists) {
		t.Fatalf("second init: %v", err)
	}
	first := read(t, c.CACert())
	if _, err := m.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, c.CACert()+".prev"), first) || bytes.Equal(read(t, c.CACert()), first) {
		t.Error("init --force did not keep the previous CA as .prev")
	}

	leaf, err := m.Issue(ctx, "web", false)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Leaves["web"]
	if perm(t, w.KeyFile) != 0o600 || perm(t, w.BundleFile) != 0o600 || perm(t, w.CertFile) != 0o644 {
		t.Errorf("leaf modes: key %v bundle %v cert %v", perm(t, w.KeyFile), perm(t, w.BundleFile), perm(t, w.CertFile))
	}
	if !leaf.OK() || leaf.DaysLeft != 90 || strings.Join(leaf.SANs, ",") != "web.lab,127.0.0.1" {
		t.Errorf("issued: %+v", leaf)
	}
	if _, err := m.Issue(ctx, "web", false); !errors.Is(err, ErrExists) {
		t.Fatalf("second issue: %v", err)
	}
	if _, err := m.Issue(ctx, "nope", false); err == nil || !strings.Contains(err.Error(), `unknown certificate "nope" (known: web)`) {
		t.Fatalf("unknown leaf: %v", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(c.Dir, ".*tmp*")); len(entries) > 0 {
		t.Errorf("temporary files left: %v", entries)
	}

	for _, tc := range []struct {
		name    string
		at      time.Time
		healthy bool
		issue   string
	}{
		{"fresh", epoch, true, ""},
		{"day 59", epoch.Add(59 * 24 * time.Hour), true, ""},
		{"day 61: in window", epoch.Add(61 * 24 * time.Hour), false, "due for rotation: 29 days left (window opened 2026-04-30)"},
		{"day 91: expired", epoch.Add(91 * 24 * time.Hour), false, "expired on 2026-05-30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Status(l, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			lc := rep.Leaves[0]
			if rep.Healthy != tc.healthy || !rep.CA.OK() || !lc.KeyMatch || !lc.SignedByCA || !lc.SANsMatch || !lc.BundleMatch {
				t.Fatalf("report: %+v", rep)
			}
			if tc.issue != "" && (len(lc.Issues) == 0 || lc.Issues[0] != tc.issue) {
				t.Errorf("issues = %q, want %q", lc.Issues, tc.issue)
			}
		})
	}
}

func TestStatusProblems(t *testing.T) {
	l := newLab(t, webLab+`    api:
      sans: [api.lab]
`)
	now := epoch
	setup(t, l, &now)
	w, api := l.Certs.Leaves["web"], l.Certs.Leaves["api"]
	// api's key replaced by web's; web's bundle removed.
	os.WriteFile(api.KeyFile, read(t, w.KeyFile), 0o600)
	os.Remove(w.BundleFile)
	rep, _ := Status(l, now)
	if rep.Healthy {
		t.Fatal("healthy with a mismatched key")
	}
	got := map[string]string{}
	for _, c := range rep.Leaves {
		got[c.Name] = strings.Join(c.Issues, "; ")
	}
	if !strings.Contains(got["api"], "api.key does not match the certificate") || rep.Leaves[0].KeyMatch {
		t.Errorf("api: %q", got["api"])
	}
	if !strings.Contains(got["web"], "bundle_file missing") {
		t.Errorf("web: %q", got["web"])
	}
	// A lab without certificates is healthy and not configured.
	empty := newLab(t, "name: x\n")
	if rep, _ := Status(empty, now); !rep.Healthy || rep.Configured {
		t.Errorf("empty lab: %+v", rep)
	}
}

func TestPlanRotate(t *testing.T) {
	l := newLab(t, `certs:
  leaves:
    short: {sans: [short.lab], validity: 2160h}
    long: {sans: [long.lab], validity: 8760h}
    later: {sans: [later.lab]}
`)
	now := epoch
	m := manager(l, &now)
	ctx := context.Background()
	if _, err := PlanRotate(l, nil, false, now); !errors.Is(err, ErrNoCA) {
		t.Fatalf("no CA: %v", err)
	}
	m.Init(ctx, false)
	m.Issue(ctx, "short", false)
	m.Issue(ctx, "long", false)

	day61 := epoch.Add(61 * 24 * time.Hour)
	for _, tc := range []struct {
		name  string
		names []string
		force bool
		want  []string // leaf action reason
	}{
		{"due only", []string{"long", "short"}, false, []string{
			"long skip not due: 304 days left, window opens 2026-10-30",
			"short rotate in rotation window: 29 days left (window opened 2026-04-30)"}},
		{"forced", []string{"long"}, true, []string{"long rotate forced: 304 days left"}},
		{"all, one not issued", nil, false, []string{
			"later refuse not issued yet: run homelab cert issue later",
			"long skip not due: 304 days left, window opens 2026-10-30",
			"short rotate in rotation window: 29 days left (window opened 2026-04-30)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanRotate(l, tc.names, tc.force, day61)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range p.Items {
				got = append(got, it.Leaf+" "+it.Action+" "+it.Reason)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	if _, err := PlanRotate(l, []string{"nope"}, false, now); err == nil || !strings.Contains(err.Error(), `unknown certificate "nope"`) {
		t.Errorf("unknown: %v", err)
	}
	// Expired, and SANs changed in the lab file.
	p, _ := PlanRotate(l, []string{"short"}, false, epoch.Add(100*24*time.Hour))
	if it := p.Items[0]; it.Action != ActionRotate || it.Reason != "expired 10 days ago" {
		t.Errorf("expired: %+v", it)
	}
	l.Certs.Leaves["long"].SANs = []string{"long.lab", "www.long.lab"}
	p, _ = PlanRotate(l, []string{"long"}, false, now)
	if it := p.Items[0]; it.Action != ActionRotate || it.Reason != "SANs changed in the lab file" {
		t.Errorf("SANs changed: %+v", it)
	}
}

func TestRotateVerified(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	old := leafFiles(t, w)
	w.Reload.Command = `echo "$HOMELAB_CERT_NAME" >> reloads.log`
	w.Verify = lab.Verify{Address: serveFiles(t, w.CertFile, w.KeyFile), Timeout: 5 * time.Second}
	oldFP := servedFP(t, w.Verify.Address)

	now = epoch.Add(61 * 24 * time.Hour)
	p, err := PlanRotate(l, nil, false, now)
	if err != nil || len(p.Rotations()) != 1 {
		t.Fatalf("plan %+v, %v", p, err)
	}
	res, err := m.Rotate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.OldSHA256 != oldFP || r.NewSHA256 == oldFP || servedFP(t, w.Verify.Address) != r.NewSHA256 {
		t.Errorf("result %+v; served %s", r, servedFP(t, w.Verify.Address))
	}
	if r.Verified == "" || r.Reloaded == "" || r.RolledBack || !r.NotAfter.Equal(now.Add(2160*time.Hour)) {
		t.Errorf("result %+v", r)
	}
	if got := string(read(t, filepath.Join(filepath.Dir(l.Path), "reloads.log"))); got != "web\n" {
		t.Errorf("reload command ran with %q", got)
	}
	for i, f := range []string{w.CertFile, w.KeyFile, w.BundleFile} {
		if !bytes.Equal(read(t, f+".prev"), old[i]) {
			t.Errorf("%s.prev is not the previous file", f)
		}
	}
	if perm(t, w.KeyFile) != 0o600 || perm(t, w.KeyFile+".prev") != 0o600 {
		t.Errorf("key modes %v %v", perm(t, w.KeyFile), perm(t, w.KeyFile+".prev"))
	}
	if rep, _ := Status(l, now); !rep.Healthy {
		t.Errorf("not healthy after rotation: %+v", rep.Leaves)
	}
}

// rotateFailing rotates web (forced) and checks that it failed with an
// error containing every one of want, that the files are the old ones
// byte for byte, and returns the error.
func rotateFailing(t *testing.T, m *Manager, want ...string) error {
	t.Helper()
	w := m.Lab.Certs.Leaves["web"]
	old := leafFiles(t, w)
	p, err := PlanRotate(m.Lab, []string{"web"}, true, m.now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Rotate(context.Background(), p)
	var re *RotateError
	if !errors.As(err, &re) || len(res) != 1 || !res[0].RolledBack {
		t.Fatalf("err = %v, results %+v; want a rolled back *RotateError", err, res)
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q\nlacks %q", err, s)
		}
	}
	if now := leafFiles(t, w); !bytes.Equal(now[0], old[0]) || !bytes.Equal(now[1], old[1]) || !bytes.Equal(now[2], old[2]) {
		t.Error("the files are not the previous ones")
	}
	return err
}

func TestRotateReloadFails(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	w.Reload.Command = "echo cannot reload >&2; exit 1"
	w.Verify = lab.Verify{Address: serveFiles(t, w.CertFile, w.KeyFile), Timeout: 2 * time.Second}
	oldFP := servedFP(t, w.Verify.Address)
	rotateFailing(t, m, "web: reload: sh -c echo cannot reload >&2; exit 1: exit status 1: cannot reload; ",
		"rolled back to the previous certificate files (reloading failed again: ", "the previous certificate is still served")
	if servedFP(t, w.Verify.Address) != oldFP {
		t.Error("the old certificate is not served")
	}
}

func TestRotateVerifyFails(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	// A consumer that never picks up new files.
	w.Verify = lab.Verify{Address: serveFixed(t, w.CertFile, w.KeyFile), Timeout: 500 * time.Millisecond}
	rotateFailing(t, m, "web: verify: "+w.Verify.Address+` (SNI "web.lab") did not serve the new certificate`,
		"rolled back to the previous certificate, which is served again")
}

func TestRotateDeadPID(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	cmd := exec.Command("true")
	cmd.Run()
	w.Reload = lab.Reload{PIDFile: filepath.Join(t.TempDir(), "dead.pid"), Signal: "USR2"}
	os.WriteFile(w.Reload.PIDFile, fmt.Appendf(nil, "%d\n", cmd.Process.Pid), 0o644)
	rotateFailing(t, m, fmt.Sprintf("web: reload: signal USR2 to pid %d (from %s): no such process", cmd.Process.Pid, w.Reload.PIDFile),
		"rolled back to the previous certificate files, but reloading failed again")

	os.WriteFile(w.Reload.PIDFile, []byte("0\n"), 0o644)
	rotateFailing(t, m, `bad pid "0"`)
}

func TestRotateSignalsPID(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	got := filepath.Join(t.TempDir(), "signals")
	sh := exec.Command("sh", "-c", `trap 'echo usr2 >> "$0"' USR2; echo ready >> "$0"; while :; do sleep 0.05; done`, got)
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })
	for i := 0; i < 100 && !bytes.Contains(read0(got), []byte("ready")); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	w.Reload = lab.Reload{PIDFile: filepath.Join(t.TempDir(), "x.pid"), Signal: "USR2"}
	os.WriteFile(w.Reload.PIDFile, fmt.Appendf(nil, "%d\n", sh.Process.Pid), 0o644)
	p, _ := PlanRotate(l, nil, true, now)
	res, err := m.Rotate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Reloaded != fmt.Sprintf("signal USR2 to pid %d", sh.Process.Pid) {
		t.Errorf("reloaded: %q", res[0].Reloaded)
	}
	for i := 0; i < 100 && !bytes.Contains(read0(got), []byte("usr2")); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !bytes.Contains(read0(got), []byte("usr2")) {
		t.Error("the process got no SIGUSR2")
	}
}

func read0(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

func TestRotateContainer(t *testing.T) {
	bin := t.TempDir()
	log := filepath.Join(bin, "docker.log")
	os.WriteFile(filepath.Join(bin, "docker"), []byte("#!/bin/sh\necho \"$@\" >> "+log+"\n[ \"$4\" = gone ] && { echo 'Error response from daemon: No such container: gone' >&2; exit 1; }\nexit 0\n"), 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	w.Reload = lab.Reload{Container: "haproxy", Signal: "HUP", Timeout: 10 * time.Second}
	p, _ := PlanRotate(l, nil, true, now)
	if _, err := m.Rotate(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	w.Reload.Container = "gone"
	rotateFailing(t, m, "web: reload: docker kill --signal HUP gone: exit status 1: Error response from daemon: No such container: gone")
	if got := string(read(t, log)); got != "kill --signal HUP haproxy\nkill --signal HUP gone\nkill --signal HUP gone\n" {
		t.Errorf("docker calls:\n%s", got)
	}
}

func TestRotateTraefik(t *testing.T) {
	l := newLab(t, `certs:
  leaves:
    a: {sans: [a.lab], reload: {traefik_file: traefik/homelab.yaml}}
    b: {sans: [b.lab], reload: {traefik_file: traefik/homelab.yaml}}
`)
	now := epoch
	m := setup(t, l, &now)
	file := l.Certs.Leaves["a"].Reload.TraefikFile
	before := string(read(t, file))
	a, b := l.Certs.Leaves["a"], l.Certs.Leaves["b"]
	for _, want := range []string{"tls:\n  certificates:\n", "- certFile: " + a.CertFile + "\n      keyFile: " + a.KeyFile + "\n", "- certFile: " + b.CertFile + "\n"} {
		if !strings.Contains(before, want) {
			t.Errorf("traefik file lacks %q:\n%s", want, before)
		}
	}
	p, _ := PlanRotate(l, []string{"a"}, true, now)
	res, err := m.Rotate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	after := string(read(t, file))
	if after == before || !strings.Contains(after, "a.pem sha256 "+res[0].NewSHA256) || !strings.Contains(after, b.CertFile) {
		t.Errorf("traefik file after rotation:\n%s", after)
	}
}

func TestRotateRefusesMismatchedKey(t *testing.T) {
	l := newLab(t, webLab+`    api:
      sans: [api.lab]
`)
	now := epoch
	m := setup(t, l, &now)
	w, api := l.Certs.Leaves["web"], l.Certs.Leaves["api"]
	w.Reload.Command = "echo reloaded >> reloads.log"
	os.WriteFile(w.KeyFile, read(t, api.KeyFile), 0o600)
	before := [2][3][]byte{leafFiles(t, w), leafFiles(t, api)}
	p, err := PlanRotate(l, nil, true, now)
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Refusals(); len(r) != 1 || r[0].Leaf != "web" || !strings.Contains(r[0].Reason, "web.key does not match the certificate: refusing to rotate a broken pair") {
		t.Fatalf("refusals: %+v", r)
	}
	_, err = m.Rotate(context.Background(), p)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "refused, nothing was changed: web: ") {
		t.Fatalf("err = %v", err)
	}
	after := [2][3][]byte{leafFiles(t, w), leafFiles(t, api)}
	for i := range before {
		for j := range before[i] {
			if !bytes.Equal(before[i][j], after[i][j]) {
				t.Errorf("file %d/%d changed", i, j)
			}
		}
	}
	for _, f := range []string{w.CertFile + ".prev", api.CertFile + ".prev", filepath.Join(filepath.Dir(l.Path), "reloads.log")} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s exists", f)
		}
	}
}

func TestRotateCA(t *testing.T) {
	l := newLab(t, webLab+`    api:
      sans: [api.lab]
`)
	now := epoch
	m := setup(t, l, &now)
	c := &l.Certs
	oldCA := read(t, c.CACert())
	oldKey := read(t, c.CAKey())
	oldWeb := read(t, c.Leaves["web"].CertFile)
	now = epoch.Add(24 * time.Hour)
	p, err := PlanRotateCA(l, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Leaves) != 2 || p.Leaves[0].Action != ActionRotate || p.Leaves[0].Reason != "re-issued by the new CA" {
		t.Fatalf("plan: %+v", p.Leaves)
	}
	res, err := m.RotateCA(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	newCA := read(t, c.CACert())
	if bytes.Equal(newCA, oldCA) || !bytes.Equal(read(t, c.CACert()+".prev"), oldCA) || !bytes.Equal(read(t, c.CAKey()+".prev"), oldKey) {
		t.Error("the old CA is not kept as .prev")
	}
	if got := read(t, c.CABundle()); !bytes.Equal(got, append(append([]byte(nil), newCA...), oldCA...)) {
		t.Errorf("ca-bundle.pem is not new + old:\n%s", got)
	}
	if res.New.SHA256 == res.Old.SHA256 || len(res.Leaves) != 2 {
		t.Errorf("result: %+v", res)
	}
	// Both the re-issued leaf and the previous one verify against the bundle.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(read(t, c.CABundle()))
	for _, pemBytes := range [][]byte{read(t, c.Leaves["web"].CertFile), oldWeb} {
		cert, _ := ParseCert(pemBytes)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "web.lab", CurrentTime: now}); err != nil {
			t.Errorf("leaf does not verify against the bundle: %v", err)
		}
	}
	rep, _ := Status(l, now)
	if !rep.Healthy {
		t.Errorf("not healthy after rotate-ca: %+v", rep)
	}
	// The next rotate-ca drops the oldest CA from the bundle.
	p, _ = PlanRotateCA(l, now)
	if _, err := m.RotateCA(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(read(t, c.CABundle()), oldCA) || !bytes.Contains(read(t, c.CABundle()), newCA) {
		t.Error("the bundle should hold only the current and the previous CA")
	}
}

func TestRotateCALeafFailureKeepsTrust(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	w.Reload.Command = "exit 3"
	p, _ := PlanRotateCA(l, now)
	_, err := m.RotateCA(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "the CA was replaced, but some leaves were not re-issued") || !strings.Contains(err.Error(), "web: reload: sh -c exit 3: exit status 3") {
		t.Fatalf("err = %v", err)
	}
	rep, _ := Status(l, now)
	lc := rep.Leaves[0]
	if lc.SignedByCA || !strings.Contains(strings.Join(lc.Issues, ";"), "not signed by the current CA") {
		t.Errorf("status: %+v", lc)
	}
	// cert rotate picks it up.
	w.Reload.Command = ""
	plan, _ := PlanRotate(l, nil, false, now)
	if it := plan.Items[0]; it.Action != ActionRotate || it.Reason != "signed by a previous CA" {
		t.Errorf("plan: %+v", it)
	}
}

func TestBusy(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := manager(l, &now)
	lk, err := lock.Acquire(context.Background(), l.StateDir, LockName, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	_, err = m.Init(context.Background(), false)
	if !errors.Is(err, lock.ErrBusy) || !strings.Contains(err.Error(), "certificates are busy: another homelab process (pid ") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(l.Certs.CACert()); err == nil {
		t.Error("a CA was written while busy")
	}
}

// TestResendWaitsForBlockedSignal: a repeated signal reload is not sent
// while the consumer blocks the signal (HAProxy's master does so while
// it reloads: a second signal would queue a reload right behind it); it
// is sent to a consumer that takes it.
func TestResendWaitsForBlockedSignal(t *testing.T) {
	l := newLab(t, webLab)
	now := epoch
	m := setup(t, l, &now)
	w := l.Certs.Leaves["web"]
	w.Reload = lab.Reload{PIDFile: filepath.Join(t.TempDir(), "x.pid"), Signal: "USR2"}
	for _, tc := range []struct {
		name, script string
		sent         bool
	}{
		{"blocked", `use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGUSR2)); $| = 1; print "ready\n"; sleep 60`, false},
		{"taken", `$SIG{USR2} = sub { print "usr2\n" }; $| = 1; print "ready\n"; sleep 1 while 1`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := exec.Command("perl", "-e", tc.script)
			out, _ := p.StdoutPipe()
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Process.Kill(); p.Wait() })
			lines := make(chan string, 2)
			go func() {
				b := make([]byte, 64)
				for {
					n, err := out.Read(b)
					if n > 0 {
						lines <- string(b[:n])
					}
					if err != nil {
						close(lines)
						return
					}
				}
			}()
			if got := <-lines; got != "ready\n" {
				t.Fatalf("perl: %q", got)
			}
			os.WriteFile(w.Reload.PIDFile, fmt.Appendf(nil, "%d\n", p.Process.Pid), 0o644)
			if err := m.resender(context.Background(), w)(); err != nil {
				t.Fatal(err)
			}
			if tc.sent {
				if got := <-lines; got != "usr2\n" {
					t.Errorf("perl: %q, want the signal taken", got)
				}
				return
			}
			// Not sent: USR2 is blocked but not pending.
			data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Process.Pid))
			if !strings.Contains(string(data), "SigPnd:\t0000000000000000") || !strings.Contains(string(data), "ShdPnd:\t0000000000000000") {
				t.Errorf("the signal was sent again:\n%s", data)
			}
		})
	}
}
