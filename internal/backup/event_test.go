package backup

import (
	"context"
	"path/filepath"
	"testing"

	"homelab/internal/catalog"
)

// TestEventOutlivesCancellation: the event of an interrupted run is
// recorded although the run's context is cancelled (it was lost to
// "context canceled" before).
func TestEventOutlivesCancellation(t *testing.T) {
	ctx := context.Background()
	store, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := &Manager{Catalog: store}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	m.event(cctx, "error", "files", "backup_interrupted", "interrupted")
	evs, err := store.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != "backup_interrupted" || evs[0].Target != "files" {
		t.Fatalf("events = %+v, want the backup_interrupted event", evs)
	}
}
