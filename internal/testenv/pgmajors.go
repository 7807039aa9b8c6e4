package testenv

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PGMajorsBins are the bin directories of two PostgreSQL majors that run
// side by side: Old (15, bookworm's) and New (17, trixie's, with
// pg_upgrade). Each holds wrappers of initdb, pg_ctl, postgres, psql,
// pg_dump, pg_controldata, pg_upgrade, vacuumdb, pgbench, ... that run the
// real binaries in a chroot (scripts/build-pg-majors-root.sh) where /tmp
// and the other data paths are the host's: paths given to them mean the
// same inside and out. Called as root, they run as the root's postgres
// user, whose uid and gid are this machine's postgres user's.
type PGMajorsBins struct {
	Old, New           string
	OldMajor, NewMajor string
}

var (
	pgMajorsMu  sync.Mutex
	pgMajorsDir string // per test process
)

// PGMajors returns the bin directories of PostgreSQL 15 and 17, building
// their root with scripts/build-pg-majors-root.sh when this machine does
// not have it yet (a few minutes, as root, with debootstrap and Debian's
// mirror). When it is missing and cannot be built here (not root, no
// debootstrap), the test is skipped, or fails under CI=true.
func PGMajors(t testing.TB) PGMajorsBins {
	t.Helper()
	pgMajorsMu.Lock()
	defer pgMajorsMu.Unlock()
	if pgMajorsDir == "" {
		script := filepath.Join(moduleRoot(t), "scripts", "build-pg-majors-root.sh")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 3 {
				Missing(t, "PostgreSQL 15 and 17 root: %s", strings.TrimSpace(stderr.String()))
			}
			t.Fatalf("%s: %v\n%s", script, err, stderr.String())
		}
		pgMajorsDir = strings.TrimSpace(string(out))
	}
	return PGMajorsBins{
		Old: filepath.Join(pgMajorsDir, "bin", "15"), New: filepath.Join(pgMajorsDir, "bin", "17"),
		OldMajor: "15", NewMajor: "17",
	}
}
