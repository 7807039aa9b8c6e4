package labsnapshot

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"homelab/e2e/e2etest"
	"homelab/internal/testenv"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// TestSnapshotScripts runs testdata/*.txtar with the real restic, a real
// PostgreSQL where a script says `pg start`, and the testapp (versions
// 1.x healthy, 2.x never healthy) as $TESTAPP on a free $PORT. The
// testapp a script leaves running (app.pid) is killed after it.
func TestSnapshotScripts(t *testing.T) {
	testenv.Restic(t)
	pgBin := testenv.PGBinDir(t)
	app := testenv.TestApp(t, "1.0.0")
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(e *testscript.Env) error {
			e.Setenv("PORT", strconv.Itoa(testenv.FreePort(t)))
			e.Setenv("TESTAPP", app)
			e.Defer(func() {
				if b, err := os.ReadFile(filepath.Join(e.WorkDir, "app.pid")); err == nil {
					if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			})
			return e2etest.Setup(e)
		},
		Cmds: e2etest.Cmds(pgBin),
	})
}
