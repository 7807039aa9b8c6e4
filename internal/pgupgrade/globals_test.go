package pgupgrade_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"homelab/internal/pgupgrade"
	"homelab/internal/testenv"
)

// TestGlobalsRealCluster: the roles of a real PostgreSQL 15 cluster (a
// login role with a password, owning a table's database) are dumped to a
// 0600 file and made again in a fresh cluster: what a link-mode rollback
// needs before it restores the databases' dumps.
func TestGlobalsRealCluster(t *testing.T) {
	bins := testenv.PGMajors(t)
	dir := testenv.OwnedDir(t)
	port := testenv.FreePort(t)
	a := pgupgrade.Cluster{Major: "15", Bin: bins.Old, Data: filepath.Join(dir, "a")}
	b := pgupgrade.Cluster{Major: "15", Bin: bins.Old, Data: filepath.Join(dir, "b")}
	for _, c := range []pgupgrade.Cluster{a, b} {
		pgctl(t, c.Bin, "initdb", "-D", c.Data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	}
	t.Cleanup(func() {
		for _, c := range []pgupgrade.Cluster{a, b} {
			exec.Command(filepath.Join(c.Bin, "pg_ctl"), "-D", c.Data, "-m", "immediate", "-w", "stop").Run()
		}
	})
	start := func(c pgupgrade.Cluster) {
		pgctl(t, c.Bin, "pg_ctl", "-D", c.Data, "-o", "-c listen_addresses='' -c port="+strconv.Itoa(port)+" -c unix_socket_directories="+dir, "-l", filepath.Join(dir, filepath.Base(c.Data)+".log"), "-w", "start")
	}
	owner, err := pgupgrade.Owner(a.Data)
	if err != nil {
		t.Fatal(err)
	}
	tools := &pgupgrade.Tools{User: "postgres", Owner: owner}
	ctx := context.Background()
	psql := psqlOf(t, tools)
	start(a)
	// The roles, with a password: from a file on psql's stdin, not argv.
	setup := filepath.Join(dir, "setup.sql")
	if err := os.WriteFile(setup, []byte(`CREATE ROLE "Shop Owner" LOGIN PASSWORD 'globals-test-secret' CREATEDB; CREATE ROLE readers; GRANT readers TO "Shop Owner";`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tools.RestoreGlobals(ctx, a, setup); err != nil {
		t.Fatal(err)
	}
	roles := `SELECT string_agg(rolname || ':' || rolcanlogin || ':' || rolcreatedb || ':' || coalesce(left(rolpassword, 13), ''), ',' ORDER BY rolname) FROM pg_authid WHERE rolname !~ '^pg_'`
	want := psql(a, roles)
	members := `SELECT string_agg(r.rolname || '>' || m.rolname, ',') FROM pg_auth_members x JOIN pg_roles r ON r.oid = x.roleid JOIN pg_roles m ON m.oid = x.member`
	wantMembers := psql(a, members)
	file := filepath.Join(dir, "globals.sql")
	if err := tools.DumpGlobals(ctx, a, file); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("globals file: %v, %v", fi, err)
	}
	pgctl(t, a.Bin, "pg_ctl", "-D", a.Data, "-m", "fast", "-w", "stop")
	start(b)
	if got := psql(b, roles); got == want {
		t.Fatalf("the fresh cluster already has the roles: %s", got)
	}
	if err := tools.RestoreGlobals(ctx, b, file); err != nil {
		t.Fatal(err)
	}
	if got := psql(b, roles); got != want || !strings.Contains(got, "Shop Owner:true:true:SCRAM-SHA-256") {
		t.Fatalf("roles after RestoreGlobals: %s, want %s", got, want)
	}
	if got := psql(b, members); got != wantMembers {
		t.Fatalf("memberships after RestoreGlobals: %s, want %s", got, wantMembers)
	}
}
