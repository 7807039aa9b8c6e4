package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
		if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "homelab-pg-drill-db.*")); len(left) > 0 {
			t.Errorf("throwaway clusters left: %v", left)
		}
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
