package pgbackrest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/providertest"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// TestProvider runs the provider conformance suite for pgbackrest: each
// case on a cluster of its own, archiving into a fresh encrypted
// repository, a local directory or a prefix of a bucket on a real S3
// server (versitygw over https). Every backup is a full one (keep_last
// counts full backups), restores stop where the backup set ends
// (Recovery.Immediate: the data as backed up), and in-place restores are
// the clusterrestore saga's, which Restore refuses.
func TestProvider(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		Kinds:          []providertest.RepoKind{localRepo, s3Repo},
		Manager:        func(m *backup.Manager) { m.BackupType = TypeFull },
		InPlaceRefused: true,
		New: func(t *testing.T, stateDir string) (backup.Provider, providertest.Source) {
			p := &Provider{StateDir: stateDir}
			return p, newPTSource(t, p)
		},
	})
}

// ptTarget is the suite's target name; each case has its own state
// directory, cluster and repository.
const ptTarget = "pgbr"

// ptStorage is one case's repository as pgBackRest alone reaches it:
// the options and environment (the secrets) of a bare pgbackrest, with
// no configuration of homelab's.
type ptStorage struct {
	stateDir string
	opts     []string
	env      []string
	secrets  []string
	setsDir  string // where the backup sets' files are: <repo>/backup/<stanza>
}

func randomSecret(what string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return what + "-" + hex.EncodeToString(b)
}

// localRepo is an encrypted repository in a local directory, its cipher
// passphrase in a file.
var localRepo = providertest.RepoKind{Name: "local", Commands: []string{"pgbackrest"}, New: func(t *testing.T, stateDir string) providertest.Repo {
	testenv.PgBackRest(t)
	path := filepath.Join(testenv.OwnedDir(t), "repo")
	pass := randomSecret("local-cipher")
	passFile := filepath.Join(t.TempDir(), "cipher-pass")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := &ptStorage{stateDir: stateDir, opts: []string{"--repo1-path=" + path}, env: []string{"PGBACKREST_REPO1_CIPHER_PASS=" + pass},
		secrets: []string{pass}, setsDir: filepath.Join(path, "backup", "main")}
	return st.repo(func(spec *lab.Backup) {
		spec.PgBackRest.Repo = lab.PgBackRestRepo{Path: path}
		spec.PgBackRest.CipherPassFile = passFile
	})
}}

// s3Repo is an encrypted repository under a prefix of a fresh bucket on a
// throwaway S3 server over https (its certificate signed by a test CA):
// the access key ID and the cipher passphrase from the environment, the
// secret key from a file.
var s3Repo = providertest.RepoKind{Name: "s3", Commands: []string{"pgbackrest"}, New: func(t *testing.T, stateDir string) providertest.Repo {
	testenv.PgBackRest(t)
	srv := testenv.S3TLS(t)
	bucket := srv.Bucket(t, "ptpgbr")
	secretFile := filepath.Join(t.TempDir(), "s3-secret")
	if err := os.WriteFile(secretFile, []byte(srv.SecretAccessKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pass := randomSecret("s3-cipher")
	t.Setenv("HOMELAB_PT_PGBR_S3_ID", srv.AccessKeyID)
	t.Setenv("HOMELAB_PT_PGBR_CIPHER", pass)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	region := srv.Region
	if region == "" {
		region = "us-east-1"
	}
	// The bare pgbackrest runs as the cluster's OS user: a copy of the CA
	// it can read.
	ca := filepath.Join(testenv.OwnedDir(t), "ca.pem")
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	st := &ptStorage{stateDir: stateDir,
		opts: []string{"--repo1-type=s3", "--repo1-s3-bucket=" + bucket, "--repo1-s3-endpoint=" + u.Hostname(), "--repo1-storage-port=" + u.Port(),
			"--repo1-s3-region=" + region, "--repo1-s3-uri-style=path", "--repo1-path=/pg/pt", "--repo1-storage-ca-file=" + ca},
		env: []string{"PGBACKREST_REPO1_CIPHER_PASS=" + pass, "PGBACKREST_REPO1_S3_KEY=" + srv.AccessKeyID, "PGBACKREST_REPO1_S3_KEY_SECRET=" + srv.SecretAccessKey},
		// The posix backend keeps each object in a file named by its key.
		secrets: []string{pass, srv.AccessKeyID, srv.SecretAccessKey}, setsDir: filepath.Join(srv.Dir, bucket, "pg", "pt", "backup", "main")}
	return st.repo(func(spec *lab.Backup) {
		spec.PgBackRest.Repo = lab.PgBackRestRepo{S3Location: lab.S3Location{Endpoint: srv.URL, Bucket: bucket, Prefix: "pg/pt", CAFile: srv.CAFile,
			S3Credentials: lab.S3Credentials{AccessKeyIDEnv: "HOMELAB_PT_PGBR_S3_ID", SecretAccessKeyFile: secretFile, Region: srv.Region}}}
		spec.PgBackRest.CipherPassEnv = "HOMELAB_PT_PGBR_CIPHER"
	})
}}

// repo is the suite's view of st; place puts it into the target.
func (st *ptStorage) repo(place func(spec *lab.Backup)) providertest.Repo {
	return providertest.Repo{Place: place, Secrets: st.secrets, Damage: st.damage, Stored: st.stored, Locks: st.locks}
}

// damage overwrites every file of every backup set's copy of the
// cluster's databases (pg_data/base/<db>/<file>), which pgbackrest
// restore then finds unreadable (encrypted, compressed, checksummed).
func (st *ptStorage) damage(t *testing.T) {
	t.Helper()
	testenv.DamageBackupFiles(t, filepath.Join(st.setsDir, "*", "pg_data", "base", "*", "*"))
}

// stored lists the labels of every backup set pgbackrest info finds in
// the repository, run bare: the repository's options and secrets only,
// as the cluster's OS user, its lock and log paths its own.
func (st *ptStorage) stored(t *testing.T) []string {
	t.Helper()
	own := testenv.OwnedDir(t)
	conf := filepath.Join(own, "empty.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config=" + conf, "--stanza=main", "--lock-path=" + own, "--log-path=" + own,
		"--log-level-file=off", "--log-level-console=off", "--log-level-stderr=warn", "--repo1-cipher-type=aes-256-cbc"}, st.opts...)
	args = append(args, "info", "--output=json")
	name := "pgbackrest"
	if os.Geteuid() == 0 {
		u, err := testenv.ServerUser()
		if err != nil {
			t.Fatal(err)
		}
		args = append([]string{"-u", u, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = append(os.Environ(), st.env...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("bare pgbackrest info: %v", err)
	}
	var info []struct {
		Backup []struct {
			Label string `json:"label"`
		} `json:"backup"`
	}
	if err := json.Unmarshal(out, &info); err != nil || len(info) != 1 {
		t.Fatalf("pgbackrest info: %v\n%s", err, out)
	}
	var labels []string
	for _, b := range info[0].Backup {
		labels = append(labels, b.Label)
	}
	return labels
}

// locks lists the target's pgBackRest lock files (under its lock-path)
// that a process still holds (pgBackRest locks them with flock).
func (st *ptStorage) locks(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(Dir(st.stateDir, ptTarget), "lock", "*.lock"))
	var held []string
	for _, f := range files {
		fd, err := syscall.Open(f, syscall.O_RDONLY, 0)
		if err != nil {
			continue // gone since the glob
		}
		if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			held = append(held, f)
		}
		syscall.Close(fd)
	}
	return held
}

// ptSource is a cluster of its own archiving through the target's
// archive-push, with a table items in the database postgres. Its
// archive_command waits while the file stall exists, after saying so on
// the fifo underway: a backup then waits for its last WAL segment to
// reach the repository (pgBackRest's archive check) until it is
// cancelled.
type ptSource struct {
	p        *Provider
	spec     *lab.Backup
	pg       *testenv.PG
	stall    string
	underway string
	// fifo is underway, open for reading and writing as long as the
	// cluster runs (see newPTSource).
	fifo    *os.File
	changes int
}

func newPTSource(t *testing.T, p *Provider) *ptSource {
	t.Helper()
	dir := testenv.SearchableDir(t)
	s := &ptSource{p: p, stall: filepath.Join(dir, "stall"), underway: filepath.Join(dir, "underway")}
	if err := syscall.Mkfifo(s.underway, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.underway, 0o666); err != nil { // whatever the umask
		t.Fatal(err)
	}
	// Open for reading and writing (on Linux that never blocks), and
	// closed only once the cluster has stopped (this cleanup runs after
	// PostgresArchiving's): the fifo always has a reader, so
	// archive_command's echo never blocks, whenever the case ends; and
	// Stall's reader, waiting in the poller, ends when it is closed.
	fifo, err := os.OpenFile(s.underway, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fifo.Close() })
	s.fifo = fifo
	s.spec = &lab.Backup{Name: ptTarget, Provider: lab.ProviderPgBackRest,
		// archive_timeout: a stalled backup waits for its last segment
		// (Stall) far longer than the case needs to cancel it.
		PgBackRest: &lab.PgBackRest{Stanza: "main", ProcessMax: 2, Database: "postgres", ArchiveTimeout: time.Hour},
		Drill:      lab.Drill{Checks: []lab.Check{{SQL: "select count(*) >= 100 from items"}}}}
	archive := fmt.Sprintf(`if [ -e %[1]s ]; then echo underway > %[2]s; while [ -e %[1]s ]; do sleep 0.1; done; fi; %[3]s`,
		s.stall, s.underway, ArchiveCommand(p.StateDir, s.spec))
	s.pg = testenv.PostgresArchiving(t, archive)
	s.spec.PgBackRest.Cluster = lab.PgBackRestCluster{DataDir: filepath.Join(s.pg.Dir, "data"), Port: s.pg.Port,
		SocketDir: s.pg.Dir, OSUser: "postgres", User: s.pg.User}
	if os.Geteuid() != 0 {
		s.spec.PgBackRest.Cluster.OSUser = "root" // run as ourselves
	}
	s.pg.PSQL(t, "postgres", `create table items (id serial primary key, name text not null, price numeric(10,2));
insert into items(name, price) select 'item ' || g, g * 1.5 from generate_series(1, 500) g`)
	return s
}

func (s *ptSource) Spec() *lab.Backup { return s.spec }

func (s *ptSource) State(t *testing.T) string { return ptFingerprint(t, s.pg) }

// ptFingerprint is the cluster's public tables and the count and md5 of
// the ordered rows of items.
func ptFingerprint(t *testing.T, pg *testenv.PG) string {
	t.Helper()
	return pg.PSQL(t, "postgres", `select (select string_agg(tablename, ' ' order by tablename) from pg_tables where schemaname = 'public')
  || E'\n' || (select count(*) || ' ' || md5(string_agg(i::text, '|' order by i.id)) from items i)`)
}

// Change updates, deletes and adds rows and adds a table.
func (s *ptSource) Change(t *testing.T) {
	s.changes++
	n := s.changes
	s.pg.PSQL(t, "postgres", fmt.Sprintf(`update items set price = price + %[1]d where id %% 7 = %[1]d %% 7;
delete from items where id %% 13 = %[1]d;
insert into items(name, price) select 'change %[1]d/' || g, g from generate_series(1, 20) g;
create table change_%[1]d (n int)`, n))
}

// Destination is a new data directory, the restored cluster started on a
// free port; what was restored is read there, then the cluster is
// stopped.
func (s *ptSource) Destination(t *testing.T) (backup.Destination, func(t *testing.T) string) {
	t.Helper()
	dir := filepath.Join(testenv.OwnedDir(t), "restored")
	port := testenv.FreePort(t)
	stop := func() {
		if r, err := s.p.runner(s.spec); err == nil {
			r.cluster(dir, port).stop(context.Background())
		}
	}
	t.Cleanup(stop)
	dest := backup.Destination{Path: dir, Port: port, Recovery: backup.Recovery{Immediate: true}}
	return dest, func(t *testing.T) string {
		t.Helper()
		pg := *s.pg
		pg.Port, pg.Dir = port, dir
		defer stop()
		return ptFingerprint(t, &pg)
	}
}

// Break points the target at a port nothing listens on: the cluster is
// unreachable.
func (s *ptSource) Break(t *testing.T) {
	s.spec.PgBackRest.Cluster.Port = testenv.FreePort(t)
}

// Stall makes archive_command wait (see ptSource); the returned channel
// is closed once it waits, which is during the backup, at its last WAL
// segment.
func (s *ptSource) Stall(t *testing.T) <-chan struct{} {
	t.Helper()
	if err := os.WriteFile(s.stall, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	underway := make(chan struct{})
	go func() {
		// archive_command's line; or, once the fifo is closed at the end
		// of the case, an error, and underway stays open.
		if n, _ := s.fifo.Read(make([]byte, 16)); n > 0 {
			close(underway)
		}
	}()
	t.Cleanup(func() { os.Remove(s.stall) }) // before the cluster stops: it archives on
	return underway
}

func (s *ptSource) FailingCheck() lab.Check { return lab.Check{SQL: "select count(*) < 0 from items"} }

// Leftovers are drill directories of the target.
func (s *ptSource) Leftovers(t *testing.T) []string {
	left, _ := filepath.Glob(drillPrefix(s.p.StateDir, ptTarget) + "*")
	return left
}

// Secrets: the cluster is reached by peer authentication over its
// socket; the repository's secrets are the kind's.
func (s *ptSource) Secrets() []string { return nil }
