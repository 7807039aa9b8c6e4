package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/clusterrestore"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

func testFactory(t *testing.T) (*Factory, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p"), []byte("x\n"), 0o600)
	labFile := filepath.Join(dir, "lab.yaml")
	os.WriteFile(labFile, []byte(`repositories:
  local: {url: ./repo, password_file: ./p}
backups:
  a: {provider: restic, repository: local, source: {paths: [.]}}
  b: {provider: postgres, repository: local, source: {database: x}}
`), 0o600)
	var out, errOut bytes.Buffer
	return &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, LabFlag: labFile}, &out, &errOut
}

func TestBackupRunOptions(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    []string
		wait    bool
		wantErr string
	}{
		{args: []string{"a"}, want: []string{"a"}},
		{args: []string{"--all", "--wait"}, want: []string{"a", "b"}, wait: true},
		{args: []string{}, wantErr: "name a target or pass --all"},
		{args: []string{"a", "--all"}, wantErr: "not both"},
		{args: []string{"nope"}, wantErr: `unknown backup target "nope"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, _, _ := testFactory(t)
			var got *BackupRunOptions
			cmd := NewCmdBackupRun(f, func(o *BackupRunOptions) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || ExitCode(err) != ExitUsage {
					t.Fatalf("err = %v (exit %d), want usage error %q", err, ExitCode(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Targets, ",") != strings.Join(tc.want, ",") || got.Wait != tc.wait {
				t.Errorf("options = %+v", got)
			}
		})
	}
}

func TestBackupRestoreOptions(t *testing.T) {
	f, _, _ := testFactory(t)
	var got *BackupRestoreOptions
	cmd := NewCmdBackupRestore(f, func(o *BackupRestoreOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"latest", "--target", "b", "--database", "x2", "--replace", "--yes"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Snapshot != "latest" || got.Target != "b" || got.Dest != (backup.Destination{Database: "x2", Replace: true}) || !got.Yes {
		t.Errorf("options = %+v", got)
	}
	cmd = NewCmdBackupRestore(f, func(o *BackupRestoreOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"latest", "--target", "db", "--in-place", "--time", "2026-12-06 10:41:00+00", "--keep-old", "--dry-run"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.Dest.InPlace || got.Dest.Recovery.Time != "2026-12-06 10:41:00+00" || !got.KeepOld || !got.DryRun {
		t.Errorf("pgbackrest in-place options = %+v", got)
	}
	cmd = NewCmdBackupRestore(f, func(o *BackupRestoreOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--resume", "20261206T104100Z-1a2b3c4d", "--yes"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.Resume || got.ResumeID != "20261206T104100Z-1a2b3c4d" || !got.Yes {
		t.Errorf("--resume options = %+v", got)
	}
	for _, args := range [][]string{{"latest"}, {"latest", "--to", "/x", "--database", "d"}, {},
		{"latest", "--in-place", "--port", "5433"}, {"latest", "--to", "/x", "--keep-old"}, {"--resume", "--dry-run"},
		{"--resume", "--in-place"}, {"latest", "--database", "d", "--time", "2026-12-06 10:41:00+00"},
		{"latest", "--database", "d", "--immediate"}, {"latest", "--to-bucket", "b", "--immediate"}, {"--resume", "--immediate"}} {
		cmd := NewCmdBackupRestore(f, func(*BackupRestoreOptions) error { return nil })
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); ExitCode(err) != ExitUsage {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}

// TestBackupRestoreImmediate: --immediate goes with --to DIR (and --port)
// or --in-place, and excludes the other recovery targets.
func TestBackupRestoreImmediate(t *testing.T) {
	f, _, _ := testFactory(t)
	for _, tc := range []struct {
		args []string
		want backup.Destination
	}{
		{[]string{"--to", "/x", "--immediate"}, backup.Destination{Path: "/x", Recovery: backup.Recovery{Immediate: true}}},
		{[]string{"--to", "/x", "--immediate", "--port", "5433"}, backup.Destination{Path: "/x", Port: 5433, Recovery: backup.Recovery{Immediate: true}}},
		{[]string{"--in-place", "--immediate"}, backup.Destination{InPlace: true, Recovery: backup.Recovery{Immediate: true}}},
	} {
		var got *BackupRestoreOptions
		cmd := NewCmdBackupRestore(f, func(o *BackupRestoreOptions) error { got = o; return nil })
		cmd.SetArgs(append([]string{"latest", "--target", "db"}, tc.args...))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got.Dest != tc.want {
			t.Errorf("%v: destination %+v, want %+v", tc.args, got.Dest, tc.want)
		}
	}
	for _, other := range [][]string{{"--time", "2026-12-06 10:41:00+00"}, {"--lsn", "0/3000060"}, {"--xid", "742"}, {"--name", "before-upgrade"}} {
		for _, where := range [][]string{{"--to", "/x"}, {"--in-place"}} {
			args := append(append([]string{"latest", "--target", "db", "--immediate"}, where...), other...)
			cmd := NewCmdBackupRestore(f, func(*BackupRestoreOptions) error { return nil })
			cmd.SetArgs(args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			if err := cmd.Execute(); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "exclude each other") {
				t.Errorf("%v: err = %v, want the usage error that they exclude each other", args, err)
			}
		}
	}
}

// TestClusterPlanRecovery: the in-place plan names its recovery target,
// in the heading and in the restore step.
func TestClusterPlanRecovery(t *testing.T) {
	for _, tc := range []struct {
		rec  backup.Recovery
		want string
	}{
		{backup.Recovery{}, " to the end of the archived WAL (saga "},
		{backup.Recovery{Immediate: true}, " to immediate (the backup's end) (saga "},
		{backup.Recovery{LSN: "0/3000060"}, " to 0/3000060 (saga "},
	} {
		p := clusterrestore.Plan{SagaID: "s1", Target: "db", Snapshot: backup.Snapshot{ID: "20261206-104100F"}, Recovery: tc.rec,
			Service: "pg", DataDir: "/srv/pg/data", Aside: "/srv/pg/data.homelab-old-s1"}
		var out bytes.Buffer
		renderClusterPlan(&out, p)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%+v: plan does not say %q:\n%s", tc.rec, tc.want, out.String())
		}
		step := "4. restore 20261206-104100F"
		if s := tc.rec.String(); s != "" {
			step += " to " + s
		}
		if !strings.Contains(out.String(), step+" into the emptied /srv/pg/data") {
			t.Errorf("%+v: plan does not say %q:\n%s", tc.rec, step, out.String())
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{usageErr("bad"), 2},
		{&lab.Errors{}, 2},
		{&backup.WarningError{Warnings: []string{"partial"}}, 3},
		{context.Canceled, 130},
		{errors.Join(errors.New("restic backup"), context.Canceled), 130},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestConfirmNeedsYesOffTerminal(t *testing.T) {
	io := &IOStreams{In: strings.NewReader("yes\n"), ErrOut: &bytes.Buffer{}}
	if err := confirm(io, false, "restore?"); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("off a terminal: %v", err)
	}
	io.StdinTTY = true
	if err := confirm(io, false, "restore?"); err != nil {
		t.Errorf("answered yes: %v", err)
	}
	io.In = strings.NewReader("n\n")
	if err := confirm(io, false, "restore?"); err == nil {
		t.Error("answered no, but confirmed")
	}
}

func TestProgressOffTerminalIsThrottled(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, false)
	p.logEvery = time.Hour
	for i := 0; i < 100; i++ {
		p.Update("docs", restic.Status{PercentDone: float64(i) / 100, FilesDone: int64(i), TotalFiles: 100, BytesDone: int64(i) << 20, TotalBytes: 100 << 20, SecondsRemaining: 42})
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "docs:   0% 0/100 files") {
		t.Errorf("progress lines = %q", lines)
	}
	p.Update("db", restic.Status{PercentDone: 0.5, FilesDone: 1, TotalFiles: 2, BytesDone: 1 << 20, TotalBytes: 2 << 20, SecondsRemaining: 3})
	if !strings.Contains(buf.String(), "db:  50% 1/2 files, 1.0 MiB/2.0 MiB, ETA 3s") {
		t.Errorf("a new target should log at once: %q", buf.String())
	}
}

func TestProgressNoETAWithoutTotal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, false)
	p.Update("db", restic.Status{BytesDone: 537 << 10, SecondsRemaining: 3.7e9})
	if strings.Contains(buf.String(), "ETA") || !strings.Contains(buf.String(), "537 KiB/-") {
		t.Errorf("streamed dump progress = %q", buf.String())
	}
}

// TestRunExitCodes runs whole commands against the real restic and checks
// the exit code table: 0 ok, 2 bad lab file, 3 partial snapshot.
func TestRunExitCodes(t *testing.T) {
	testenv.Restic(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p"), []byte("pw\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "data", "f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(`state_dir: ./state
repositories:
  local: {url: ./repo, password_file: ./p}
backups:
  ok: {provider: restic, repository: local, source: {paths: [./data]}}
  partial: {provider: restic, repository: local, source: {paths: [./data, /proc/self/mem]}}
`), 0o600)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("backups: {x: {provider: nope}}\n"), 0o600)
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := Run(context.Background(), &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, args)
		return code, out.String()
	}
	lab := "--lab=" + filepath.Join(dir, "lab.yaml")
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{lab, "repo", "init", "--all"}, ExitOK},
		{[]string{lab, "backup", "run", "ok"}, ExitOK},
		{[]string{lab, "backup", "run", "partial"}, ExitWarnings},
		{[]string{lab, "backup", "run", "--all"}, ExitWarnings},
		{[]string{"--lab=" + filepath.Join(dir, "bad.yaml"), "backup", "run", "--all"}, ExitUsage},
		{[]string{lab, "backup", "run"}, ExitUsage},
		{[]string{"nosuch"}, ExitUsage},
		{[]string{lab, "backup", "nosuch"}, ExitUsage},
	} {
		if code, out := run(tc.args...); code != tc.want {
			t.Errorf("homelab %v: exit %d, want %d\n%s", tc.args, code, tc.want, out)
		}
	}
}
