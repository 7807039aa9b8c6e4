package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// PgBackRest returns the path of pgbackrest (>= 2.45; Debian: apt-get
// install pgbackrest), or skips (fails under CI=true).
func PgBackRest(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("pgbackrest")
	if err != nil {
		Missing(t, "pgbackrest not found (apt-get install pgbackrest)")
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("pgbackrest version: %v", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "pgBackRest %d.%d", &major, &minor); err != nil || major < 2 || (major == 2 && minor < 45) {
		Missing(t, "pgbackrest %q is older than 2.45", strings.TrimSpace(string(out)))
	}
	return bin
}

// PostgresArchiving starts a throwaway cluster, like Postgres, with WAL
// archiving on: archive_mode = on and archiveCommand (pgbackrest
// archive-push ... %p), wal_level replica. Its socket is in p.Dir, and
// pg_hba.conf first lets the server's OS user in over the socket as
// postgres by peer authentication (as Debian's default does), which is how
// pgbackrest, run as that user, connects; without root every local
// connection is trusted instead (the OS user is not "postgres").
func PostgresArchiving(t testing.TB, archiveCommand string) *PG {
	t.Helper()
	p, stop, err := StartPostgresArchiving(PGBinDir(t), archiveCommand)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return p
}

// StartPostgresArchiving is PostgresArchiving for callers without a
// testing.TB (testscript commands), with the binaries in bin: it returns
// the cluster and the function that stops it and removes its files.
func StartPostgresArchiving(bin, archiveCommand string) (*PG, func(), error) {
	return startPostgres(bin, func(p *PG, data string) error {
		conf := fmt.Sprintf("\narchive_mode = on\narchive_command = '%s'\nwal_level = replica\nmax_wal_senders = 3\n", strings.ReplaceAll(archiveCommand, "'", "''"))
		f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(conf); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		hbaPath := filepath.Join(data, "pg_hba.conf")
		hba, err := os.ReadFile(hbaPath)
		if err != nil {
			return err
		}
		first := "local all postgres peer\n"
		if os.Geteuid() != 0 {
			first = "local all all trust\n"
		}
		return os.WriteFile(hbaPath, append([]byte(first), hba...), 0o600)
	})
}

// SearchableDir returns a new directory under the system temp directory
// (t.TempDir's parents are 0700) that every user may pass through (0711),
// removed on cleanup: a state directory whose pgbackrest configuration
// the server's OS user reads.
func SearchableDir(t testing.TB) string {
	t.Helper()
	dir, err := MakeSearchableDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// MakeSearchableDir is SearchableDir for callers without a testing.TB:
// the caller removes the directory.
func MakeSearchableDir() (string, error) {
	dir, err := os.MkdirTemp("", "homelab-test-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// OwnedDir returns a new empty directory (0700) that the PostgreSQL
// servers of this package's clusters own (their OS user when the tests
// run as root): a pgBackRest repository. Removed on cleanup.
func OwnedDir(t testing.TB) string {
	t.Helper()
	sub := filepath.Join(SearchableDir(t), "d")
	if err := MakeOwnedDir(sub); err != nil {
		t.Fatal(err)
	}
	return sub
}

// MakeOwnedDir creates dir (0700), owned by the user the throwaway
// clusters run as when the tests run as root (ServerUser).
func MakeOwnedDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	cred, err := serverCredential()
	if err != nil || cred == nil {
		return err
	}
	return os.Chown(dir, int(cred.Uid), int(cred.Gid))
}

// ServerUser is the OS user the throwaway clusters run as: "postgres"
// (or "nobody") when the tests run as root, else "" (the user running
// them).
func ServerUser() (string, error) {
	cred, err := serverCredential()
	if err != nil || cred == nil {
		return "", err
	}
	u, err := user.LookupId(fmt.Sprint(cred.Uid))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// ClusterOSUser is the os_user of a pgbackrest target backing up one of
// this package's clusters: the user the server runs as when the tests run
// as root (ServerUser), else "root", which makes homelab run pgbackrest as
// itself (the user the server runs as then).
func ClusterOSUser(t testing.TB) string {
	t.Helper()
	u, err := ServerUser()
	if err != nil {
		t.Fatal(err)
	}
	if u == "" {
		return "root"
	}
	return u
}

// DamageBackupFiles overwrites every file matching the glob pattern (the
// files of backup sets in a pgBackRest repository, or in the S3 posix
// backend's directory that keeps one) with the 7 bytes "damaged", which
// pgBackRest's restore and verify reject (size and checksum), and fails
// t when nothing matches (the damage would prove nothing).
func DamageBackupFiles(t testing.TB, pattern string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no backup files to damage match %s (%v)", pattern, err)
	}
	for _, f := range files {
		if err := os.WriteFile(f, []byte("damaged"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}
