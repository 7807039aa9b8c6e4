package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"homelab/internal/catalog"
	"homelab/internal/cli"
	"homelab/internal/testenv"
)

// TestUpgradeScripts runs `homelab upgrade` end to end
// (testdata/upgrade/*.txtar): real Docker Compose with the testapp images
// built here (FROM scratch: versions 1.0.0, 1.0.5, 1.1.0 migrate a data
// file forward, 2.0.0 never becomes healthy), the real restic, and a real
// PostgreSQL where a script says `pg start`.
//
// Each script gets $PROJECT (a compose project name, brought down after
// the script), $PORT (a free TCP port) and $TESTAPP (the testapp binary,
// for the exec runtime).
func TestUpgradeScripts(t *testing.T) {
	testenv.Restic(t)
	pgBin := testenv.PGBinDir(t)
	docker := testenv.Docker(t)
	for _, v := range []string{"1.0.0", "1.0.5", "1.1.0", "2.0.0"} {
		testenv.TestAppImage(t, docker, v)
	}
	app := testenv.TestApp(t, "1.0.0")
	cmds := scriptCmds(pgBin)
	cmds["sagawait"] = sagaWait
	cmds["healthy"] = healthy
	cmds["hook"] = hook
	testscript.Run(t, testscript.Params{
		Dir: "testdata/upgrade",
		Setup: func(e *testscript.Env) error {
			e.Setenv("HOME", e.WorkDir)
			e.Setenv("XDG_CACHE_HOME", filepath.Join(e.WorkDir, ".cache"))
			b := make([]byte, 4)
			rand.Read(b)
			project := "hlup-" + hex.EncodeToString(b)
			e.Setenv("PROJECT", project)
			e.Setenv("PORT", strconv.Itoa(testenv.FreePort(t)))
			e.Setenv("TESTAPP", app)
			e.Defer(func() {
				exec.Command(docker, "compose", "-p", project, "down", "-v", "-t", "1").Run()
			})
			return os.WriteFile(filepath.Join(e.WorkDir, "restic.pass"), []byte("correct horse battery staple\n"), 0o600)
		},
		Cmds: cmds,
	})
}

// sagawait STEP: wait (up to 3 minutes) until the journal in
// $WORK/state/catalog.db shows the forward step STEP of a running
// upgrade started.
func sagaWait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: sagawait STEP")
	}
	path := ts.MkAbs("state/catalog.db")
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			s, err := catalog.Open(context.Background(), path)
			ts.Check(err)
			sagas, err := s.Sagas(context.Background(), catalog.SagaFilter{Kind: "upgrade", States: []catalog.SagaState{catalog.SagaRunning}})
			s.Close()
			ts.Check(err)
			for _, sg := range sagas {
				for _, st := range sg.Steps {
					if st.Name == args[0] && st.Phase == catalog.PhaseForward {
						return
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	ts.Fatalf("step %q did not start within 3 minutes", args[0])
}

// hook start: start an HTTP server that appends every request's body,
// and a newline, to $WORK/hook.log; sets $HOOK to its host:port (for a
// shoutrrr generic:// notify URL).
func hook(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || args[0] != "start" || neg {
		ts.Fatalf("usage: hook start")
	}
	var mu sync.Mutex
	log := ts.MkAbs("hook.log")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			f.Write(append(body, '\n'))
			f.Close()
		}
	}))
	ts.Defer(srv.Close)
	ts.Setenv("HOOK", strings.TrimPrefix(srv.URL, "http://"))
}

// healthy URL: GET URL answers 200 (with !: it does not, or no answer).
func healthy(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: healthy URL")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(args[0])
	ok := err == nil && resp.StatusCode == http.StatusOK
	if resp != nil {
		resp.Body.Close()
	}
	switch {
	case ok && neg:
		ts.Fatalf("%s answers 200", args[0])
	case !ok && !neg:
		ts.Fatalf("%s is not healthy: %v %v", args[0], err, resp)
	}
}

func TestUpgradeOptions(t *testing.T) {
	tests := []struct {
		args    []string
		want    cli.UpgradeOptions
		wantErr string
	}{
		{args: []string{"web", "--to", "1.1.0"}, want: cli.UpgradeOptions{Service: "web", To: "1.1.0"}},
		{args: []string{"web", "--to", "1.0.0", "--allow-downgrade", "--yes", "--wait"}, want: cli.UpgradeOptions{Service: "web", To: "1.0.0", AllowDowngrade: true, Yes: true, Wait: true}},
		{args: []string{"web", "--to", "2.0.0", "--dry-run"}, want: cli.UpgradeOptions{Service: "web", To: "2.0.0", DryRun: true}},
		{args: []string{"--resume"}, want: cli.UpgradeOptions{Resume: true}},
		{args: []string{"--resume", "20261123T100000Z-0000abcd", "--forward", "-y"}, want: cli.UpgradeOptions{Resume: true, ResumeID: "20261123T100000Z-0000abcd", Forward: true, Yes: true}},
		{args: []string{"web"}, wantErr: "usage: homelab upgrade SERVICE --to VERSION"},
		{args: []string{"--to", "1.0.0"}, wantErr: "usage: homelab upgrade SERVICE --to VERSION"},
		{args: []string{"--resume", "20261123T100000Z-0000abcd", "--resolved"}, want: cli.UpgradeOptions{Resume: true, ResumeID: "20261123T100000Z-0000abcd", Resolved: true}},
		{args: []string{"--resume", "--resolved"}, wantErr: "--resolved takes the saga's ID"},
		{args: []string{"--resume", "20261123T100000Z-0000abcd", "--resolved", "--forward"}, wantErr: "and no --forward"},
		{args: []string{"web", "--to", "1.0.0", "--resolved"}, wantErr: "--forward and --resolved go with --resume"},
		{args: []string{"web", "--to", "1.0.0", "--forward"}, wantErr: "--forward and --resolved go with --resume"},
		{args: []string{"--resume", "--to", "1.0.0"}, wantErr: "--resume takes no --to"},
		{args: []string{"web", "db", "--to", "1.0.0"}, wantErr: "accepts at most 1 arg(s), received 2"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := &cli.Factory{IO: &cli.IOStreams{Out: io.Discard, ErrOut: io.Discard}}
			var got *cli.UpgradeOptions
			cmd := cli.NewCmdUpgrade(f, func(o *cli.UpgradeOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || cli.ExitCode(err) != cli.ExitUsage {
					t.Fatalf("err = %v (exit %d), want usage error %q", err, cli.ExitCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.F, got.IO = nil, nil
			if *got != tt.want {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}
