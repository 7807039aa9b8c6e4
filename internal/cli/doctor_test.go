package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"homelab/internal/testenv"
)

// TestDoctorConfirm: on a terminal, --fix asks; "n" changes nothing (exit
// 2, not confirmed), "y" applies the fix (a stale datcollversion, made
// as superuser, refreshed), and the next doctor exits 0.
func TestDoctorConfirm(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "CREATE DATABASE app TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
	pg.PSQL(t, "postgres", "UPDATE pg_database SET datcollversion = '0.1' WHERE datname = 'app'")
	dir := t.TempDir()
	labFile := filepath.Join(dir, "lab.yaml")
	t.Setenv("DOCTOR_CLI_PGPASSWORD", pg.Password)
	os.WriteFile(labFile, []byte(`state_dir: ./state
backups:
  app:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: `+strconv.Itoa(pg.Port)+`, database: app, user: postgres, password_env: DOCTOR_CLI_PGPASSWORD}
repositories:
  local: {url: ./repo, password_env: DOCTOR_CLI_PGPASSWORD}
`), 0o600)
	doctor := func(answer string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		io := &IOStreams{In: strings.NewReader(answer), Out: &out, ErrOut: &errOut, StdinTTY: true}
		code := Run(context.Background(), io, append([]string{"--lab", labFile, "doctor"}, args...))
		return code, out.String(), errOut.String()
	}
	version := func() string {
		return pg.PSQL(t, "postgres", "SELECT datcollversion FROM pg_database WHERE datname = 'app'")
	}

	code, out, errOut := doctor("n\n", "--fix")
	if code != ExitUsage || !strings.Contains(errOut, "apply 1 fixes shown above? [y/N]") || !strings.Contains(errOut, "not confirmed") {
		t.Fatalf("answer n: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if v := version(); v != "0.1" {
		t.Fatalf("answer n changed datcollversion to %s", v)
	}
	// The repository does not exist: an unchecked finding besides, so
	// doctor still exits 1 after the fix.
	code, out, errOut = doctor("y\n", "--fix")
	if code != ExitFailed || !strings.Contains(out, "collation_version: postgres 127.0.0.1:"+strconv.Itoa(pg.Port)+" database app: fixed") {
		t.Fatalf("answer y: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if v := version(); v == "0.1" {
		t.Fatal("answer y left datcollversion at 0.1")
	}
	if code, out, _ := doctor(""); code != ExitFailed || strings.Contains(out, "collation_version") || !strings.Contains(out, "unchecked: repository local") {
		t.Fatalf("after the fix: exit %d\n%s", code, out)
	}
}
