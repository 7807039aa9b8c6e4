// Package bluegreen runs the blue/green verbs end to end through the real
// homelab binary, against a real HAProxy and testapp processes: deploy,
// rollback with its incident record, the history and status; and
// `homelab deploy` killed with SIGKILL between the swap of HAProxy's
// configuration and its reload, the one point where the file and the
// running proxy disagree, then resumed: rolled back (the default) or
// finished (--forward). Either way HAProxy ends serving exactly one color
// and the catalog agrees with it.
package bluegreen

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"homelab/e2e/e2etest"
	"homelab/internal/deploy"
	"homelab/internal/deploy/deploytest"
	"homelab/internal/haproxy"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/saga"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// reloadScript is the lab's reload command: while crash-at exists, its
// first run marks "at" and hangs (homelab is killed there, after the swap
// and before HAProxy reloads); otherwise it signals HAProxy's master.
const reloadScript = `if [ -f crash-at ] && mkdir fired 2>/dev/null; then
	: > at
	exec sleep 600
fi
kill -USR2 "$(cat haproxy.pid)"
`

func TestKillBetweenSwapAndReload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume []string
		// serves is the color and version HAProxy and the catalog end on.
		serves deploy.Side
	}{
		{"rolled back", []string{"deploy", "--resume", "--yes"}, deploy.Side{Color: lab.Blue, Version: deploytest.V1}},
		{"finished", []string{"deploy", "--resume", "--forward", "--yes"}, deploy.Side{Color: lab.Green, Version: deploytest.V2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := deploytest.New(t, deploytest.Options{Reload: `{command: "sh reload.sh"}`})
			for name, text := range map[string]string{"reload.sh": reloadScript, "crash-at": ""} {
				if err := os.WriteFile(filepath.Join(f.Dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			cmd := f.Homelab("deploy", "web", "--to", deploytest.V2, "--yes")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			e2etest.Eventually(t, 2*time.Minute, "the reload after the swap", func() bool {
				_, err := os.Stat(filepath.Join(f.Dir, "at"))
				return err == nil
			}, out.String)
			cmd.Process.Signal(syscall.SIGKILL)
			<-done

			// Killed between the two: the file names green, HAProxy still
			// serves blue, the journal shows a deploy running.
			cfg, _ := os.ReadFile(f.LB.Config)
			if active, err := haproxy.Active(cfg, "web"); active != lab.Green || err != nil {
				t.Fatalf("configuration after the kill serves %q, %v; want green (swapped)", active, err)
			}
			if got, err := f.Answer(http.DefaultClient); got != deploytest.V1 || err != nil {
				t.Fatalf("public URL answers %q, %v after the kill; want %s (not reloaded)", got, err, deploytest.V1)
			}
			open, err := f.D.Unfinished(t.Context(), "web")
			if err != nil || len(open) != 1 || open[0].State != saga.Running {
				t.Fatalf("unfinished deploys %+v, %v", open, err)
			}
			os.Remove(filepath.Join(f.Dir, "crash-at"))

			res := f.Homelab(tc.resume...)
			if b, err := res.CombinedOutput(); err != nil {
				t.Fatalf("homelab %s: %v\n%s", strings.Join(tc.resume, " "), err, b)
			}

			// Exactly one color serves, and the catalog agrees.
			cfg, _ = os.ReadFile(f.LB.Config)
			srv, err := haproxy.Servers(cfg, "web")
			if err != nil || len(srv) != 1 || srv[0].Name != tc.serves.Color {
				t.Errorf("backend servers %+v, %v; want %s alone", srv, err, tc.serves.Color)
			}
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for range 50 {
				if got, err := f.Answer(c); got != tc.serves.Version || err != nil {
					t.Fatalf("public URL answers %q, %v; want %s", got, err, tc.serves.Version)
				}
			}
			st, err := f.D.State(t.Context(), "web")
			if err != nil || st.Active != tc.serves {
				t.Errorf("catalog state %+v, %v; want %s serving", st, err, tc.serves)
			}
			want := runtime.Stopped // rolled back: the new color is stopped
			if tc.serves.Color == lab.Green {
				want = runtime.Running
			}
			if got := f.State(t, lab.Green); got != want {
				t.Errorf("green is %s; want %s", got, want)
			}
			if open, _ := f.D.Unfinished(t.Context(), "web"); len(open) != 0 {
				t.Errorf("still unfinished: %+v", open)
			}
		})
	}
}
