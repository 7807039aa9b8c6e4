package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"homelab/internal/doctor"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// loadLab writes yaml as lab.yaml in a new directory (with a restic
// repository password file beside it) and loads it.
func loadLab(t *testing.T, yaml string) *lab.Lab {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "restic.pass"), []byte("not used\n"), 0o600)
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pgLab is a lab whose one postgres target is database app on
// 127.0.0.1:port, as postgres, with password from $DOCTOR_PGPASSWORD.
func pgLab(t *testing.T, port int, password string) *lab.Lab {
	return pgLabAs(t, port, "postgres", password)
}

// pgLabAs is pgLab connecting as user.
func pgLabAs(t *testing.T, port int, user, password string) *lab.Lab {
	t.Setenv("DOCTOR_PGPASSWORD", password)
	return loadLab(t, `
repositories:
  local: {url: ./repo, password_file: ./restic.pass}
backups:
  app:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: `+itoa(port)+`, database: app, user: `+user+`, password_env: DOCTOR_PGPASSWORD}
`)
}

// of returns the findings of check.
func of(r doctor.Report, check string) []doctor.Finding {
	var out []doctor.Finding
	for _, f := range r.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

// TestPostgres makes each PostgreSQL problem for real in a throwaway
// cluster (PostgreSQL 15) and has doctor find it, fix it, and find
// nothing the second time:
//   - a collation version mismatch: datcollversion of an ICU database and
//     the collversion of a used ICU collation set to a stale 0.1 as
//     superuser (what a library upgrade looks like to PostgreSQL); the
//     fix rebuilds the indexes that use them (new relfilenodes;
//     CONCURRENTLY, but for the exclusion constraint's index, which
//     PostgreSQL cannot build concurrently) and records the library's
//     versions;
//   - a table of 5000 rows never analyzed (autovacuum off for it);
//   - citext installed at 1.4 while 1.6 is available;
//   - a unique index left invalid by a CREATE UNIQUE INDEX CONCURRENTLY
//     that met duplicates (the duplicate is removed before the fix);
//   - the _ccnew copy a REINDEX CONCURRENTLY leaves when it fails (its
//     index's function now raises for one row): dropped, and the index
//     it copied stays valid.
func TestPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "CREATE DATABASE app TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
	actual := pg.PSQL(t, "app", "SELECT datcollversion FROM pg_database WHERE datname = 'app'")
	if actual == "" {
		t.Fatal("the ICU database has no collation version")
	}
	for _, q := range []string{
		`CREATE TABLE people (id int PRIMARY KEY, name text, name_de text COLLATE "de-x-icu")`,
		`INSERT INTO people SELECT g, 'name ' || g, 'Name ' || g FROM generate_series(1, 2000) g`,
		`CREATE INDEX people_name ON people (name)`,
		`CREATE INDEX people_name_de ON people (name_de)`,
		`CREATE INDEX people_lower ON people (lower(name))`,
		`ALTER TABLE people ADD CONSTRAINT people_name_de_excl EXCLUDE USING btree (name_de WITH =)`,
		`ANALYZE people`,
		`CREATE TABLE events (id int, payload text) WITH (autovacuum_enabled = false)`,
		`INSERT INTO events SELECT g, repeat('x', 40) FROM generate_series(1, 5000) g`,
		`CREATE EXTENSION citext VERSION '1.4'`,
		`CREATE TABLE dup (x int) WITH (autovacuum_enabled = false)`,
		`CREATE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2'`,
		`CREATE TABLE calc (x int)`,
		`INSERT INTO calc SELECT generate_series(1, 10)`,
		`CREATE INDEX calc_twice ON calc (twice(x))`,
		`CREATE OR REPLACE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS 'BEGIN IF $1 = 5 THEN RAISE ''five''; END IF; RETURN $1 * 2; END'`,
		`INSERT INTO dup VALUES (1), (1), (2)`,
		`UPDATE pg_database SET datcollversion = '0.1' WHERE datname = 'app'`,
		`UPDATE pg_collation SET collversion = '0.1' WHERE collname = 'de-x-icu'`,
	} {
		pg.PSQL(t, "app", q)
	}
	// CREATE INDEX CONCURRENTLY meets the duplicate and leaves the index
	// invalid (psql fails: run it without PSQL's fatal error).
	if out, err := psql(pg, "app", "CREATE UNIQUE INDEX CONCURRENTLY dup_x ON dup (x)"); err == nil || !strings.Contains(out, "could not create unique index") {
		t.Fatalf("CREATE UNIQUE INDEX CONCURRENTLY over a duplicate: %v\n%s", err, out)
	}
	if out, err := psql(pg, "app", "REINDEX INDEX CONCURRENTLY calc_twice"); err == nil || !strings.Contains(out, "five") {
		t.Fatalf("REINDEX CONCURRENTLY over a raising function: %v\n%s", err, out)
	}
	relfile := func(index string) string {
		// The last line: psql shows PostgreSQL's mismatch warning first.
		out := strings.Split(pg.PSQL(t, "app", "SELECT relfilenode FROM pg_class WHERE relname = '"+index+"'"), "\n")
		return out[len(out)-1]
	}
	before := map[string]string{}
	for _, i := range []string{"people_name", "people_name_de", "people_name_de_excl", "people_lower", "people_pkey"} {
		before[i] = relfile(i)
	}

	ctx := context.Background()
	d := &doctor.Doctor{Lab: pgLab(t, pg.Port, pg.Password)}
	r := d.Run(ctx)
	t.Logf("checked %v", r.Checked)
	for _, f := range r.Findings {
		t.Logf("%s %s: %s %q", f.Check, f.Subject, f.Problem, f.SQL)
	}
	subject := "postgres 127.0.0.1:" + itoa(pg.Port) + " database app"
	want := map[string][]string{
		doctor.CheckCollation: {
			`REINDEX INDEX CONCURRENTLY "public"."people_lower"`, `REINDEX INDEX CONCURRENTLY "public"."people_name"`,
			`REINDEX INDEX CONCURRENTLY "public"."people_name_de"`, `REINDEX INDEX "public"."people_name_de_excl"`,
			`ALTER COLLATION "pg_catalog"."de-x-icu" REFRESH VERSION`, `ALTER DATABASE "app" REFRESH COLLATION VERSION`},
		doctor.CheckStatistics:   {`ANALYZE "public"."events"`},
		doctor.CheckExtension:    {`ALTER EXTENSION "citext" UPDATE TO '1.6'`},
		doctor.CheckInvalidIndex: {`DROP INDEX CONCURRENTLY "public"."calc_twice_ccnew"`, `REINDEX INDEX CONCURRENTLY "public"."dup_x"`},
	}
	for check, sql := range want {
		fs := of(r, check)
		if check != doctor.CheckInvalidIndex && len(fs) != 1 || check == doctor.CheckInvalidIndex && len(fs) != 2 {
			t.Errorf("%s: %d findings", check, len(fs))
			continue
		}
		var got []string
		for _, f := range fs {
			got = append(got, f.SQL...)
			if f.Subject != subject || !f.Auto || f.Fix != doctor.FixCommand {
				t.Errorf("%s: subject %q auto %v fix %q; want %q, auto, %q", check, f.Subject, f.Auto, f.Fix, subject, doctor.FixCommand)
			}
		}
		if !slices.Equal(got, sql) {
			t.Errorf("%s: sql %q, want %q", check, got, sql)
		}
	}
	if fs := of(r, doctor.CheckCollation); len(fs) == 1 && (!strings.Contains(fs[0].Problem, "0.1") || !strings.Contains(fs[0].Problem, actual)) {
		t.Errorf("collation problem %q does not name the recorded and the library's versions", fs[0].Problem)
	}
	if n := len(of(r, doctor.CheckUnchecked)); n > 0 {
		t.Errorf("%d unchecked findings: %+v", n, of(r, doctor.CheckUnchecked))
	}

	// The invalid unique index can be rebuilt once the duplicate is gone.
	pg.PSQL(t, "app", "DELETE FROM dup WHERE ctid = (SELECT max(ctid) FROM dup WHERE x = 1)")
	for _, f := range r.Findings {
		if err := d.Fix(ctx, f); err != nil {
			t.Errorf("fix %s: %v", f.Check, err)
		}
	}
	if got := pg.PSQL(t, "app", "SELECT datcollversion FROM pg_database WHERE datname = 'app'"); got != actual {
		t.Errorf("datcollversion after the fix = %q, want %q", got, actual)
	}
	if got := pg.PSQL(t, "app", "SELECT collversion = pg_collation_actual_version(oid) FROM pg_collation WHERE collname = 'de-x-icu'"); got != "t" {
		t.Errorf("de-x-icu's version refreshed = %s, want t", got)
	}
	for i, rf := range before {
		changed := relfile(i) != rf
		if want := i != "people_pkey"; changed != want {
			t.Errorf("index %s rebuilt = %v (relfilenode %s, then %s), want %v (only the indexes using a collation)", i, changed, rf, relfile(i), want)
		}
	}
	if got := pg.PSQL(t, "app", "SELECT extversion FROM pg_extension WHERE extname = 'citext'"); got != "1.6" {
		t.Errorf("citext after the fix = %s, want 1.6", got)
	}
	if got := pg.PSQL(t, "app", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dup_x'::regclass"); got != "t" {
		t.Errorf("dup_x valid after the fix = %s, want t", got)
	}
	if got := pg.PSQL(t, "app", "SELECT string_agg(c.relname || '=' || i.indisvalid, ',') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'calc%'"); got != "calc_twice=true" {
		t.Errorf("calc's indexes after the fix: %s, want calc_twice=true only", got)
	}
	if got := pg.PSQL(t, "app", "SELECT count(*) > 0 FROM pg_stats WHERE tablename = 'events'"); got != "t" {
		t.Errorf("events has statistics after the fix = %s, want t", got)
	}
	// PostgreSQL itself no longer warns on connecting.
	if out, err := psql(pg, "app", "SELECT 1"); err != nil || strings.Contains(out, "mismatch") {
		t.Errorf("connecting to app after the fix: %v\n%s", err, out)
	}
	if r := d.Run(ctx); len(r.Findings) != 0 {
		t.Errorf("second run: %d findings, want none: %+v", len(r.Findings), r.Findings)
	}
}

// TestUnreachable: a server that does not answer is one unchecked
// finding naming it, without the password.
func TestUnreachable(t *testing.T) {
	port := testenv.FreePort(t)
	r := (&doctor.Doctor{Lab: pgLab(t, port, "s3cret-doctor-pw")}).Run(context.Background())
	if len(r.Findings) != 1 || r.Findings[0].Check != doctor.CheckUnchecked || r.Findings[0].Subject != "postgres 127.0.0.1:"+itoa(port) {
		t.Fatalf("findings = %+v, want one unchecked for the server", r.Findings)
	}
	if strings.Contains(r.Findings[0].Problem, "s3cret-doctor-pw") {
		t.Fatalf("the password is in the finding: %s", r.Findings[0].Problem)
	}
}

// TestIndexBeingBuilt: an index that another role is building right now
// with CREATE INDEX CONCURRENTLY is invalid until the build ends; doctor,
// connected as a role that may not see that role's progress (no
// pg_read_all_stats: pg_stat_progress_create_index shows the build
// without its relation), must not take it for a failed build (whose fix
// would rebuild or drop it under the running migration).
func TestIndexBeingBuilt(t *testing.T) {
	pg := testenv.Postgres(t)
	for _, q := range []string{
		"CREATE ROLE builder LOGIN PASSWORD 'builder-pw'",
		"CREATE ROLE watcher LOGIN PASSWORD 'watcher-pw'",
		"CREATE DATABASE app OWNER builder",
	} {
		pg.PSQL(t, "postgres", q)
	}
	pg.PSQL(t, "app", "CREATE TABLE t (x int); ALTER TABLE t OWNER TO builder; INSERT INTO t SELECT generate_series(1, 100)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A writer's open transaction holds the build in its first wait
	// ("waiting for writers before build"), after the invalid index is
	// committed to the catalog.
	writer, err := pgx.Connect(ctx, pg.DSN("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(context.Background())
	tx, err := writer.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	built := make(chan error, 1)
	go func() {
		c, err := pgx.Connect(ctx, "postgres://builder:builder-pw@127.0.0.1:"+itoa(pg.Port)+"/app?sslmode=disable")
		if err != nil {
			built <- err
			return
		}
		defer c.Close(context.Background())
		_, err = c.Exec(ctx, "CREATE INDEX CONCURRENTLY t_x ON t (x)")
		built <- err
	}()
	// Await the build's wait (or its failure), asking as superuser.
	watch, err := pgx.Connect(ctx, pg.DSN("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(context.Background())
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for waiting := false; !waiting; {
		select {
		case err := <-built:
			t.Fatalf("CREATE INDEX CONCURRENTLY ended before the writer did: %v", err)
		case <-tick.C:
		}
		if err := watch.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p JOIN pg_index i ON i.indexrelid = p.index_relid "+
			"WHERE p.phase = 'waiting for writers before build' AND NOT i.indisvalid)").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}

	r := (&doctor.Doctor{Lab: pgLabAs(t, pg.Port, "watcher", "watcher-pw")}).Run(ctx)
	for _, f := range r.Findings {
		t.Errorf("while t_x is being built: %s %s: %s %q", f.Check, f.Subject, f.Problem, f.SQL)
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-built; err != nil {
		t.Fatalf("CREATE INDEX CONCURRENTLY: %v", err)
	}
	if got := pg.PSQL(t, "app", "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass"); got != "t" {
		t.Fatalf("t_x valid after its build = %s", got)
	}
}

// TestNotOwner: a role that may read a never-analyzed table it does not
// own cannot analyze it (PostgreSQL skips it with a WARNING, no error):
// that table is a finding doctor does not claim to fix; the table the
// role owns is fixed, and only the other is left. So is one whose rows
// were all deleted (ANALYZE makes no statistics of it).
func TestNotOwner(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "CREATE ROLE reader LOGIN PASSWORD 'reader-pw'")
	pg.PSQL(t, "postgres", "CREATE DATABASE app")
	for _, q := range []string{
		`CREATE TABLE theirs (id int, payload text) WITH (autovacuum_enabled = false)`,
		`INSERT INTO theirs SELECT g, repeat('x', 40) FROM generate_series(1, 5000) g`,
		`GRANT SELECT ON theirs TO reader`,
		`CREATE TABLE mine (id int, payload text) WITH (autovacuum_enabled = false)`,
		`INSERT INTO mine SELECT g, repeat('x', 40) FROM generate_series(1, 5000) g`,
		`ALTER TABLE mine OWNER TO reader`,
		// All rows deleted, not vacuumed: 10000 rows' pages, and ANALYZE
		// finds no row to make statistics of.
		`CREATE TABLE emptied (id int, payload text) WITH (autovacuum_enabled = false)`,
		`INSERT INTO emptied SELECT g, repeat('x', 40) FROM generate_series(1, 10000) g`,
		`DELETE FROM emptied`,
		`ALTER TABLE emptied OWNER TO reader`,
	} {
		pg.PSQL(t, "app", q)
	}
	ctx := context.Background()
	d := &doctor.Doctor{Lab: pgLabAs(t, pg.Port, "reader", "reader-pw")}
	type got struct {
		auto bool
		sql  string
	}
	run := func() (out []got) {
		t.Helper()
		r := d.Run(ctx)
		for _, f := range r.Findings {
			if f.Check != doctor.CheckStatistics {
				t.Errorf("%s %s: %s", f.Check, f.Subject, f.Problem)
				continue
			}
			out = append(out, got{f.Auto, strings.Join(f.SQL, "; ")})
			if f.Auto {
				if err := d.Fix(ctx, f); err != nil {
					t.Errorf("fix %q: %v", f.SQL, err)
				}
			}
		}
		return out
	}
	want := []got{{true, `ANALYZE "public"."emptied"; ANALYZE "public"."mine"`}, {false, `ANALYZE "public"."theirs"`}}
	if g := run(); !slices.Equal(g, want) {
		t.Fatalf("missing_statistics findings %+v, want %+v", g, want)
	}
	if g := run(); !slices.Equal(g, want[1:]) {
		t.Fatalf("after the fix: %+v, want %+v", g, want[1:])
	}
}

// TestPartitionedIndex: a partitioned index built the concurrent way
// (CREATE INDEX ON ONLY, then each partition's, then ATTACH PARTITION)
// is invalid until the last partition's index is attached. REINDEX does
// not change that, so doctor names the partition left and applies
// nothing; once it is attached, nothing is found. A collation change
// rebuilds the partitions' indexes once each (not again through the
// partitioned index's REINDEX).
func TestPartitionedIndex(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "CREATE DATABASE app TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
	for _, q := range []string{
		`CREATE TABLE p (x int, s text) PARTITION BY RANGE (x)`,
		`CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)`,
		`CREATE INDEX p_s ON p (s)`,
		`CREATE TABLE m (x int) PARTITION BY RANGE (x)`,
		`CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10)`,
		`CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20)`,
		`CREATE INDEX m_x ON ONLY m (x)`,
		`CREATE INDEX m1_x ON m1 (x)`,
		`ALTER INDEX m_x ATTACH PARTITION m1_x`,
	} {
		pg.PSQL(t, "app", q)
	}
	d := &doctor.Doctor{Lab: pgLab(t, pg.Port, pg.Password)}
	r := d.Run(context.Background())
	fs := of(r, doctor.CheckInvalidIndex)
	if len(fs) != 1 || fs[0].Auto || len(fs[0].SQL) != 0 || !strings.Contains(fs[0].Problem, `partitioned index "public"."m_x"`) ||
		!strings.Contains(fs[0].Problem, "1 partition has no index attached to it (public.m2)") {
		t.Fatalf("invalid_index findings %+v, want one, not auto, naming m2", fs)
	}
	if len(r.Findings) != 1 {
		t.Errorf("findings %+v, want only invalid_index", r.Findings)
	}
	pg.PSQL(t, "app", "CREATE INDEX m2_x ON m2 (x); ALTER INDEX m_x ATTACH PARTITION m2_x")
	if r := d.Run(context.Background()); len(r.Findings) != 0 {
		t.Fatalf("after attaching m2's index: %+v", r.Findings)
	}
	// An invalid index using the collation is left to invalid_index: a
	// leftover's REINDEX in the collation fix fails as it did before and
	// stops that fix.
	pg.PSQL(t, "app", "CREATE TABLE u (s text); INSERT INTO u VALUES ('a'), ('a')")
	if out, err := psql(pg, "app", "CREATE UNIQUE INDEX CONCURRENTLY u_s ON u (s)"); err == nil {
		t.Fatalf("CREATE UNIQUE INDEX CONCURRENTLY over a duplicate succeeded: %s", out)
	}
	pg.PSQL(t, "postgres", "UPDATE pg_database SET datcollversion = '0.1' WHERE datname = 'app'")
	fs = of(d.Run(context.Background()), doctor.CheckCollation)
	if want := []string{`REINDEX INDEX CONCURRENTLY "public"."p1_s_idx"`, `ALTER DATABASE "app" REFRESH COLLATION VERSION`}; len(fs) != 1 || !slices.Equal(fs[0].SQL, want) {
		t.Fatalf("collation_version findings %+v, want one with %q", fs, want)
	}
	if err := d.Fix(context.Background(), fs[0]); err != nil {
		t.Fatal(err)
	}
	if r := d.Run(context.Background()); len(r.Findings) != 1 || r.Findings[0].Check != doctor.CheckInvalidIndex {
		t.Fatalf("after the collation fix: %+v, want u_s's invalid_index only", r.Findings)
	}
}

// TestUserCCNew: an index a user named *_ccnew, left invalid by their
// failed CREATE UNIQUE INDEX CONCURRENTLY and alone on its table, is no
// REINDEX CONCURRENTLY leftover: rebuilt, never dropped.
func TestUserCCNew(t *testing.T) {
	pg := testenv.Postgres(t)
	pg.PSQL(t, "postgres", "CREATE DATABASE app")
	pg.PSQL(t, "app", "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (1)")
	if out, err := psql(pg, "app", "CREATE UNIQUE INDEX CONCURRENTLY orders_ccnew ON orders (id)"); err == nil {
		t.Fatalf("CREATE UNIQUE INDEX CONCURRENTLY over a duplicate succeeded: %s", out)
	}
	r := (&doctor.Doctor{Lab: pgLab(t, pg.Port, pg.Password)}).Run(context.Background())
	fs := of(r, doctor.CheckInvalidIndex)
	if len(fs) != 1 || !slices.Equal(fs[0].SQL, []string{`REINDEX INDEX CONCURRENTLY "public"."orders_ccnew"`}) {
		t.Fatalf("invalid_index findings %+v, want the REINDEX of orders_ccnew", fs)
	}
}
