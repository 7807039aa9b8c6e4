package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
	t.Setenv("DOCTOR_PGPASSWORD", password)
	return loadLab(t, `
repositories:
  local: {url: ./repo, password_file: ./restic.pass}
backups:
  app:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: `+itoa(port)+`, database: app, user: postgres, password_env: DOCTOR_PGPASSWORD}
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
//     fix rebuilds the indexes that use them (new relfilenodes) and
//     records the library's versions;
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
	for _, i := range []string{"people_name", "people_name_de", "people_lower", "people_pkey"} {
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
			`REINDEX INDEX "public"."people_lower"`, `REINDEX INDEX "public"."people_name"`, `REINDEX INDEX "public"."people_name_de"`,
			`ALTER COLLATION "pg_catalog"."de-x-icu" REFRESH VERSION`, `ALTER DATABASE "app" REFRESH COLLATION VERSION`},
		doctor.CheckStatistics:   {`ANALYZE "public"."events"`},
		doctor.CheckExtension:    {`ALTER EXTENSION "citext" UPDATE TO '1.6'`},
		doctor.CheckInvalidIndex: {`DROP INDEX "public"."calc_twice_ccnew"`, `REINDEX INDEX "public"."dup_x"`},
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
	if fs := of(r, doctor.CheckCollation); len(fs) == 1 && !strings.Contains(fs[0].Problem, "0.1") || !strings.Contains(fs[0].Problem, actual) {
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
