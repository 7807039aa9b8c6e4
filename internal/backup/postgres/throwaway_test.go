package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/backup/drillapp/drillapptest"
	"homelab/internal/catalog"
	"homelab/internal/testenv"
)

// TestThrowawayDrillWithoutCreateDB: a drill with instance throwaway passes
// for a source role without CREATEDB (which the drill on the live server
// is refused for), creates no database on the live server, and leaves no
// cluster behind; a failing check fails it the same way.
func TestThrowawayDrillWithoutCreateDB(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "create role app login nocreatedb password 'apppass'")
	pg.PSQL(t, "postgres", "create database shop owner app")
	pg.PSQL(t, "shop", "set role app;\n"+schema)
	t.Setenv("HOMELAB_TEST_PGPASSWORD", "apppass")
	e := newEnv(t, fmt.Sprintf(`  db:
    provider: postgres
    repository: local
    source: {host: %s, port: %d, database: shop, user: app, password_env: HOMELAB_TEST_PGPASSWORD}
    retention: {keep_last: 3}
    drill:
      instance: throwaway
      checks:
        - sql: select count(*) = 20000 from books
        - sql: select count(*) = 200 from authors
`, pg.Host, pg.Port))
	ctx := context.Background()
	e.MustBackup(t, "db")
	databases := pg.PSQL(t, "postgres", "select count(*) from pg_database")

	out := e.M.Verify(ctx, "db")
	if out.Err != nil || out.Drill.Result != catalog.ResultOK || len(out.Report.Checks) != 3 {
		t.Fatalf("throwaway drill: %v %+v\n%s", out.Err, out.Drill, out.Report.Output())
	}
	if got := pg.PSQL(t, "postgres", "select count(*) from pg_database"); got != databases {
		t.Errorf("the live server has %s databases after the drill, %s before", got, databases)
	}
	noneLeft := func() {
		t.Helper()
		noClusterLeft(t, e)
	}
	noneLeft()

	e.Lab.Backups["db"].Drill.Checks[1].SQL = "select count(*) = 0 from authors"
	out = e.M.Verify(ctx, "db")
	if out.Err == nil || out.Drill.Result != catalog.ResultFailed {
		t.Fatalf("drill with a failing check: %v %+v", out.Err, out.Drill)
	}
	noneLeft()

	// Without instance: throwaway the same role is refused for CREATEDB.
	e.Lab.Backups["db"].Drill.Instance = ""
	out = e.M.Verify(ctx, "db")
	wantPreflightError(t, out.Err, "target db: role app needs CREATEDB (or superuser) to create the drill database homelab_drill_db_*")
}

// TestThrowawayAppDrill: drill.app starts the testapp against the
// throwaway cluster (HOMELAB_DRILL_PG*: 127.0.0.1, its port, the
// database, postgres and a password made for the drill); its probe passes
// while the check table has rows. A backup taken after the table was
// emptied fails the drill on the app's probe (ErrDrillFailed: exit 1),
// recorded with the app's words; the app and the cluster are gone after
// both.
func TestThrowawayAppDrill(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "create database shop")
	pg.PSQL(t, "shop", schema+"create table drill_check (n int); insert into drill_check values (1);")
	t.Setenv("HOMELAB_TEST_PGPASSWORD", pg.Password)
	e := newEnv(t, fmt.Sprintf(`  db:
    provider: postgres
    repository: local
    source: {host: %s, port: %d, database: shop, user: %s, password_env: HOMELAB_TEST_PGPASSWORD}
    retention: {keep_last: 3}
    drill:
      instance: throwaway
      checks:
        - sql: select count(*) = 200 from authors
`, pg.Host, pg.Port, pg.User))
	app := drillapptest.New(t, "drill_check")
	e.Lab.Backups["db"].Drill.App = app.DrillApp
	ctx := context.Background()
	e.MustBackup(t, "db")

	out := e.M.Verify(ctx, "db")
	if out.Err != nil || out.Drill.Result != catalog.ResultOK || len(out.Report.Checks) != 3 {
		t.Fatalf("app drill: %v %+v\n%s", out.Err, out.Drill, out.Report.Output())
	}
	if c := out.Report.Checks[2]; c.Check != "app" || !strings.Contains(c.Detail, "http probe passed") || !strings.Contains(out.Drill.Output, "ok   app: http probe passed") {
		t.Errorf("app check %+v; recorded output:\n%s", c, out.Drill.Output)
	}
	app.Gone(t)
	noClusterLeft(t, e)

	pg.PSQL(t, "shop", "delete from drill_check")
	e.MustBackup(t, "db")
	out = e.M.Verify(ctx, "db")
	if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed {
		t.Fatalf("app drill on emptied data: %v %+v\n%s", out.Err, out.Drill, out.Report.Output())
	}
	for _, want := range []string{`check "app": the http probe did not pass within 1m0s: HTTP 503`, "testapp: unhealthy: table drill_check is empty"} {
		if !strings.Contains(out.Drill.Error, want) {
			t.Errorf("recorded error %q lacks %q", out.Drill.Error, want)
		}
	}
	if !strings.Contains(out.Drill.Output, "ok   sql select count(*) = 200 from authors") || !strings.Contains(out.Drill.Output, "FAIL app: ") {
		t.Errorf("recorded output:\n%s", out.Drill.Output)
	}
	app.Gone(t)
	noClusterLeft(t, e)
	drills, err := e.Store.Drills(ctx, catalog.DrillFilter{Target: "db"})
	if err != nil || len(drills) != 2 || drills[0].Result != catalog.ResultFailed || drills[1].Result != catalog.ResultOK {
		t.Fatalf("recorded drills %+v %v", drills, err)
	}
}

// noClusterLeft fails t when a throwaway drill directory of e's target
// db is left (another lab's, of a test running beside, do not count).
func noClusterLeft(t *testing.T, e *env) {
	t.Helper()
	if left, _ := filepath.Glob(backup.DrillDirPrefix("pg", e.Lab.StateDir, "db") + "*"); len(left) > 0 {
		t.Errorf("throwaway clusters left: %v", left)
	}
}
