package pgbackrest

import (
	"testing"

	"homelab/internal/backup"
	"homelab/internal/catalog"
)

// TestRunType: a run's type is its label's, else the one its run ID
// names (backup.TypedRunID), else none.
func TestRunType(t *testing.T) {
	for _, c := range []struct {
		run  catalog.Run
		want string
	}{
		{catalog.Run{RunID: backup.TypedRunID("20261206T010000Z-1a2b3c4d", TypeIncr), SnapshotID: "20261206-010000F"}, TypeFull}, // pgBackRest made a full
		{catalog.Run{RunID: backup.TypedRunID("20261206T010000Z-1a2b3c4d", TypeFull)}, TypeFull},
		{catalog.Run{RunID: backup.TypedRunID("20261206T010000Z-1a2b3c4d", TypeDiff)}, TypeDiff},
		{catalog.Run{RunID: "20261206T010000Z-1a2b3c4d", SnapshotID: "20261206-010000F_20261206-050000I"}, TypeIncr},
		{catalog.Run{RunID: "20261206T010000Z-1a2b3c4d"}, ""},
		{catalog.Run{RunID: "20261206T010000Z-1a2b3c4d-other"}, ""},
	} {
		if got := RunType(c.run); got != c.want {
			t.Errorf("RunType(%s, %q) = %q, want %q", c.run.RunID, c.run.SnapshotID, got, c.want)
		}
	}
}

// TestTypeState: the newest good run holding the type, and a failed run
// of the type with none after it.
func TestTypeState(t *testing.T) {
	run := func(id string, typ string, res catalog.Result) catalog.Run {
		r := catalog.Run{RunID: backup.TypedRunID(id, typ), Result: res}
		if res == catalog.ResultOK {
			r.SnapshotID = map[string]string{TypeFull: "20261101-000000F", TypeDiff: "20261101-000000F_20261102-000000D", TypeIncr: "20261101-000000F_20261102-000000I"}[typ]
		}
		return r
	}
	runs := []catalog.Run{ // newest first
		run("t-7", TypeIncr, catalog.ResultRunning),
		run("t-6", TypeIncr, catalog.ResultOK),
		run("t-5", TypeFull, catalog.ResultFailed),
		run("t-4", TypeDiff, catalog.ResultOK),
		run("t-3", TypeIncr, catalog.ResultFailed),
		run("t-2", TypeDiff, catalog.ResultFailed),
		run("t-1", TypeFull, catalog.ResultOK),
	}
	for _, c := range []struct{ typ, good, failed string }{
		{TypeFull, "t-1-full", "t-5-full"}, // the incr and diff after it hold no full
		{TypeDiff, "t-4-diff", ""},         // the diff failed before a good diff
		{TypeIncr, "t-6-incr", ""},
	} {
		good, failed := TypeState(runs, c.typ)
		var g, f string
		if good != nil {
			g = good.RunID
		}
		if failed != nil {
			f = failed.RunID
		}
		if g != c.good || f != c.failed {
			t.Errorf("TypeState(%s) = %q, %q; want %q, %q", c.typ, g, f, c.good, c.failed)
		}
	}
}
