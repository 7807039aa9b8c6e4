package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/certs"
	"homelab/internal/testenv"
)

// certLab is a directory with a lab.yaml for the cert commands.
type certLab struct {
	t   *testing.T
	dir string
	now func() time.Time // nil: the real clock
}

// newCertLab writes the lab file: a certs section with one leaf "web"
// whose reload and verify settings are given (as YAML flow mappings, or
// "" for none).
func newCertLab(t *testing.T) *certLab {
	t.Helper()
	c := &certLab{t: t, dir: t.TempDir()}
	c.write("", "")
	return c
}

func (c *certLab) write(reload, verify string) {
	c.t.Helper()
	text := `name: certlab
certs:
  leaves:
    web:
      sans: [web.lab, "*.web.lab", 127.0.0.1]
      bundle_file: pki/web.bundle.pem
`
	if reload != "" {
		text += "      reload: " + reload + "\n"
	}
	if verify != "" {
		text += "      verify: " + verify + "\n"
	}
	if err := os.WriteFile(filepath.Join(c.dir, "lab.yaml"), []byte(text), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *certLab) path(p string) string { return filepath.Join(c.dir, p) }

// run runs homelab with args like Run does, with the lab's clock, and
// returns stdout, stderr and the exit code.
func (c *certLab) run(args ...string) (string, string, int) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Now: c.now}
	root := NewCmdRoot(f)
	root.SetArgs(append([]string{"--lab", c.path("lab.yaml")}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	code := ExitCode(err)
	var se *silentError
	if errors.As(err, &se) {
		code = se.code
	} else if err != nil {
		fmt.Fprintln(&errOut, "homelab: "+err.Error())
	}
	return out.String(), errOut.String(), code
}

// must runs homelab and fails the test unless it exits 0.
func (c *certLab) must(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("homelab %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// files returns the leaf's cert, key and bundle.
func (c *certLab) files() [3][]byte {
	c.t.Helper()
	var out [3][]byte
	for i, f := range []string{"pki/web.pem", "pki/web.key", "pki/web.bundle.pem"} {
		b, err := os.ReadFile(c.path(f))
		if err != nil {
			c.t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func (c *certLab) fileFP() string {
	c.t.Helper()
	cert, err := certs.ParseCert(c.files()[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return certs.Fingerprint(cert)
}

func servedFP(t *testing.T, addr string) string {
	t.Helper()
	cert, err := certs.Served(context.Background(), addr, "web.lab")
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	return certs.Fingerprint(cert)
}

// haproxyLab issues the CA and the leaf, starts HAProxy serving the
// leaf's bundle and returns the lab and HAProxy.
func haproxyLab(t *testing.T) (*certLab, *testenv.HAProxyServer) {
	testenv.HAProxy(t)
	c := newCertLab(t)
	c.must("cert", "init")
	c.must("cert", "issue", "web")
	h := testenv.StartHAProxy(t, c.path("pki/web.bundle.pem"))
	if got, want := servedFP(t, h.Addr), c.fileFP(); got != want {
		t.Fatalf("HAProxy serves %s, want the issued %s", got, want)
	}
	return c, h
}

// TestCertRotateHAProxy: a real HAProxy (master-worker mode) serves the
// leaf from the PEM bundle; cert rotate swaps it, reloads HAProxy with
// SIGUSR2 to the master, and the handshake shows the new certificate.
func TestCertRotateHAProxy(t *testing.T) {
	c, h := haproxyLab(t)
	c.write("{pid_file: "+h.PIDFile+", signal: USR2}", "{address: "+h.Addr+", timeout: 15s}")
	old := c.fileFP()
	oldFiles := c.files()

	out := c.must("cert", "rotate", "web", "--dry-run")
	if !strings.Contains(out, "skip   web: not due: 89 days left") {
		t.Errorf("dry-run without --force:\n%s", out)
	}
	out = c.must("cert", "rotate", "--force", "--dry-run")
	for _, want := range []string{"plan: rotate 1 of 1 certificates", "rotate web: forced: 89 days left",
		"reload: signal USR2 to the pid in " + h.PIDFile, "verify: TLS handshake with " + h.Addr + " (SNI web.lab)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run lacks %q:\n%s", want, out)
		}
	}
	if c.fileFP() != old || servedFP(t, h.Addr) != old {
		t.Fatal("--dry-run changed something")
	}
	if _, errOut, code := c.run("cert", "rotate", "--force"); code != ExitUsage || !strings.Contains(errOut, "pass --yes") {
		t.Fatalf("without --yes off a terminal: exit %d, %s", code, errOut)
	}

	out, errOut, code := c.run("cert", "rotate", "--force", "--yes")
	if code != 0 {
		t.Fatalf("rotate: exit %d\n%s\n%s\nHAProxy log:\n%s", code, out, errOut, h.Log())
	}
	now := c.fileFP()
	if now == old {
		t.Fatal("the certificate file did not change")
	}
	if got := servedFP(t, h.Addr); got != now {
		t.Fatalf("HAProxy serves %s after rotation, want the new %s\n%s", got, now, h.Log())
	}
	if !strings.Contains(out, "web: rotated, sha256 "+now[:16]+" (was "+old[:16]+")") || !strings.Contains(out, h.Addr+" serves the new certificate") {
		t.Errorf("output:\n%s", out)
	}
	for i, f := range []string{"pki/web.pem", "pki/web.key", "pki/web.bundle.pem"} {
		prev, _ := os.ReadFile(c.path(f + ".prev"))
		if !bytes.Equal(prev, oldFiles[i]) {
			t.Errorf("%s.prev is not the previous file", f)
		}
	}
	if strings.Count(h.Log(), "Loading success") < 2 {
		t.Errorf("HAProxy did not reload:\n%s", h.Log())
	}

	// --json: the plan, then one line per rotated leaf.
	out = c.must("--json", "cert", "rotate", "--force", "--yes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var plan, res map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &plan) != nil || json.Unmarshal([]byte(lines[1]), &res) != nil ||
		plan["message_type"] != "cert_plan" || res["message_type"] != "cert_rotated" || res["error"] != "" {
		t.Fatalf("--json output:\n%s", out)
	}
	if got := servedFP(t, h.Addr); got != c.fileFP() {
		t.Errorf("second rotation: served %s, file %s", got, c.fileFP())
	}
}

// TestCertRotateHAProxyRollback: when the reload fails, or HAProxy never
// picks up the new pair, the old pair is put back byte for byte, HAProxy
// still serves the old certificate, and the command exits 1 with the
// reason.
func TestCertRotateHAProxyRollback(t *testing.T) {
	c, h := haproxyLab(t)
	dead := exec.Command("true")
	dead.Run()
	deadPID := c.path("dead.pid")
	os.WriteFile(deadPID, fmt.Appendf(nil, "%d\n", dead.Process.Pid), 0o644)
	verify := "{address: " + h.Addr + ", timeout: 5s}"
	for _, tc := range []struct {
		name   string
		reload string
		want   []string
	}{
		{"reload command fails", `{command: "false"}`, []string{
			"web: reload: sh -c false: exit status 1; rolled back to the previous certificate files (reloading failed again: sh -c false: exit status 1); the previous certificate is still served"}},
		{"dead pid", "{pid_file: " + deadPID + ", signal: USR2}", []string{
			fmt.Sprintf("web: reload: signal USR2 to pid %d (from %s): no such process; rolled back", dead.Process.Pid, deadPID),
			"the previous certificate is still served"}},
		{"consumer not reloaded", `{command: "true"}`, []string{
			"web: verify: " + h.Addr + ` (SNI "web.lab") did not serve the new certificate`,
			"; rolled back to the previous certificate, which is served again"}},
		{"haproxy config broken", "{pid_file: " + h.PIDFile + ", signal: USR2}", []string{
			"web: verify: " + h.Addr + ` (SNI "web.lab") did not serve the new certificate`,
			"; rolled back to the previous certificate, which is served again"}},
		{"control: the same HAProxy rotates", "{pid_file: " + h.PIDFile + ", signal: USR2}", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil {
				// The control must pass, so it gets the time a loaded
				// machine needs: a reload right after two failed ones
				// was seen to leave the port refusing connections for
				// over 2s under CI load.
				c.write(tc.reload, "{address: "+h.Addr+", timeout: 20s}")
			} else {
				c.write(tc.reload, verify)
			}
			if strings.Contains(tc.name, "broken") {
				// HAProxy's reload fails (asynchronously: the signal is
				// delivered) and its old workers keep serving.
				cfg, _ := os.ReadFile(h.Config)
				os.WriteFile(h.Config, append(cfg, "  bogus-keyword\n"...), 0o644)
				defer os.WriteFile(h.Config, cfg, 0o644)
			}
			old := c.files()
			oldFP := servedFP(t, h.Addr)
			_, errOut, code := c.run("cert", "rotate", "--force", "--yes")
			if tc.want == nil { // the control: the same setup rotates fine
				if code != 0 || servedFP(t, h.Addr) == oldFP {
					t.Fatalf("exit %d: %s\nHAProxy log:\n%s", code, errOut, h.Log())
				}
				return
			}
			if code != ExitFailed {
				t.Fatalf("exit %d, want 1\n%s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			now := c.files()
			for i := range old {
				if !bytes.Equal(old[i], now[i]) {
					t.Errorf("file %d is not the previous one byte for byte", i)
				}
			}
			if got := servedFP(t, h.Addr); got != oldFP {
				t.Errorf("HAProxy serves %s, want the previous %s", got, oldFP)
			}
			if strings.Contains(tc.name, "broken") && !strings.Contains(h.Log(), "Loading failure!") {
				t.Errorf("HAProxy did not fail to reload:\n%s", h.Log())
			}
		})
	}
}

// TestCertRotateRefusesMismatchedKey: a leaf whose key does not match its
// certificate is refused before anything is swapped or reloaded.
func TestCertRotateRefusesMismatchedKey(t *testing.T) {
	c, h := haproxyLab(t)
	c.write("{pid_file: "+h.PIDFile+", signal: USR2}", "{address: "+h.Addr+"}")
	caKey, _ := os.ReadFile(c.path("pki/ca.key"))
	os.WriteFile(c.path("pki/web.key"), caKey, 0o600)
	before := c.files()
	servedBefore := servedFP(t, h.Addr)
	loads := strings.Count(h.Log(), "Loading success")

	out, errOut, code := c.run("cert", "rotate", "--force", "--yes")
	if code != ExitFailed || !strings.Contains(out, "refuse web: key "+c.path("pki/web.key")+" does not match the certificate") ||
		!strings.Contains(errOut, "refused, nothing was changed") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	after := c.files()
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Errorf("file %d changed", i)
		}
	}
	if _, err := os.Stat(c.path("pki/web.pem.prev")); err == nil {
		t.Error("a .prev file was written")
	}
	time.Sleep(200 * time.Millisecond)
	if servedFP(t, h.Addr) != servedBefore || strings.Count(h.Log(), "Loading success") != loads {
		t.Error("HAProxy was reloaded")
	}
	out, _, code = c.run("cert", "status")
	if code != ExitFailed || !strings.Contains(out, "MISMATCH") || !strings.Contains(out, "web: key "+c.path("pki/web.key")+" does not match the certificate") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// TestCertStatusClock: status and rotate judge the rotation window with
// the injected clock.
func TestCertStatusClock(t *testing.T) {
	epoch := time.Date(2026, time.March, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	clock := epoch
	c := newCertLab(t)
	c.now = func() time.Time { return clock }
	c.write(`{command: "echo reloaded >> reloads.log"}`, "")
	c.must("cert", "init")
	c.must("cert", "issue", "web")

	out := c.must("cert", "status")
	if !strings.Contains(out, "web   CN=web.lab") || !strings.Contains(out, "web.lab,*.web.lab,127.0.0.1") || !strings.Contains(out, "  90  ") {
		t.Errorf("status:\n%s", out)
	}
	clock = epoch.Add(61 * 24 * time.Hour)
	out, _, code := c.run("--json", "cert", "status")
	var rep certs.Report
	if code != ExitFailed || json.Unmarshal([]byte(out), &rep) != nil || rep.Healthy || !rep.Leaves[0].InWindow || rep.Leaves[0].DaysLeft != 29 {
		t.Fatalf("status at day 61: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, `"message_type":"cert_status"`) || !strings.Contains(out, `"issues":["due for rotation: 29 days left (window opened 2026-04-30)"]`) {
		t.Errorf("json: %s", out)
	}
	out = c.must("cert", "rotate", "--dry-run")
	if !strings.Contains(out, "rotate web: in rotation window: 29 days left (window opened 2026-04-30)") {
		t.Errorf("dry-run:\n%s", out)
	}
	if _, err := os.Stat(c.path("reloads.log")); err == nil {
		t.Error("dry-run reloaded")
	}
	c.must("cert", "rotate", "--yes")
	if b, _ := os.ReadFile(c.path("reloads.log")); string(b) != "reloaded\n" {
		t.Errorf("reloads.log = %q", b)
	}
	c.must("cert", "status")
}

func TestCertCommandOptions(t *testing.T) {
	c := newCertLab(t)
	f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, LabFlag: c.path("lab.yaml")}
	var got *CertRotateOptions
	cmd := NewCmdCertRotate(f, func(o *CertRotateOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"web", "--force", "--dry-run", "-y"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Names, ",") != "web" || !got.Force || !got.DryRun || !got.Yes {
		t.Errorf("options = %+v", got)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cert", "rotate", "nope"}, ExitUsage, `unknown certificate "nope" (known: web)`},
		{[]string{"cert", "issue"}, ExitUsage, "accepts 1 arg(s)"},
		{[]string{"cert", "issue", "web"}, ExitFailed, "no CA: run homelab cert init"},
		{[]string{"cert", "rotate"}, ExitFailed, "no CA: run homelab cert init"},
		{[]string{"cert", "rotate-ca"}, ExitUsage, "rotate-ca replaces the CA every leaf chains to"},
		{[]string{"cert", "rotate-ca"}, ExitUsage, "then pass --confirm-i-know-this-is-disruptive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, code := c.run(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant %q", code, tc.code, errOut, tc.want)
			}
		})
	}
	c.must("cert", "init")
	if _, errOut, code := c.run("cert", "init"); code != ExitFailed || !strings.Contains(errOut, "exists: pass --force") {
		t.Errorf("second init: exit %d: %s", code, errOut)
	}
}

// TestCertRotateCA: rotate-ca needs its flag, then replaces the CA, keeps
// the old one in the bundle and re-issues the leaf, reloading HAProxy.
func TestCertRotateCA(t *testing.T) {
	c, h := haproxyLab(t)
	c.write("{pid_file: "+h.PIDFile+", signal: USR2}", "{address: "+h.Addr+", timeout: 15s}")
	oldCA, _ := os.ReadFile(c.path("pki/ca.pem"))
	out := c.must("cert", "rotate-ca", "--dry-run")
	if !strings.Contains(out, "plan: replace the CA CN=certlab CA,O=homelab") || !strings.Contains(out, "rotate web: re-issued by the new CA") {
		t.Errorf("dry-run:\n%s", out)
	}
	out = c.must("cert", "rotate-ca", "--confirm-i-know-this-is-disruptive")
	newCA, _ := os.ReadFile(c.path("pki/ca.pem"))
	bundle, _ := os.ReadFile(c.path("pki/ca-bundle.pem"))
	prev, _ := os.ReadFile(c.path("pki/ca.pem.prev"))
	if bytes.Equal(newCA, oldCA) || !bytes.Equal(bundle, append(append([]byte(nil), newCA...), oldCA...)) || !bytes.Equal(prev, oldCA) {
		t.Errorf("CA files after rotate-ca: new==old %v, bundle ok %v", bytes.Equal(newCA, oldCA), bytes.Equal(bundle, append(newCA, oldCA...)))
	}
	if !strings.Contains(out, "CA replaced") || !strings.Contains(out, "web: rotated") {
		t.Errorf("output:\n%s", out)
	}
	if servedFP(t, h.Addr) != c.fileFP() {
		t.Error("HAProxy does not serve the re-issued leaf")
	}
	c.must("cert", "status")
}
