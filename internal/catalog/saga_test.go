package catalog_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
)

func TestSQLiteJournal(t *testing.T) {
	catalogtest.RunJournal(t, func(t *testing.T) catalog.Journal {
		s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

// TestMigrateToJournal opens a catalog of schema version 2 holding a run:
// Open adds the saga tables and keeps the run.
func TestMigrateToJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range catalog.Migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	for _, stmt := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 'then'), (2, 'then')`,
		`INSERT INTO runs (run_id, kind, target, start_time, result) VALUES ('r1', 'backup', 'db', '2026-11-23T10:00:00.000000000Z', 'ok')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	s := open(t, path)
	defer s.Close()
	checkVersions(t, path)
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
}

// TestJournalWritesLeaveSynchronousNormal checks that the journal's
// synchronous=FULL writes hand their connection back at NORMAL: the other
// writes keep their speed.
func TestJournalWritesLeaveSynchronousNormal(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	db := catalog.DB(s)
	db.SetMaxOpenConns(1) // every statement below uses the one connection
	sg := catalog.Saga{ID: "s1", Kind: "upgrade", Subject: "gitlab", State: catalog.SagaRunning, Start: time.Now()}
	if err := s.CreateSaga(t.Context(), sg); err != nil {
		t.Fatal(err)
	}
	st := catalog.SagaStep{Seq: 1, Name: "a", Phase: catalog.PhaseForward, State: catalog.StepStarted, Start: time.Now()}
	if err := s.PutStep(t.Context(), "s1", st); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSagaState(t.Context(), "s1", catalog.SagaDone, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow("PRAGMA synchronous").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "1" {
		t.Errorf("PRAGMA synchronous = %s after journal writes, want 1 (NORMAL)", got)
	}
}
