package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"homelab/internal/restic"
)

// Missing skips t (or fails it under CI=true) because a tool is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a required tool is missing: %s", msg)
	}
	t.Skipf("skipping: %s (run scripts/install-deps.sh)", msg)
}

// Restic returns the path of a restic >= restic.MinVersion.
func Restic(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("HOMELAB_RESTIC")
	if bin == "" {
		p, err := exec.LookPath("restic")
		if err != nil {
			Missing(t, "restic not found in PATH")
		}
		bin = p
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		Missing(t, "%s version: %v", bin, err)
	}
	v, err := restic.ParseVersion(string(out))
	if err != nil || v.Less(restic.MinVersion) {
		Missing(t, "restic %s is older than %s", v, restic.MinVersion)
	}
	return bin
}

// PGBinDir returns the directory holding initdb and pg_ctl.
func PGBinDir(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	Missing(t, "PostgreSQL server binaries (initdb, pg_ctl) not found")
	return ""
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// PG is a running throwaway PostgreSQL cluster.
type PG struct {
	Host     string // 127.0.0.1
	Port     int
	User     string // superuser
	Password string
	Dir      string // cluster directory (removed on cleanup)
	BinDir   string
}

// Env returns libpq environment for the superuser (PGHOST, PGPORT,
// PGUSER, PGPASSWORD).
func (p *PG) Env() []string {
	return []string{"PGHOST=" + p.Host, "PGPORT=" + strconv.Itoa(p.Port), "PGUSER=" + p.User, "PGPASSWORD=" + p.Password}
}

// DSN returns a connection string for database db.
func (p *PG) DSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", p.User, p.Password, p.Host, p.Port, db)
}

// PSQL runs SQL (psql -XAtq -v ON_ERROR_STOP=1) in db and returns the
// trimmed output; it fails the test on error.
func (p *PG) PSQL(t testing.TB, db, sql string) string {
	t.Helper()
	cmd := exec.Command("psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), p.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Postgres starts a throwaway cluster for the test and stops it on
// cleanup. As root it runs the server as the "postgres" (or "nobody") user,
// because initdb refuses to run as root.
func Postgres(t testing.TB) *PG {
	t.Helper()
	bin := PGBinDir(t)
	if _, err := exec.LookPath("pg_dump"); err != nil {
		Missing(t, "pg_dump not found")
	}
	p, stop, err := StartPostgres(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return p
}

// StartPostgres starts a throwaway cluster with the binaries in bin and
// returns it with the function that stops it and removes its files.
func StartPostgres(bin string) (p *PG, stop func(), err error) { return startPostgres(bin, nil) }

// startPostgres is StartPostgres with setup, when set, called after initdb
// and before the server starts (the data directory is p.Dir/data).
func startPostgres(bin string, setup func(p *PG, data string) error) (p *PG, stop func(), err error) {
	dir, err := os.MkdirTemp("", "homelab-pg-")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	p = &PG{Host: "127.0.0.1", Port: port, User: "postgres", Password: randHex(12), Dir: dir, BinDir: bin}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o600); err != nil {
		return nil, nil, err
	}
	if cred != nil {
		os.Chown(dir, int(cred.Uid), int(cred.Gid))
		os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("initdb", "-D", data, "-U", p.User, "-A", "scram-sha-256", "--pwfile", pwfile, "-E", "UTF8", "--no-sync"); err != nil {
		return nil, nil, err
	}
	if setup != nil {
		if err := setup(p, data); err != nil {
			return nil, nil, err
		}
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c full_page_writes=off -c synchronous_commit=off", p.Port, dir)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		return nil, nil, err
	}
	stop = func() {
		run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
	return p, stop, nil
}

func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and neither user postgres nor nobody exists for initdb")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ResticRepo creates an initialised local repository in a temp dir and
// returns its path and password file.
func ResticRepo(t testing.TB) (repo, passwordFile string) {
	t.Helper()
	bin := Restic(t)
	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	passwordFile = filepath.Join(dir, "repo.pass")
	if err := os.WriteFile(passwordFile, []byte(randHex(16)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "init", "--repo", repo, "--password-file", passwordFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic init: %v\n%s", err, out)
	}
	return repo, passwordFile
}

// Await calls f until it returns true, every 20 ms, failing the test
// when it has not within two minutes (a hang's limit, not a timing:
// tests await events, they never assert a duration).
func Await(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within two minutes: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
