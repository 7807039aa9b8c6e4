package e2etest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/rogpeppe/go-internal/testscript"

	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// ResticPassword is the password of the scripts' repositories, in
// $WORK/restic.pass (see Setup).
const ResticPassword = "correct horse battery staple"

// Setup prepares a script's work directory: HOME and XDG_CACHE_HOME in
// it (restic's cache, psql's .pgpass), and restic.pass holding
// ResticPassword.
func Setup(e *testscript.Env) error {
	e.Setenv("HOME", e.WorkDir)
	e.Setenv("XDG_CACHE_HOME", filepath.Join(e.WorkDir, ".cache"))
	return os.WriteFile(filepath.Join(e.WorkDir, "restic.pass"), []byte(ResticPassword+"\n"), 0o600)
}

// Cmd is a custom testscript command.
type Cmd = func(ts *testscript.TestScript, neg bool, args []string)

// Cmds returns the custom commands of the end-to-end scripts; pgBin is
// the directory of initdb and pg_ctl (testenv.PGBinDir), for pg start.
//
//	pg start          start a throwaway cluster; sets PGHOST, PGPORT, PGUSER
//	                  and PGPASSWORD for the rest of the script
//	pg archiving TARGET STANZA
//	                  the same, archiving WAL with pgbackrest for TARGET
//	                  of a lab whose state_dir is $PGBR_STATE; sets
//	                  PGBR_STATE, PGBR_REPO, PGBR_DATA, PGBR_SOCKET and
//	                  PGBR_OSUSER too (pgArchiving)
//	expand FILE...    replace ${VAR} in each FILE with the script's environment
//	damage REPO       truncate every pack file of the restic repository REPO
//	bigfile PATH N    write N KiB of incompressible bytes to PATH
//	sagawait STEP     wait until the journal in $WORK/state/catalog.db shows
//	                  the forward step STEP of a running upgrade started
//	healthy URL       GET URL answers 200 (with !: it does not, or no answer)
//	hook start        serve HTTP, appending each request's body and a newline
//	                  to $WORK/hook.log; sets $HOOK to its host:port
//	s3 start [tls]    start a throwaway S3 server (versitygw; testenv.StartS3)
//	                  serving $WORK/s3; sets S3_URL (http://127.0.0.1:PORT,
//	                  with tls https://, its test CA's file in S3_CA),
//	                  S3_DIR (the buckets, as files), S3_SECRET (the secret
//	                  key) and writes the access key ID to $WORK/s3-id
//	s3 bucket NAME    create bucket NAME on it
//	stalelock REPO PASSFILE
//	                  leave a restic lock in REPO whose holder is gone from
//	                  this host: a restic backup holding a shared lock,
//	                  SIGKILLed (with its child) once the lock is there
func Cmds(pgBin string) map[string]Cmd {
	return map[string]Cmd{
		"pg":        pgCmd(pgBin),
		"expand":    expand,
		"damage":    damage,
		"bigfile":   bigfile,
		"sagawait":  sagaWait,
		"healthy":   healthy,
		"hook":      hook,
		"stalelock": staleLock,
		"s3":        s3Cmd,
	}
}

// s3Cmd is `s3 start` and `s3 bucket NAME`. Scripts that use it begin
// with [!exec:versitygw] skip (unless $HOMELAB_VERSITYGW names it).
func s3Cmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: s3 start [tls] | s3 bucket NAME")
	}
	switch {
	case args[0] == "start" && (len(args) == 1 || len(args) == 2 && args[1] == "tls"):
		bin := os.Getenv("HOMELAB_VERSITYGW")
		if bin == "" {
			bin = "versitygw"
		}
		start := testenv.StartS3
		if len(args) == 2 {
			start = testenv.StartS3TLS
		}
		s, err := start(bin, ts.MkAbs("s3"))
		ts.Check(err)
		ts.Setenv("S3_CA", s.CAFile)
		ts.Defer(s.Stop)
		ts.Setenv("S3_URL", s.URL)
		ts.Setenv("S3_DIR", s.Dir)
		ts.Setenv("S3_SECRET", s.SecretAccessKey)
		ts.Setenv("S3_REGION", s.Region)
		ts.Check(os.WriteFile(ts.MkAbs("s3-id"), []byte(s.AccessKeyID+"\n"), 0o600))
		s3servers.Store(ts, s)
		ts.Defer(func() { s3servers.Delete(ts) })
	case args[0] == "bucket" && len(args) == 2:
		v, ok := s3servers.Load(ts)
		if !ok {
			ts.Fatalf("s3 bucket: no s3 start before it")
		}
		s := v.(*testenv.S3Server)
		c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKeyID, s.SecretAccessKey, ""), Region: s.Region,
			Secure: s.CAFile != "", Transport: s.Transport()})
		ts.Check(err)
		ts.Check(c.MakeBucket(context.Background(), args[1], minio.MakeBucketOptions{Region: s.Region}))
	default:
		ts.Fatalf("usage: s3 start [tls] | s3 bucket NAME")
	}
}

// s3servers holds each script's server of s3 start.
var s3servers sync.Map // *testscript.TestScript -> *testenv.S3Server

func staleLock(ts *testscript.TestScript, neg bool, args []string) {
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
}

func pgCmd(pgBin string) Cmd {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		var p *testenv.PG
		var stop func()
		var err error
		switch {
		case neg:
			ts.Fatalf("usage: pg start | pg archiving TARGET STANZA")
		case len(args) == 1 && args[0] == "start":
			p, stop, err = testenv.StartPostgres(pgBin)
		case len(args) == 3 && args[0] == "archiving":
			p, stop, err = pgArchiving(ts, pgBin, args[1], args[2])
		default:
			ts.Fatalf("usage: pg start | pg archiving TARGET STANZA")
		}
		ts.Check(err)
		ts.Defer(stop)
		ts.Setenv("PGHOST", p.Host)
		ts.Setenv("PGPORT", strconv.Itoa(p.Port))
		ts.Setenv("PGUSER", p.User)
		ts.Setenv("PGPASSWORD", p.Password)
	}
}

// pgArchiving is pg archiving: a state directory every user may pass
// through (PGBR_STATE; the server's OS user reads homelab's pgBackRest
// configuration there), a repository directory that user owns
// (PGBR_REPO), and a cluster archiving WAL with the archive_command
// homelab gives target (stanza) in a lab whose state_dir is PGBR_STATE.
// It sets PGBR_DATA and PGBR_SOCKET (the cluster's data and socket
// directories) and PGBR_OSUSER (the user the server runs as).
func pgArchiving(ts *testscript.TestScript, pgBin, target, stanza string) (*testenv.PG, func(), error) {
	state, err := testenv.MakeSearchableDir()
	ts.Check(err)
	ts.Defer(func() { os.RemoveAll(state) })
	repos, err := testenv.MakeSearchableDir()
	ts.Check(err)
	ts.Defer(func() { os.RemoveAll(repos) })
	repo := filepath.Join(repos, "repo")
	ts.Check(testenv.MakeOwnedDir(repo))
	osUser, err := testenv.ServerUser()
	ts.Check(err)
	if osUser == "" {
		osUser = os.Getenv("USER")
	}
	b := &lab.Backup{Name: target, PgBackRest: &lab.PgBackRest{Stanza: stanza}}
	p, stop, err := testenv.StartPostgresArchiving(pgBin, pgbackrest.ArchiveCommand(state, b))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range map[string]string{"PGBR_STATE": state, "PGBR_REPO": repo, "PGBR_DATA": filepath.Join(p.Dir, "data"), "PGBR_SOCKET": p.Dir, "PGBR_OSUSER": osUser} {
		ts.Setenv(k, v)
	}
	return p, stop, nil
}

func expand(ts *testscript.TestScript, neg bool, args []string) {
	for _, f := range args {
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(os.Expand(ts.ReadFile(f), ts.Getenv)), 0o644))
	}
}

func damage(ts *testscript.TestScript, neg bool, args []string) {
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
}

func bigfile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: bigfile PATH KIB")
	}
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
		_, err := f.Write(buf)
		ts.Check(err)
	}
}

// sagaWaitLimit bounds sagawait: far more than a step takes to start on
// a busy machine.
const sagaWaitLimit = 3 * time.Minute

func sagaWait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: sagawait STEP")
	}
	path := ts.MkAbs("state/catalog.db")
	started := func() bool {
		if _, err := os.Stat(path); err != nil {
			return false
		}
		s, err := catalog.Open(context.Background(), path)
		ts.Check(err)
		sagas, err := s.Sagas(context.Background(), catalog.SagaFilter{Kind: "upgrade", States: []catalog.SagaState{catalog.SagaRunning}})
		s.Close()
		ts.Check(err)
		for _, sg := range sagas {
			for _, st := range sg.Steps {
				if st.Name == args[0] && st.Phase == catalog.PhaseForward {
					return true
				}
			}
		}
		return false
	}
	if !Poll(sagaWaitLimit, started) {
		ts.Fatalf("step %q did not start within %s", args[0], sagaWaitLimit)
	}
}

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
