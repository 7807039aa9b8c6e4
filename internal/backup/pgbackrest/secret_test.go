package pgbackrest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// shimArgv puts a shim in front of pgbackrest that appends each argv to
// the returned file (writable by the cluster's OS user: the server's
// archive-push and archive-get go through it too).
func shimArgv(t *testing.T) string {
	t.Helper()
	shims := testenv.SearchableDir(t)
	argv := filepath.Join(testenv.SearchableDir(t), "argv.log")
	if err := os.WriteFile(argv, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(argv, 0o666); err != nil {
		t.Fatal(err)
	}
	real := testenv.PgBackRest(t)
	shim := "#!/bin/sh\nprintf '%s\\n' \"pgbackrest $*\" >> " + argv + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(shims, "pgbackrest"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", shims+":"+os.Getenv("PATH"))
	return argv
}

// s3Repo points e's target at a new bucket of srv (https, its CA in
// ca_file), under prefix pg/db: the access key ID from
// TEST_PGBR_S3_ID, the secret key from a file.
func (e *env) s3Repo(t *testing.T, srv *testenv.S3Server) {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "s3-secret")
	if err := os.WriteFile(secret, []byte(srv.SecretAccessKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_PGBR_S3_ID", srv.AccessKeyID)
	e.t.Spec.PgBackRest.Repo = lab.PgBackRestRepo{S3Location: lab.S3Location{
		Endpoint: srv.URL, Bucket: srv.Bucket(t, "pgbr"), Prefix: "pg/db", CAFile: srv.CAFile,
		S3Credentials: lab.S3Credentials{AccessKeyIDEnv: "TEST_PGBR_S3_ID", SecretAccessKeyFile: secret, Region: srv.Region}}}
}

// TestS3Repository is a target whose repository is an encrypted prefix
// of a bucket on a real S3 server (versitygw over https, its certificate
// signed by a test CA) run through the manager with a real catalog:
// setup (stanza-create and check), a full and an incr backup, the list
// and the recoverable window, a drill, a prune (expire) and pgbackrest
// verify all reach the bucket. A shim in front of pgbackrest records
// every argv homelab and the server start; neither it, nor the manager's
// log, nor pgbackrest.conf, nor the catalog, nor any error holds the
// cipher passphrase or an S3 key, also when the keys are wrong. The
// commands PostgreSQL starts read the secrets from conf.d/secrets.conf,
// 0600.
func TestS3Repository(t *testing.T) {
	const pass = "cipher-pass-never-in-argv-7731"
	t.Setenv("TEST_PGBR_CIPHER", pass)
	argv := shimArgv(t)
	srv := testenv.S3TLS(t)
	e := newEnv(t, "", false)
	e.s3Repo(t, srv)
	spec := e.t.Spec
	spec.PgBackRest.CipherPassEnv = "TEST_PGBR_CIPHER"
	spec.Drill = lab.Drill{Timeout: 10 * time.Minute, Checks: []lab.Check{{SQL: "select count(*) = 3 from markers"}}}
	ctx := context.Background()

	store, err := catalog.Open(ctx, filepath.Join(e.state, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var log bytes.Buffer
	m := &backup.Manager{Lab: &lab.Lab{StateDir: e.state, Backups: map[string]*lab.Backup{"db": spec}},
		Catalog: store, Providers: map[string]backup.Provider{lab.ProviderPgBackRest: e.p},
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}

	if err := m.Setup(ctx, "db"); err != nil {
		t.Fatalf("setup: %v\n%s", err, srv.Log())
	}
	e.pg.PSQL(t, "postgres", "create table markers as select generate_series(1, 3) n")
	m.BackupType = TypeFull
	full := m.Backup(ctx, "db")
	if full.Err != nil || !strings.HasSuffix(full.Run.SnapshotID, "F") {
		t.Fatalf("full backup: %v %+v", full.Err, full.Run)
	}
	m.BackupType = TypeIncr
	incr := m.Backup(ctx, "db")
	if incr.Err != nil || !strings.HasPrefix(incr.Run.SnapshotID, full.Run.SnapshotID+"_") {
		t.Fatalf("incr backup: %v %+v", incr.Err, incr.Run)
	}
	snaps, err := e.p.List(ctx, e.t)
	if err != nil || ids(snaps) != full.Run.SnapshotID+" "+incr.Run.SnapshotID {
		t.Fatalf("list: %s %v", ids(snaps), err)
	}
	w, err := e.p.Window(ctx, e.t)
	if err != nil || !w.From.Equal(snaps[0].Time) || w.WALTo == "" {
		t.Fatalf("window %+v %v", w, err)
	}
	if out := m.Verify(ctx, "db"); out.Err != nil || out.Drill.Result != catalog.ResultOK || out.Drill.SnapshotID != incr.Run.SnapshotID {
		t.Fatalf("drill: %v %+v", out.Err, out.Drill)
	}
	if rep := m.CheckTarget(ctx, "db"); rep.Err != nil {
		t.Fatalf("pgbackrest verify: %v", rep.Err)
	}
	// A second full, then prune keeping one: the first full goes with its
	// incr, unless drilled (the floor): the drilled incr holds it.
	m.BackupType = TypeFull
	second := m.Backup(ctx, "db")
	if second.Err != nil {
		t.Fatal(second.Err)
	}
	if plan, err := m.Prune(ctx, "db", false); err != nil || len(plan.Remove) != 0 || ids(plan.Protected) != full.Run.SnapshotID+" "+incr.Run.SnapshotID {
		t.Fatalf("prune with the drilled incr: %v protected %s removed %s", err, ids(plan.Protected), ids(plan.Remove))
	}
	if out := m.Verify(ctx, "db"); out.Err != nil || out.Drill.SnapshotID != second.Run.SnapshotID {
		t.Fatalf("drill of the second full: %v %+v", out.Err, out.Drill)
	}
	if plan, err := m.Prune(ctx, "db", false); err != nil || ids(plan.Remove) != full.Run.SnapshotID+" "+incr.Run.SnapshotID {
		t.Fatalf("prune: %v removed %s", err, ids(plan.Remove))
	}
	if snaps, err := e.p.List(ctx, e.t); err != nil || ids(snaps) != second.Run.SnapshotID {
		t.Fatalf("after prune: %s %v", ids(snaps), err)
	}
	backups, _ := filepath.Glob(filepath.Join(srv.Dir, spec.PgBackRest.Repo.Bucket, "pg", "db", "backup", "main", "2*"))
	if len(backups) != 1 || filepath.Base(backups[0]) != second.Run.SnapshotID {
		t.Errorf("backups in the bucket: %v, want %s", backups, second.Run.SnapshotID)
	}

	// Wrong keys fail, with neither key in the error or the catalog.
	const wrong = "wrong-s3-secret-5150"
	if err := os.WriteFile(spec.PgBackRest.Repo.SecretAccessKeyFile, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := m.Backup(ctx, "db")
	var s3e *S3Error
	if !errors.As(bad.Err, &s3e) || !strings.Contains(bad.Err.Error(), "the S3 server refused the keys (SignatureDoesNotMatch): check pgbackrest.repo's access_key_id_env/_file") || strings.Contains(bad.Err.Error(), "\n") {
		t.Fatalf("a backup with a wrong S3 secret key: %v, want one line naming the keys", bad.Err)
	}
	// A bucket that is not there.
	nobucket := *spec.PgBackRest
	nobucket.Repo.Bucket = "no-such-bucket"
	tg := backup.Target{Spec: &lab.Backup{Name: "db", Provider: lab.ProviderPgBackRest, PgBackRest: &nobucket}}
	if err := os.WriteFile(spec.PgBackRest.Repo.SecretAccessKeyFile, []byte(srv.SecretAccessKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Setup(ctx, tg); !errors.As(err, &s3e) || !strings.Contains(err.Error(), "the bucket does not exist (NoSuchBucket): create the bucket") {
		t.Errorf("setup on a missing bucket: %v", err)
	}
	if _, err := e.p.List(ctx, tg); !errors.As(err, &s3e) || !strings.Contains(err.Error(), "the bucket does not exist (NoSuchBucket): create the bucket") {
		t.Errorf("list of a missing bucket: %v", err)
	}
	if _, err := e.p.runner(spec); err != nil { // pgbackrest.conf as the target has it
		t.Fatal(err)
	}

	conf, err := os.ReadFile(ConfigPath(e.state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"repo1-type=s3", "repo1-s3-bucket=" + spec.PgBackRest.Repo.Bucket, "repo1-s3-endpoint=127.0.0.1", "repo1-s3-uri-style=path", "repo1-path=/pg/db", "repo1-storage-ca-file="} {
		if !strings.Contains(string(conf), want+"\n") && !strings.Contains(string(conf), want) {
			t.Errorf("pgbackrest.conf has no %s:\n%s", want, conf)
		}
	}
	db, err := os.ReadFile(filepath.Join(e.state, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	log2, err := os.ReadFile(argv)
	if err != nil || !strings.Contains(string(log2), " backup") || !strings.Contains(string(log2), " archive-push") || !strings.Contains(string(log2), " archive-get") {
		t.Fatalf("argv log %q: %v", log2, err)
	}
	for what, text := range map[string]string{"argv": string(log2), "pgbackrest.conf": string(conf), "catalog": string(db),
		"log": log.String(), "error": bad.Err.Error() + bad.Run.Error} {
		for _, secret := range []string{pass, srv.SecretAccessKey, srv.AccessKeyID, wrong} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the secret %s", what, secret)
			}
		}
	}
	for _, f := range []string{filepath.Join(Dir(e.state, "db"), "conf.d", "secrets.conf"), ConfigPath(e.state, "db")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
}

// TestCipherPassNeverInArgv: an encrypted local repository backs up and
// drills with the passphrase in no argv, pgbackrest.conf or error, also
// when it is wrong.
func TestCipherPassNeverInArgv(t *testing.T) {
	const pass = "cipher-pass-never-in-argv-4242"
	t.Setenv("TEST_PGBR_CIPHER", pass)
	argv := shimArgv(t)
	e := newEnv(t, "", false)
	e.t.Spec.PgBackRest.CipherPassEnv = "TEST_PGBR_CIPHER"
	ctx := context.Background()
	if err := e.p.Setup(ctx, e.t); err != nil {
		t.Fatal(err)
	}
	snap := e.backup(t, TypeFull)
	rep, err := e.p.Drill(ctx, e.t, snap, "20261206T000000Z-cipher")
	if err != nil || len(rep.Failed()) > 0 {
		t.Fatalf("drill: %v %s", err, rep.Output())
	}
	t.Setenv("TEST_PGBR_CIPHER", "wrong-pass-4411")
	_, err = e.p.List(ctx, e.t)
	if err == nil || strings.Contains(err.Error(), "wrong-pass-4411") || strings.Contains(err.Error(), pass) {
		t.Errorf("list with a wrong passphrase: %v", err)
	}
	log, err := os.ReadFile(argv)
	if err != nil || !strings.Contains(string(log), " backup") || !strings.Contains(string(log), " restore") {
		t.Fatalf("argv log %q: %v", log, err)
	}
	conf, err := os.ReadFile(ConfigPath(e.state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"argv": string(log), "pgbackrest.conf": string(conf)} {
		if strings.Contains(text, pass) || strings.Contains(text, "wrong-pass-4411") {
			t.Errorf("%s holds the passphrase:\n%s", what, text)
		}
	}
}

// TestWatch: the S3 causes read from pgBackRest's stderr, line by line,
// with the S3 code when the response quotes one; the first cause wins.
func TestWatch(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  string // cause (code); "" for none
	}{
		{[]string{"ERROR: [039]: HTTP request failed with 403 (Forbidden):", "*** Response Content ***:", "<Error><Code>SignatureDoesNotMatch</Code><Message>x</Message>"}, "the S3 server refused the keys (SignatureDoesNotMatch)"},
		{[]string{"<Error><Code>NoSuchKey</Code>", "<Error><Code>NoSuchBucket</Code>"}, "the bucket does not exist (NoSuchBucket)"},
		{[]string{"ERROR: [095]: unable to find hostname '127.0.0.1' in certificate common name or subject alternative names"}, "the server's TLS certificate is not trusted"},
		{[]string{"ERROR: [049]: unable to connect to '127.0.0.1:1 (127.0.0.1)': [111] Connection refused", "<Code>AccessDenied</Code>"}, "the S3 server cannot be reached"},
		{[]string{"ERROR: [082]: WAL segment 000000010000000000000001 was not archived before the 60000ms timeout"}, ""},
	} {
		w := &watch{s3: true}
		for _, l := range c.lines {
			w.line(l)
		}
		r := &runner{b: &lab.Backup{Name: "db", PgBackRest: &lab.PgBackRest{}}}
		got := ""
		if err := r.s3Error(w, errors.New("x")); err != nil {
			got = err.(*S3Error).Cause
		}
		if got != c.want {
			t.Errorf("%q: cause %q, want %q", c.lines, got, c.want)
		}
	}
}
