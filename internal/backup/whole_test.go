package backup

import (
	"errors"
	"fmt"
	"testing"

	"homelab/internal/catalog"
	"homelab/internal/restic"
)

// TestWhole: a backup is restorable as a whole (an upgrade's restore
// point, a lab snapshot's member) only when it made a snapshot that is
// not partial; a failed after hook does not matter.
func TestWhole(t *testing.T) {
	failed := errors.New("pg_dump: connection refused")
	partial := &WarningError{Warnings: []string{"some files unreadable"}, Err: fmt.Errorf("backup: %w", restic.ErrPartial)}
	for _, tc := range []struct {
		name string
		rep  RunReport
		id   string
		err  string
		is   error
	}{
		{name: "ok", rep: RunReport{Run: catalog.Run{SnapshotID: "abc"}}, id: "abc"},
		{name: "after hook failed", rep: RunReport{Run: catalog.Run{SnapshotID: "abc"}, Err: &WarningError{Warnings: []string{"hook"}}}, id: "abc"},
		{name: "failed", rep: RunReport{Err: failed}, err: failed.Error(), is: failed},
		{name: "partial", rep: RunReport{Run: catalog.Run{SnapshotID: "abc"}, Err: partial}, err: partial.Error()},
		{name: "no snapshot", rep: RunReport{}, err: "the backup made no snapshot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.rep.Whole()
			if id != tc.id || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Fatalf("Whole() = %q, %v; want %q, %q", id, err, tc.id, tc.err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Whole()'s error does not wrap the run's")
			}
			var we *WarningError
			if errors.As(err, &we) {
				t.Errorf("Whole()'s error is a WarningError: it would exit 3, done with warnings")
			}
		})
	}
}
