package postgres_test

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
	e.MustBackup(t, "db")
	// Restore into a new database: same rows, same checksums.
	plan, err := e.M.PlanRestore(ctx, "db", "latest", backup.Destination{Database: "shop_copy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, pg, "shop_copy"); got != want {
		t.Fatalf("restored database differs:\n got %s\nwant %s", got, want)
	}
	// Restoring over an existing database needs Replace.
	if _, err := e.M.Restore(ctx, plan); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("restore over an existing database without replace: %v", err)
	}
	// With Replace: damage the original, restore over it, rows are back.
	pg.PSQL(t, "shop", "delete from books where id % 2 = 0")
	plan.Dest = backup.Destination{Database: "shop", Replace: true}
	if _, err := e.M.Restore(ctx, plan); err != nil {
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
	first := good.M.Backup(ctx, "db")
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	for _, tc := range []struct{ name, db, password, want string }{
		{"wrong database", "no_such_db", pg.Password, "no_such_db"},
		{"wrong password", "shop", "wrong-password-123", "password authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOMELAB_TEST_PGPASSWORD", tc.password)
			spec := good.Lab.Backups["db"]
			saved := spec.Source.Database
			spec.Source.Database = tc.db
			defer func() { spec.Source.Database = saved }()
			rep := good.M.Backup(ctx, "db")
			if rep.Err == nil || rep.Run.Result != catalog.ResultFailed || rep.Run.SnapshotID != "" {
				t.Fatalf("rep = %+v", rep)
			}
			if strings.Contains(rep.Err.Error(), "wrong-password-123") {
				t.Fatalf("password in error: %v", rep.Err)
			}
			rows, err := good.M.List(ctx, "db")
			if err != nil || len(rows) != 1 || rows[0].ID != first.Run.SnapshotID {
				t.Fatalf("snapshots after a failed dump: %+v, %v", rows, err)
			}
		})
	}
	runs := good.Runs(t, "db")
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
	e.MustBackup(t, "db")
	out := e.M.Verify(ctx, "db")
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
	drills, err := e.Store.Drills(ctx, catalog.DrillFilter{Target: "db"})
	if err != nil || len(drills) != 1 || drills[0].Result != catalog.ResultFailed {
		t.Fatalf("catalog drills = %+v, %v", drills, err)
	}
	// A passing drill.
	e.Lab.Backups["db"].Drill.Checks = e.Lab.Backups["db"].Drill.Checks[:1]
	if out := e.M.Verify(ctx, "db"); out.Err != nil || out.Drill.Result != catalog.ResultOK {
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

// dbProperties returns what a replaced database must keep besides its
// rows: owner, encoding, locale, grants (datacl as text: grantee, rights
// and grantor), comment and settings (ALTER DATABASE/ROLE ... SET).
func dbProperties(t *testing.T, pg *testenv.PG, db string) string {
	t.Helper()
	return pg.PSQL(t, "postgres", fmt.Sprintf(`select concat_ws(E'\n',
  'owner '||pg_get_userbyid(d.datdba), 'encoding '||pg_encoding_to_char(d.encoding),
  'collate '||d.datcollate, 'ctype '||d.datctype, 'acl '||coalesce(d.datacl::text, 'default'),
  'comment '||coalesce(shobj_description(d.oid, 'pg_database'), 'none'),
  'settings '||coalesce((select string_agg(coalesce(r.rolname, 'database')||': '||s.setconfig::text, '; ' order by r.rolname nulls first)
    from pg_db_role_setting s left join pg_roles r on r.oid = s.setrole where s.setdatabase = d.oid), 'none'))
from pg_database d where d.datname = '%s'`, db))
}

// TestPostgresReplaceKeepsDatabaseProperties: a database replaced by an
// in-place restore (an upgrade's rollback) or by --replace keeps its
// owner, encoding and locale, and the grants, comment and settings that
// pg_dump without --create does not carry: a database closed to PUBLIC
// stays closed, a role's per-database settings stay.
func TestPostgresReplaceKeepsDatabaseProperties(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", `create role shop_owner; create role "app ro" login; create role auditor`)
	pg.PSQL(t, "postgres", `create database shop owner shop_owner template template0 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C'`)
	pg.PSQL(t, "shop", schema)
	pg.PSQL(t, "postgres", `revoke all on database shop from public;
grant connect on database shop to "app ro";
grant create, temporary on database shop to auditor with grant option;
comment on database shop is 'the shop''s data';
alter database shop set search_path = "$user", app, "Odd ""Name""", public;
alter database shop set work_mem = '8MB';
alter database shop set app.tenant = 'it''s a, b';
alter role "app ro" in database shop set statement_timeout = '5s'`)
	want, rows := dbProperties(t, pg, "shop"), fingerprint(t, pg, "shop")
	for _, w := range []string{"owner shop_owner", "encoding LATIN1", "collate C", `app ro\"=c/shop_owner`, "auditor=C*T*/shop_owner",
		"comment the shop's data", `search_path=\"$user\", app, \"Odd \"\"Name\"\"\", public`, "app ro: {statement_timeout=5s}"} {
		if !strings.Contains(want, w) {
			t.Fatalf("the setup lacks %q:\n%s", w, want)
		}
	}
	e := pgEnv(t, pg, "shop", pg.Password, "")
	ctx := context.Background()
	e.MustBackup(t, "db")
	pg.PSQL(t, "shop", "delete from books where id % 2 = 0")
	for _, dest := range []backup.Destination{{InPlace: true}, {Database: "shop", Replace: true}} {
		plan, err := e.M.PlanRestore(ctx, "db", "latest", dest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.M.Restore(ctx, plan); err != nil {
			t.Fatal(err)
		}
		if got := dbProperties(t, pg, "shop"); got != want {
			t.Errorf("%+v: the replaced database's properties:\n%s\nwant:\n%s", dest, got, want)
		}
		if got := fingerprint(t, pg, "shop"); got != rows {
			t.Errorf("%+v: rows differ:\n got %s\nwant %s", dest, got, rows)
		}
	}
	// A restore killed between the swap's two renames left shop's data in
	// shop_homelab_old_*, closed to connections, and its staging database:
	// without replace the error says where the data is; the next
	// replacing restore (a resumed rollback) puts it back first and
	// replaces it as usual, keeping its properties, and drops the staging
	// database.
	pg.PSQL(t, "postgres", "alter database shop allow_connections false")
	pg.PSQL(t, "postgres", "alter database shop rename to shop_homelab_old_20260101t000000")
	pg.PSQL(t, "postgres", "create database shop_homelab_restore_20260101t000000")
	plan, err := e.M.PlanRestore(ctx, "db", "latest", backup.Destination{Database: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.M.Restore(ctx, plan); err == nil || !strings.Contains(err.Error(),
		`database shop does not exist, but shop_homelab_old_20260101t000000 does: a restore that replaced it was interrupted, and its data is there; put it back with ALTER DATABASE "shop_homelab_old_20260101t000000" RENAME TO "shop"`) {
		t.Fatalf("restore without replace after an interrupted swap: %v", err)
	}
	if plan, err = e.M.PlanRestore(ctx, "db", "latest", backup.Destination{InPlace: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := dbProperties(t, pg, "shop"); got != want {
		t.Errorf("after an interrupted swap, the replaced database's properties:\n%s\nwant:\n%s", got, want)
	}
	if got := fingerprint(t, pg, "shop"); got != rows {
		t.Errorf("after an interrupted swap, rows differ:\n got %s\nwant %s", got, rows)
	}
	noStagingLeft(t, pg)

	// The default grants stay the default (datacl null), not an explicit
	// copy of them.
	pg.PSQL(t, "postgres", "create database plain")
	pg.PSQL(t, "plain", "create table t (x int); insert into t values (1)")
	plain := pgEnv(t, pg, "plain", pg.Password, "")
	plain.MustBackup(t, "db")
	wantPlain := dbProperties(t, pg, "plain")
	plan, err = plain.M.PlanRestore(ctx, "db", "latest", backup.Destination{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := dbProperties(t, pg, "plain"); got != wantPlain || !strings.Contains(got, "acl default") {
		t.Errorf("plain database's properties:\n%s\nwant:\n%s", got, wantPlain)
	}
	noStagingLeft(t, pg)
}

func TestPostgresInPlaceRestore(t *testing.T) {
	pg := shopCluster(t)
	want := fingerprint(t, pg, "shop")
	e := pgEnv(t, pg, "shop", pg.Password, "")
	ctx := context.Background()
	e.MustBackup(t, "db")
	pg.PSQL(t, "shop", `update books set title = 'changed' where id % 3 = 0;
delete from books where id % 7 = 0;
insert into authors(name) values ('added since');
create table added_since (x int)`)
	if fingerprint(t, pg, "shop") == want {
		t.Fatal("changes did not change the fingerprint")
	}
	for _, bad := range []backup.Destination{{InPlace: true, Database: "other"}, {InPlace: true, Path: "/x"}} {
		if _, err := e.M.PlanRestore(ctx, "db", "latest", bad); err == nil {
			t.Errorf("PlanRestore(%+v) accepted", bad)
		}
	}
	plan, err := e.M.PlanRestore(ctx, "db", "latest", backup.Destination{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(plan.Replaces, ",") != "shop" {
		t.Errorf("plan.Replaces = %v", plan.Replaces)
	}
	if _, err := e.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, pg, "shop"); got != want {
		t.Fatalf("database after in-place restore:\n got %s\nwant %s", got, want)
	}
	if n := pg.PSQL(t, "shop", "select count(*) from pg_tables where tablename = 'added_since'"); n != "0" {
		t.Error("a table created after the snapshot survived the in-place restore")
	}
	// A source database that is gone is created.
	pg.PSQL(t, "postgres", "drop database shop")
	if _, err := e.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, pg, "shop"); got != want {
		t.Fatalf("database re-created by in-place restore:\n got %s\nwant %s", got, want)
	}
	noStagingLeft(t, pg)
}

// TestPostgresReplaceKeepsExtensionOwners: a database replaced by a
// restore (--replace, --in-place, an upgrade's rollback) keeps its
// extensions owned by their owners (pg_dump does not carry an extension's
// owner: they came back owned by the restoring superuser, and the
// application's next migration failed with "must be owner of extension").
// One extension is owned by the database's owner, one by a role with
// CREATE granted on the database and on schema public.
func TestPostgresReplaceKeepsExtensionOwners(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", `create role app; create role auditor`)
	pg.PSQL(t, "postgres", `create database shop owner app`)
	pg.PSQL(t, "postgres", `grant create on database shop to auditor`)
	pg.PSQL(t, "shop", `grant create on schema public to auditor;
set role app; create extension pgcrypto; create table secrets (id uuid primary key default gen_random_uuid(), v bytea default gen_random_bytes(8));
insert into secrets default values; reset role;
set role auditor; create extension hstore; reset role`)
	owners := func() string {
		return pg.PSQL(t, "shop", "select string_agg(extname || '=' || pg_get_userbyid(extowner), ' ' order by extname) from pg_extension")
	}
	want := owners()
	if want != "hstore=auditor pgcrypto=app plpgsql=postgres" && !strings.Contains(want, "pgcrypto=app") {
		t.Fatalf("setup: extension owners %s", want)
	}
	e := pgEnv(t, pg, "shop", pg.Password, "")
	ctx := context.Background()
	e.MustBackup(t, "db")
	for _, dest := range []backup.Destination{{InPlace: true}, {Database: "shop", Replace: true}} {
		plan, err := e.M.PlanRestore(ctx, "db", "latest", dest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.M.Restore(ctx, plan); err != nil {
			t.Fatal(err)
		}
		if got := owners(); got != want {
			t.Errorf("%+v: extension owners %s, want %s", dest, got, want)
		}
		// What the application's migration does.
		pg.PSQL(t, "shop", "set role app; alter extension pgcrypto update; reset role; set role auditor; alter extension hstore update")
		if n := pg.PSQL(t, "shop", "select count(*) from secrets"); n != "1" {
			t.Errorf("%+v: %s rows, want 1", dest, n)
		}
	}
	// The temporary grant for creating hstore as auditor is gone again:
	// the schema's privileges are the dump's.
	if got := pg.PSQL(t, "shop", "select has_schema_privilege('auditor', 'public', 'CREATE')"); got != "t" {
		t.Errorf("auditor's CREATE on schema public: %s", got)
	}
	noStagingLeft(t, pg)
}
