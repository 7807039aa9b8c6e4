package cli_test

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"homelab/e2e/e2etest"
	"homelab/internal/cli"
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
	if os.Getenv("CI") == "true" {
		// s3.txtar skips without versitygw; under CI its absence fails.
		testenv.VersityGW(t)
	}
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: e2etest.Setup,
		Cmds:  e2etest.Cmds(pgBin),
	})
}
