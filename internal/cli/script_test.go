package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"homelab/internal/cli"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"homelab": func() { os.Exit(cli.Main()) },
	})
}

// TestScripts runs the CLI end to end (testdata/script/*.txtar) against the
// real restic and, where a script says `pg start`, a real PostgreSQL.
func TestScripts(t *testing.T) {
	testenv.Restic(t)
	pgBin := testenv.PGBinDir(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("HOME", e.WorkDir)
			e.Setenv("XDG_CACHE_HOME", filepath.Join(e.WorkDir, ".cache"))
			// A fixed password for the scripts' repositories.
			return os.WriteFile(filepath.Join(e.WorkDir, "restic.pass"), []byte("correct horse battery staple\n"), 0o600)
		},
		Cmds: scriptCmds(pgBin),
	})
}

// scriptCmds are the custom commands of the CLI's scripts.
func scriptCmds(pgBin string) map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// pg start: start a throwaway cluster; sets PGHOST, PGPORT,
		// PGUSER and PGPASSWORD for the rest of the script.
		"pg": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 || args[0] != "start" || neg {
				ts.Fatalf("usage: pg start")
			}
			p, stop, err := testenv.StartPostgres(pgBin)
			ts.Check(err)
			ts.Defer(stop)
			ts.Setenv("PGHOST", p.Host)
			ts.Setenv("PGPORT", strconv.Itoa(p.Port))
			ts.Setenv("PGUSER", p.User)
			ts.Setenv("PGPASSWORD", p.Password)
		},
		// damage DIR: truncate every pack file of the restic repository DIR.
		"damage": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 {
				ts.Fatalf("usage: damage REPO")
			}
			packs, _ := filepath.Glob(filepath.Join(ts.MkAbs(args[0]), "data", "*", "*"))
			if len(packs) == 0 {
				ts.Fatalf("no pack files in %s", args[0])
			}
			for _, p := range packs {
				ts.Check(os.Truncate(p, 64))
			}
			fmt.Fprintf(ts.Stdout(), "truncated %d pack files\n", len(packs))
		},
		// stalelock REPO PASSFILE: leave a restic lock in REPO whose
		// holder is gone from this host: start a restic backup that holds
		// a shared lock, await the lock, and SIGKILL it (and its child).
		"stalelock": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 2 || neg {
				ts.Fatalf("usage: stalelock REPO PASSFILE")
			}
			repo, pass := ts.MkAbs(args[0]), ts.MkAbs(args[1])
			bin := restic.DefaultBinary("")
			cmd := exec.Command(bin, "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sleep", "600")
			cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+pass)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			ts.Check(cmd.Start())
			defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
				out, _ := exec.Command(bin, "-r", repo, "--password-file", pass, "list", "locks", "--no-lock").Output()
				if len(bytes.TrimSpace(out)) > 0 {
					break
				}
				if time.Now().After(deadline) {
					ts.Fatalf("restic took no lock in %s within a minute", repo)
				}
			}
			fmt.Fprintf(ts.Stdout(), "killed restic pid %d holding a lock\n", cmd.Process.Pid)
		},
		// expand FILE: replace ${VAR} in FILE with the script's environment.
		"expand": func(ts *testscript.TestScript, neg bool, args []string) {
			for _, f := range args {
				ts.Check(os.WriteFile(ts.MkAbs(f), []byte(os.Expand(ts.ReadFile(f), ts.Getenv)), 0o644))
			}
		},
		// bigfile PATH N: write N KiB of incompressible bytes.
		"bigfile": func(ts *testscript.TestScript, neg bool, args []string) {
			n, err := strconv.Atoi(args[1])
			ts.Check(err)
			f, err := os.Create(ts.MkAbs(args[0]))
			ts.Check(err)
			defer f.Close()
			buf := make([]byte, 1024)
			x := uint32(2463534242)
			for i := 0; i < n; i++ {
				for j := range buf {
					x ^= x << 13
					x ^= x >> 17
					x ^= x << 5
					buf[j] = byte(x)
				}
				f.Write(buf)
			}
		},
	}
}
