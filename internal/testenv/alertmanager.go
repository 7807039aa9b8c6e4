package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// alertmanagerConfig routes every alert to a receiver that sends nothing,
// so alerts stay visible in the v2 API; resolve_timeout is Alertmanager's
// default. A firing NodeDown inhibits the ServiceDown of the same
// instance.
const alertmanagerConfig = `route:
  receiver: none
  group_wait: 1s
receivers:
  - name: none
inhibit_rules:
  - source_matchers: ['alertname="NodeDown"']
    target_matchers: ['alertname="ServiceDown"']
    equal: [instance]
`

// Alertmanager starts a real Prometheus Alertmanager (Debian's
// prometheus-alertmanager, or $HOMELAB_ALERTMANAGER) on a free loopback
// port, with clustering off and its data in a temporary directory, waits
// until it is ready (GET /-/ready), and returns its base URL and a
// function that stops it (also run at the end of the test). Its output
// is logged when the test fails.
func Alertmanager(t testing.TB) (url string, stop func()) {
	t.Helper()
	bin := os.Getenv("HOMELAB_ALERTMANAGER")
	if bin == "" {
		for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
			if p, err := exec.LookPath(name); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		Missing(t, "prometheus-alertmanager not found in PATH")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(alertmanagerConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start alertmanager: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	url = "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, stop
			}
		}
		select {
		case <-exited:
			t.Fatalf("alertmanager exited before it was ready:\n%s", out.String())
		case <-ctx.Done():
			stop()
			t.Fatalf("alertmanager not ready within a minute:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
