package backup_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/backup/postgres"
	"homelab/internal/catalog"
	"homelab/internal/testenv"
)

const schema = `
create table authors (id serial primary key, name text not null unique);
create table books (id serial primary key, author_id int not null references authors(id), title text not null, pages int check (pages > 0), published date);
create index on books(author_id);
insert into authors(name) select 'author ' || g from generate_series(1, 200) g;
insert into books(author_id, title, pages, published)
  select 1 + (g % 200), 'title ' || md5(g::text), 1 + (g % 900), date '2000-01-01' + g from generate_series(1, 20000) g;
create view prolific as select a.name, count(*) from authors a join books b on b.author_id = a.id group by a.name;
`

// shopCluster starts a throwaway PostgreSQL cluster with the database
// shop loaded with schema.
func shopCluster(t *testing.T) *testenv.PG {
	t.Helper()
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "create database shop")
	pg.PSQL(t, "shop", schema)
	return pg
}

// noStagingLeft asserts that no staging or moved-aside database of a
// restore is left in pg.
func noStagingLeft(t *testing.T, pg *testenv.PG) {
	t.Helper()
	if left := pg.PSQL(t, "postgres", "select count(*) from pg_database where datname like '%homelab%'"); left != "0" {
		t.Errorf("%s staging/old databases left behind", left)
	}
}

// fingerprint returns, per table, the row count and the md5 of an ordered
// dump of its rows.
func fingerprint(t *testing.T, pg *testenv.PG, db string) string {
	t.Helper()
	var out []string
	for _, table := range []string{"authors", "books"} {
		out = append(out, table+" "+pg.PSQL(t, db, fmt.Sprintf("select count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from %s t", table)))
	}
	return strings.Join(out, "\n")
}

func pgEnv(t *testing.T, pg *testenv.PG, database, password, extra string) *env {
	t.Helper()
	t.Setenv("HOMELAB_TEST_PGPASSWORD", password)
	return newEnv(t, fmt.Sprintf(`  db:
    provider: postgres
    repository: local
    source: {host: %s, port: %d, database: %s, user: %s, password_env: HOMELAB_TEST_PGPASSWORD}
    retention: {keep_last: 3}
%s`, pg.Host, pg.Port, database, pg.User, extra))
}

func TestPostgresRoundTripAndReplace(t *testing.T) {
	pg := shopCluster(t)
	want := fingerprint(t, pg, "shop")
	e := pgEnv(t, pg, "shop", pg.Password, "")
	ctx := context.Background()
	rep := e.m.Backup(ctx, "db")
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	// Restore into a new database: same rows, same checksums.
	plan, err := e.m.PlanRestore(ctx, "db", "latest", backup.Destination{Database: "shop_copy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, pg, "shop_copy"); got != want {
		t.Fatalf("restored database differs:\n got %s\nwant %s", got, want)
	}
	// Restoring over an existing database needs Replace.
	if _, err := e.m.Restore(ctx, plan); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("restore over an existing database without replace: %v", err)
	}
	// With Replace: damage the original, restore over it, rows are back.
	pg.PSQL(t, "shop", "delete from books where id % 2 = 0")
	plan.Dest = backup.Destination{Database: "shop", Replace: true}
	if _, err := e.m.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, pg, "shop"); got != want {
		t.Fatalf("replaced database differs:\n got %s\nwant %s", got, want)
	}
	noStagingLeft(t, pg)
}

func TestPostgresFailingDumpLeavesNoSnapshot(t *testing.T) {
	pg := shopCluster(t)
	ctx := context.Background()
	good := pgEnv(t, pg, "shop", pg.Password, "")
	first := good.m.Backup(ctx, "db")
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	for _, tc := range []struct{ name, db, password, want string }{
		{"wrong database", "no_such_db", pg.Password, "no_such_db"},
		{"wrong password", "shop", "wrong-password-123", "password authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOMELAB_TEST_PGPASSWORD", tc.password)
			spec := good.lab.Backups["db"]
			saved := spec.Source.Database
			spec.Source.Database = tc.db
			defer func() { spec.Source.Database = saved }()
			rep := good.m.Backup(ctx, "db")
			if rep.Err == nil || rep.Run.Result != catalog.ResultFailed || rep.Run.SnapshotID != "" {
				t.Fatalf("rep = %+v", rep)
			}
			if strings.Contains(rep.Err.Error(), "wrong-password-123") {
				t.Fatalf("password in error: %v", rep.Err)
			}
			rows, err := good.m.List(ctx, "db")
			if err != nil || len(rows) != 1 || rows[0].ID != first.Run.SnapshotID {
				t.Fatalf("snapshots after a failed dump: %+v, %v", rows, err)
			}
		})
	}
	runs := good.runs(t, "db")
	var ok int
	for _, r := range runs {
		if r.Result == catalog.ResultOK {
			ok++
		}
	}
	if len(runs) != 3 || ok != 1 {
		t.Fatalf("catalog: %d runs, %d ok; want 3 runs, 1 ok", len(runs), ok)
	}
}

func TestPostgresDrill(t *testing.T) {
	pg := shopCluster(t)
	e := pgEnv(t, pg, "shop", pg.Password, `    drill:
      checks:
        - sql: select count(*) = 20000 from books
        - sql: select count(*) > 1000000 from authors
`)
	ctx := context.Background()
	if rep := e.m.Backup(ctx, "db"); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	out := e.m.Verify(ctx, "db")
	if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed {
		t.Fatalf("drill = %+v, %v", out.Drill, out.Err)
	}
	if !strings.Contains(out.Drill.Output, "ok   sql select count(*) = 20000 from books") || !strings.Contains(out.Drill.Output, "FAIL sql select count(*) > 1000000 from authors: returned false") {
		t.Errorf("output:\n%s", out.Drill.Output)
	}
	if out.Drill.RTO <= 0 {
		t.Error("RTO not recorded")
	}
	if left := pg.PSQL(t, "postgres", "select count(*) from pg_database where datname like 'homelab_drill_%'"); left != "0" {
		t.Errorf("throwaway database left behind (%s)", left)
	}
	drills, err := e.store.Drills(ctx, catalog.DrillFilter{Target: "db"})
	if err != nil || len(drills) != 1 || drills[0].Result != catalog.ResultFailed {
		t.Fatalf("catalog drills = %+v, %v", drills, err)
	}
	// A passing drill.
	e.lab.Backups["db"].Drill.Checks = e.lab.Backups["db"].Drill.Checks[:1]
	if out := e.m.Verify(ctx, "db"); out.Err != nil || out.Drill.Result != catalog.ResultOK {
		t.Fatalf("passing drill: %+v, %v", out.Drill, out.Err)
	}
}

func TestDrillDatabaseName(t *testing.T) {
	got := postgres.DrillDatabase("Very-Long-Target-Name-"+strings.Repeat("x", 60), "20261123T101500Z-1a2b3c4d")
	if len(got) > 63 || !strings.HasPrefix(got, "homelab_drill_very_long_target_name_") {
		t.Errorf("DrillDatabase = %q", got)
	}
	// Long names that differ only at the end stay different.
	if other := postgres.DrillDatabase("Very-Long-Target-Name-"+strings.Repeat("x", 60), "20261123T101501Z-1a2b3c4d"); other == got || len(other) != 63 {
		t.Errorf("DrillDatabase of the next second = %q (first %q)", other, got)
	}
}
