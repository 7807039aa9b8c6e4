package doctor_test

import (
	"os"
	"os/exec"
	"strconv"

	"homelab/internal/testenv"
)

func itoa(n int) string { return strconv.Itoa(n) }

// psql runs sql in db on pg and returns its combined output and error.
func psql(pg *testenv.PG, db, sql string) (string, error) {
	cmd := exec.Command("psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), pg.Env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
