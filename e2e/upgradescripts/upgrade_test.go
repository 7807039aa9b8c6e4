package upgradescripts

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"homelab/e2e/e2etest"
	"homelab/internal/testenv"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// TestUpgradeScripts runs `homelab upgrade` end to end
// (testdata/*.txtar): real Docker Compose with the testapp images built
// here (FROM scratch: versions 1.0.0, 1.0.5, 1.1.0 migrate a data file
// forward, 2.0.0 never becomes healthy), the real restic, and a real
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
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(e *testscript.Env) error {
			b := make([]byte, 4)
			rand.Read(b)
			project := "hlup-" + hex.EncodeToString(b)
			e.Setenv("PROJECT", project)
			e.Setenv("PORT", strconv.Itoa(testenv.FreePort(t)))
			e.Setenv("TESTAPP", app)
			e.Defer(func() {
				exec.Command(docker, "compose", "-p", project, "down", "-v", "-t", "1").Run()
			})
			return e2etest.Setup(e)
		},
		Cmds: e2etest.Cmds(pgBin),
	})
}
