package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// The files in testdata/systemctl-show are the output of
//
//	systemctl show --property=LoadState,LoadError,ActiveState,SubState,Result,ActiveEnterTimestamp,ExecMainStartTimestamp,ExecMainStatus --timestamp=unix -- UNIT
//
// captured from systemd 252 (Debian bookworm) in the testenv.Systemd
// container, for units in each state (see the name of each file).
func TestSystemdParseStatus(t *testing.T) {
	at := time.Unix(1795453071, 0)
	for _, tc := range []struct {
		file    string
		want    Status
		wantErr string
	}{
		{file: "active-running", want: Status{State: Running, Since: at, Detail: "active (running)"}},
		// Type=oneshot with RemainAfterExit=yes.
		{file: "active-exited", want: Status{State: Running, Since: at, Detail: "active (exited)"}},
		{file: "inactive-never-started", want: Status{State: Stopped, Detail: "inactive (dead)"}},
		{file: "inactive-after-stop", want: Status{State: Stopped, Detail: "inactive (dead)"}},
		{file: "failed-exit-code", want: Status{State: Stopped, Detail: "failed (Result: exit-code), exit status 3"}},
		// Restart=always with RestartSec=60 after exit 1.
		{file: "activating-auto-restart", want: Status{State: Restarting, Detail: "activating (auto-restart) (Result: exit-code), exit status 1"}},
		// ExecStartPre=/bin/sleep 60, started with --no-block.
		{file: "activating-start-pre", want: Status{State: Restarting, Detail: "activating (start-pre)"}},
		// Ignores SIGTERM, stopped with --no-block.
		{file: "deactivating-stop-sigterm", want: Status{State: Restarting, Detail: "deactivating (stop-sigterm)"}},
		{file: "masked", want: Status{State: Stopped, Detail: "inactive (dead), masked"}},
		{file: "masked-no-file", want: Status{State: Stopped, Detail: "inactive (dead), masked"}},
		// A [Service] section without ExecStart.
		{file: "bad-setting", want: Status{State: Stopped, Detail: "inactive (dead), unit file bad-setting: Unit broken.service has a bad unit file setting."}},
		{file: "not-found", wantErr: "unit nope.service not found"},
		// Started, then its unit file removed and daemon-reload.
		{file: "not-found-still-running", want: Status{State: Running, Since: time.Unix(1795453087, 0), Detail: "active (running), unit file not found"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", "systemctl-show", tc.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			unit := "app.service"
			if tc.file == "not-found" {
				unit = "nope.service"
			}
			got, err := parseUnitStatus(unit, false, out)
			if tc.wantErr != "" {
				var nf *UnitNotFoundError
				if err == nil || err.Error() != tc.wantErr || !errors.As(err, &nf) {
					t.Fatalf("got %+v, %v; want a *UnitNotFoundError %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.want.State || !got.Since.Equal(tc.want.Since) || got.Detail != tc.want.Detail {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSystemdParseStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		name, out, wantErr string
	}{
		{"empty", "", `unit app.service: no ActiveState in systemctl show's output ""`},
		{"unknown state", "LoadState=loaded\nActiveState=exploded\n", `unit app.service: unknown ActiveState "exploded"`},
		{"timestamp not unix", "LoadState=loaded\nActiveState=active\nSubState=running\nActiveEnterTimestamp=Mon 2026-11-23 16:46:56 UTC\n",
			`unit app.service: ActiveEnterTimestamp: "Mon 2026-11-23 16:46:56 UTC" is not a unix timestamp (@seconds)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parseUnitStatus("app.service", false, []byte(tc.out))
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("got %+v, %v; want error %q", st, err, tc.wantErr)
			}
		})
	}
	err := (&UnitNotFoundError{Unit: "app.service", User: true}).Error()
	if want := "unit app.service not found (systemctl --user)"; err != want {
		t.Errorf("user unit not found: %q, want %q", err, want)
	}
}

func TestSystemdOldSystemctl(t *testing.T) {
	for stderr, want := range map[string]bool{
		"Invalid value: unix.\n":                                true,
		"systemctl: unrecognized option '--timestamp=unix'\n":   true,
		"Failed to connect to bus: No such file or directory\n": false,
	} {
		if got := oldSystemctl(stderr); got != want {
			t.Errorf("oldSystemctl(%q) = %v, want %v", stderr, got, want)
		}
	}
}

// Units of the integration test, installed in the container by
// TestSystemdRuntime and driven by TestSystemdInner.
var systemdTestUnits = map[string]string{
	// A long-running service that logs a line at start.
	"hl-app.service": `[Unit]
Description=homelab test app
[Service]
Type=simple
ExecStart=/bin/sh -c 'echo "hl-app started"; exec sleep infinity'
`,
	// Exits 3 once started (Type=simple: systemctl start succeeds).
	"hl-fails.service": `[Service]
Type=simple
ExecStart=/bin/sh -c 'echo "hl-fails failing" >&2; exit 3'
`,
	// Fails during the start job: systemctl start fails.
	"hl-oneshot-fails.service": `[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exit 4'
`,
	// Stays activating for a minute.
	"hl-slow.service": `[Service]
ExecStartPre=/bin/sleep 60
ExecStart=/bin/sleep infinity
`,
}

// TestSystemdRuntime runs the systemd runtime against a real systemd: it
// boots the testenv.Systemd container, installs systemdTestUnits and runs
// TestSystemdInner there (systemctl talks to the container's systemd, so
// the adapter must run inside). It also checks that journald records the
// units' output, for the journald log reader.
func TestSystemdRuntime(t *testing.T) {
	h := testenv.Systemd(t)
	for name, content := range systemdTestUnits {
		h.InstallUnit(t, name, content)
	}
	out, err := h.RunTest(t, "homelab/internal/runtime", "^TestSystemdInner$")
	if err != nil {
		t.Fatalf("TestSystemdInner in %s: %v\n%s", h.Container, err, out)
	}
	if !strings.Contains(out, "--- PASS: TestSystemdInner") {
		t.Fatalf("TestSystemdInner did not pass in %s:\n%s", h.Container, out)
	}
	t.Logf("inside %s:\n%s", h.Container, out)

	// TestSystemdInner started hl-app.service: its line reaches the
	// journal (-o json: one object per line, systemd.journal-fields(7)).
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := h.Exec(t, "journalctl", "--unit", "hl-app.service", "--output", "json", "--lines", "5", "--no-pager")
		found := false
		sc := bufio.NewScanner(strings.NewReader(j))
		for sc.Scan() {
			var e struct {
				Message string `json:"MESSAGE"`
				Unit    string `json:"_SYSTEMD_UNIT"`
				Time    string `json:"__REALTIME_TIMESTAMP"`
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("journalctl -o json: %v: %s", err, sc.Bytes())
			}
			if e.Message == "hl-app started" && e.Unit == "hl-app.service" && e.Time != "" {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journalctl -u hl-app.service has no \"hl-app started\" entry:\n%s", j)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSystemdInner is the adapter against the container's systemd; it
// runs only there (testenv.SystemdInner), started by TestSystemdRuntime.
func TestSystemdInner(t *testing.T) {
	testenv.SystemdInner(t)
	ctx := t.Context()
	rt := func(unit string, timeout time.Duration) Runtime {
		return newSystemd(strings.TrimSuffix(unit, ".service"), &lab.SystemdRuntime{Unit: unit, Timeout: timeout}, Options{})
	}
	status := func(t *testing.T, r Runtime, state State, detail string) Status {
		t.Helper()
		st, err := r.Status(ctx)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if st.State != state || st.Detail != detail {
			t.Fatalf("status: got %+v, want %s %q", st, state, detail)
		}
		return st
	}

	t.Run("start and stop", func(t *testing.T) {
		r := rt("hl-app.service", 30*time.Second)
		if r.Kind() != lab.RuntimeSystemd {
			t.Errorf("kind %q", r.Kind())
		}
		status(t, r, Stopped, "inactive (dead)")
		before := time.Now()
		if err := r.Start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
		st := status(t, r, Running, "active (running)")
		// ActiveEnterTimestamp has whole seconds.
		if st.Since.Before(before.Truncate(time.Second)) || st.Since.After(time.Now()) {
			t.Errorf("since %s, want between %s and now", st.Since, before)
		}
		if up := st.Uptime(time.Now()); up < 0 || up > 10*time.Second {
			t.Errorf("uptime %s", up)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatalf("start when running: %v", err)
		}
		if again := status(t, r, Running, "active (running)"); !again.Since.Equal(st.Since) {
			t.Errorf("a second start changed since from %s to %s", st.Since, again.Since)
		}
		if err := r.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		status(t, r, Stopped, "inactive (dead)")
		if err := r.Stop(ctx); err != nil {
			t.Fatalf("stop when stopped: %v", err)
		}
		// Started again for TestSystemdRuntime's journal check.
		if err := r.Start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
	})

	t.Run("main process fails", func(t *testing.T) {
		r := rt("hl-fails.service", 30*time.Second)
		if err := r.Start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := r.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.State == Stopped {
				if want := "failed (Result: exit-code), exit status 3"; st.Detail != want || !st.Since.IsZero() {
					t.Fatalf("got %+v, want stopped %q", st, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %+v after 10s", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Stopping a failed unit is not an error.
		if err := r.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
	})

	t.Run("start job fails", func(t *testing.T) {
		r := rt("hl-oneshot-fails.service", 30*time.Second)
		err := r.Start(ctx)
		if err == nil || !strings.Contains(err.Error(), "service hl-oneshot-fails: systemctl start hl-oneshot-fails.service: ") ||
			!strings.Contains(err.Error(), "Job for hl-oneshot-fails.service failed because the control process exited with error code.") {
			t.Fatalf("start: got %v, want systemctl's reason", err)
		}
		status(t, r, Stopped, "failed (Result: exit-code), exit status 4")
	})

	t.Run("timeout", func(t *testing.T) {
		r := rt("hl-slow.service", time.Second)
		start := time.Now()
		err := r.Start(ctx)
		if err == nil || !strings.Contains(err.Error(), "systemctl start hl-slow.service: no answer within 1s") {
			t.Fatalf("start: got %v, want a timeout", err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("start returned after %s, timeout 1s", d)
		}
		// The start job goes on in systemd.
		status(t, r, Restarting, "activating (start-pre)")
		if err := rt("hl-slow.service", 30*time.Second).Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		// Stopping it killed ExecStartPre (SIGTERM), so the start failed.
		status(t, r, Stopped, "failed (Result: signal)")
	})

	t.Run("unknown unit", func(t *testing.T) {
		r := rt("hl-nope.service", 30*time.Second)
		_, err := r.Status(ctx)
		var nf *UnitNotFoundError
		if !errors.As(err, &nf) || err.Error() != "service hl-nope: unit hl-nope.service not found" {
			t.Errorf("status: got %v, want unit hl-nope.service not found", err)
		}
		if err := r.Start(ctx); err == nil || !strings.Contains(err.Error(), "Unit hl-nope.service not found.") {
			t.Errorf("start: got %v, want systemctl's \"not found\"", err)
		}
		if err := r.Stop(ctx); err == nil || !strings.Contains(err.Error(), "Unit hl-nope.service not loaded.") {
			t.Errorf("stop: got %v, want systemctl's \"not loaded\"", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := rt("hl-app.service", 30*time.Second).Status(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("status with a cancelled context: %v", err)
		}
	})
}
