package catalog_test

import (
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
