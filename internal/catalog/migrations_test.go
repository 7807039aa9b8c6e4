package catalog_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/catalog"
)

// legacyMigrations are, verbatim, the migrations of the runner homelab had
// before goose (internal/catalog/migrations.go until goose replaced it):
// legacyMigrations[i] took the schema from version i to i+1, and the
// versions were recorded in schema_migrations (version, applied_at).
// Frozen: catalogs made by that code exist and must keep opening.
var legacyMigrations = [...]string{
	// 1: runs, drills, events.
	`
CREATE TABLE runs (
	id          INTEGER PRIMARY KEY,
	run_id      TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	provider    TEXT    NOT NULL DEFAULT '',
	repository  TEXT    NOT NULL DEFAULT '',
	snapshot_id TEXT    NOT NULL DEFAULT '',
	start_time  TEXT    NOT NULL,
	end_time    TEXT,
	bytes       INTEGER NOT NULL DEFAULT 0,
	bytes_added INTEGER NOT NULL DEFAULT 0,
	files       INTEGER NOT NULL DEFAULT 0,
	result      TEXT    NOT NULL,
	error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX runs_target_kind_start ON runs (target, kind, start_time);
CREATE INDEX runs_target_start ON runs (target, start_time);
CREATE INDEX runs_start ON runs (start_time);

CREATE TABLE drills (
	id          INTEGER PRIMARY KEY,
	run_id      TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	snapshot_id TEXT    NOT NULL,
	start_time  TEXT    NOT NULL,
	end_time    TEXT,
	rto_ns      INTEGER NOT NULL DEFAULT 0,
	result      TEXT    NOT NULL,
	output      TEXT    NOT NULL DEFAULT '',
	error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX drills_target_start ON drills (target, start_time);
CREATE INDEX drills_snapshot ON drills (snapshot_id);
CREATE INDEX drills_start ON drills (start_time);

CREATE TABLE events (
	id      INTEGER PRIMARY KEY,
	time    TEXT NOT NULL,
	level   TEXT NOT NULL,
	target  TEXT NOT NULL DEFAULT '',
	kind    TEXT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX events_time ON events (time);
`,
	// 2: failures by target, counted from the index alone (Summaries).
	`
CREATE INDEX runs_result_target_kind ON runs (result, target, kind);
CREATE INDEX drills_result_target ON drills (result, target);
`,
	// 3: saga journals (package saga): one row per saga, one per step and
	// phase. plan is the JSON array of the saga's step names in order,
	// params and data are JSON objects. Step rows go when their saga does.
	`
CREATE TABLE sagas (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL,
	subject     TEXT NOT NULL,
	params      TEXT,
	plan        TEXT NOT NULL DEFAULT '[]',
	state       TEXT NOT NULL,
	started_at  TEXT NOT NULL,
	finished_at TEXT,
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sagas_subject_kind_start ON sagas (subject, kind, started_at);
CREATE INDEX sagas_state_start ON sagas (state, started_at);
CREATE INDEX sagas_start ON sagas (started_at);

CREATE TABLE saga_steps (
	saga_id     TEXT    NOT NULL REFERENCES sagas (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	phase       TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	started_at  TEXT    NOT NULL,
	finished_at TEXT,
	data        TEXT    NOT NULL DEFAULT '{}',
	error       TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (saga_id, seq, phase)
) WITHOUT ROWID;
`,
}

// legacyCatalog makes at path the catalog that the old runner left at
// schema version v: its migrations 1..v, schema_migrations recording each
// with applied_at, and one finished run. Versions beyond
// len(legacyMigrations) are recorded without a schema change, as a newer
// homelab would have left them.
func legacyCatalog(t *testing.T, path string, v int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{`CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`}
	for i := range v {
		if i < len(legacyMigrations) {
			stmts = append(stmts, legacyMigrations[i])
		}
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO schema_migrations (version, applied_at) VALUES (%d, '%s')`,
			i+1, legacyAppliedAt(i+1).Format("2006-01-02T15:04:05.000000000Z07:00")))
	}
	stmts = append(stmts, `INSERT INTO runs (run_id, kind, target, start_time, end_time, result)
		VALUES ('r1', 'backup', 'db', '2026-11-23T10:00:00.000000000Z', '2026-11-23T10:01:00.000000000Z', 'ok')`)
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// legacyAppliedAt is when legacyCatalog records version v as applied.
func legacyAppliedAt(v int) time.Time {
	return time.Date(2026, 11, 20+v, 10, 0, 0, 123456789, time.UTC)
}

// TestOpenLegacyCatalog opens catalogs left by the old migration runner at
// each of its versions: Open moves their bookkeeping into goose's table
// (keeping when each version was applied), applies only the missing
// versions, keeps the data, and ends with the schema a new catalog has.
func TestOpenLegacyCatalog(t *testing.T) {
	want := schema(t, filepath.Join(t.TempDir(), "new.db"))
	for v := 1; v <= len(legacyMigrations); v++ {
		t.Run(fmt.Sprintf("version %d", v), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			legacyCatalog(t, path, v)
			s := open(t, path)
			defer s.Close()
			checkVersions(t, path)
			db := catalog.DB(s)
			var legacy int
			if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_migrations'`).Scan(&legacy); err != nil || legacy != 0 {
				t.Errorf("schema_migrations still there (%d, %v)", legacy, err)
			}
			for _, i := range catalog.MigrationVersions() {
				var tstamp time.Time
				if err := db.QueryRow(`SELECT tstamp FROM goose_db_version WHERE version_id = ?`, i).Scan(&tstamp); err != nil {
					t.Fatal(err)
				}
				if imported := legacyAppliedAt(int(i)).Truncate(time.Second); (int(i) <= v) != tstamp.Equal(imported) {
					t.Errorf("version %d applied at %s; imported from the old runner: %t", i, tstamp, int(i) <= v)
				}
			}
			if runs, err := s.Runs(t.Context(), catalog.RunFilter{}); err != nil || len(runs) != 1 || runs[0].RunID != "r1" {
				t.Errorf("runs after migration: %+v, %v; want r1", runs, err)
			}
			sg := catalog.Saga{ID: "s1", Kind: "upgrade", Subject: "gitlab", State: catalog.SagaRunning, Start: time.Now()}
			if err := s.CreateSaga(t.Context(), sg); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Saga(t.Context(), "s1"); err != nil {
				t.Fatal(err)
			}
			if got := schema(t, path); !slices.Equal(got, want) {
				t.Errorf("schema after migration:\n%s\nwant (a new catalog's):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestOpenLegacyTooNew: a catalog whose old bookkeeping records a version
// this homelab does not know is refused, as before.
func TestOpenLegacyTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	legacyCatalog(t, path, catalog.SchemaVersion+1)
	_, err := catalog.Open(t.Context(), path)
	if !errors.Is(err, catalog.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer catalog: %v; want ErrSchemaTooNew", err)
	}
}

// TestSchemaMatchesLegacy: goose's migrations make, statement for
// statement, the schema the old runner made.
func TestSchemaMatchesLegacy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "legacy.db")
	legacyCatalog(t, path, len(legacyMigrations))
	got, want := schema(t, filepath.Join(t.TempDir(), "new.db")), schema(t, path)
	if !slices.Equal(got, want) {
		t.Errorf("schema of a new catalog:\n%s\nwant (the old runner's):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// schema returns the statements that made the tables and indexes of the
// catalog at path (made with Open if there is none), whitespace
// collapsed, sorted, the migrations' bookkeeping left out.
func schema(t *testing.T, path string) []string {
	t.Helper()
	s := open(t, path)
	defer s.Close()
	rows, err := catalog.DB(s).Query(`SELECT sql FROM sqlite_master
		WHERE sql IS NOT NULL AND tbl_name NOT IN ('goose_db_version', 'schema_migrations', 'sqlite_sequence')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stmts []string
	for rows.Next() {
		var stmt string
		if err := rows.Scan(&stmt); err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, strings.Join(strings.Fields(stmt), " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(stmts)
	return stmts
}
