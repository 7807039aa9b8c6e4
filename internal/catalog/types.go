package catalog

import (
	"context"
	"errors"
	"time"
)

// Result is the outcome of a run or drill.
type Result string

const (
	ResultRunning     Result = "running"
	ResultOK          Result = "ok"
	ResultFailed      Result = "failed"
	ResultPartial     Result = "partial" // restic exit 3: some source files unreadable
	ResultInterrupted Result = "interrupted"
)

// Kind is what a run did.
type Kind string

const (
	KindBackup  Kind = "backup"
	KindRestore Kind = "restore"
	KindPrune   Kind = "prune"
	KindCheck   Kind = "check"
)

// Run is one backup, restore, prune or check of a target (Target is the
// repository name for checks).
type Run struct {
	ID         int64     `json:"id"`
	RunID      string    `json:"run_id"` // also the restic tag run:<RunID>
	Kind       Kind      `json:"kind"`
	Target     string    `json:"target"`
	Provider   string    `json:"provider,omitempty"`
	Repository string    `json:"repository,omitempty"`
	SnapshotID string    `json:"snapshot_id,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end,omitempty"` // zero while running
	Bytes      int64     `json:"bytes"`         // bytes processed (source size)
	BytesAdded int64     `json:"bytes_added"`   // bytes added to the repository
	Files      int64     `json:"files"`
	Result     Result    `json:"result"`
	Error      string    `json:"error,omitempty"`

	// SnapshotTime is the snapshot's time in the repository (restic's
	// snapshot time, UTC) for a run that made one; zero otherwise and for
	// runs recorded before catalog schema version 4.
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
}

// Drill is one restore drill of a snapshot.
type Drill struct {
	ID         int64         `json:"id"`
	RunID      string        `json:"run_id"`
	Target     string        `json:"target"`
	SnapshotID string        `json:"snapshot_id"`
	Start      time.Time     `json:"start"`
	End        time.Time     `json:"end"`
	RTO        time.Duration `json:"rto_ns"` // measured time to restore
	Result     Result        `json:"result"`
	Output     string        `json:"output,omitempty"` // check output, one line per check
	Error      string        `json:"error,omitempty"`
}

// Event is a notable happening (failures, prunes, repository inits).
type Event struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"` // info, warn, error
	Target  string    `json:"target,omitempty"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// RunFilter selects runs; zero fields match everything. Results are newest
// first; Limit 0 means no limit.
type RunFilter struct {
	Target string
	Kind   Kind
	Result Result
	Limit  int
}

// DrillFilter selects drills, newest first.
type DrillFilter struct {
	Target     string
	SnapshotID string
	Result     Result
	Limit      int
}

// Store is the catalog. SQLite implements it; a PostgreSQL store can stand
// beside it. All methods are safe for concurrent use by several processes.
type Store interface {
	// StartRun inserts r with Result running and returns it with ID set.
	StartRun(ctx context.Context, r Run) (Run, error)
	// FinishRun updates the run with r.ID: end, snapshot, sizes, result, error.
	FinishRun(ctx context.Context, r Run) error
	Runs(ctx context.Context, f RunFilter) ([]Run, error)
	// RecordDrill inserts a drill and returns it with ID set: a finished
	// one, or one starting (ResultRunning) that FinishDrill ends.
	RecordDrill(ctx context.Context, d Drill) (Drill, error)
	// FinishDrill updates the drill with d.ID: end, RTO, result (final),
	// output, error. An unknown ID gives an error wrapping ErrNotFound.
	FinishDrill(ctx context.Context, d Drill) error
	Drills(ctx context.Context, f DrillFilter) ([]Drill, error)
	AddEvent(ctx context.Context, e Event) error
	// Events returns the newest events first, at most limit (0: all).
	Events(ctx context.Context, limit int) ([]Event, error)
	Close() error
}

// Lookup is the point queries that backup and prune need, and the batched
// Summaries that status and metrics need. SQLite implements it; other
// stores should too (catalogtest checks it when they do).
type Lookup interface {
	// LastRun returns the newest run of target and kind whose result is one
	// of results (any result if none are given); false if there is none.
	LastRun(ctx context.Context, target string, kind Kind, results ...Result) (Run, bool, error)
	// LastDrill returns the newest drill of target; false if there is none.
	LastDrill(ctx context.Context, target string) (Drill, bool, error)
	// DrilledOK returns the distinct IDs of target's snapshots that passed
	// a drill, the most recently drilled first.
	DrilledOK(ctx context.Context, target string) ([]string, error)
	// Summaries returns the Summary of every target in a few queries,
	// whatever the number of targets: what status and metrics need.
	// Its result equals Summarize of all runs and drills.
	Summaries(ctx context.Context) (map[string]Summary, error)
	// TypedRuns returns the backup runs of target, of any provider, that
	// tell the state of each backup type (Summary.TypedRuns), newest
	// first, in a few seeks whatever the length of its history; none if
	// it has none.
	TypedRuns(ctx context.Context, target string) ([]Run, error)
}

// Summary is one target at a glance. "Newest" is the first in the
// catalog's newest-first order: latest start, then highest ID.
type Summary struct {
	// LastBackup is the newest backup run of any result, including one
	// still running; nil if there is none.
	LastBackup *Run
	// LastGoodBackup is the newest backup run whose result is ok or
	// partial; nil if there is none.
	LastGoodBackup *Run
	// LastDrill is the newest drill of any result; nil if there is none.
	LastDrill *Drill
	// LastGoodDrill is the newest drill whose result is ok; nil if there
	// is none.
	LastGoodDrill *Drill
	// Failed counts the target's runs with result failed, by kind (checks
	// count under their repository's name); nil if none failed.
	Failed map[Kind]int
	// DrillsFailed counts the target's drills with result failed.
	DrillsFailed int
	// TypedRuns are, for a target whose newest backup run's provider is
	// TypedProvider, the backup runs a per-type status needs, newest
	// first: of each backup type (full, diff, incr), the newest run with
	// result ok, the newest partial one and the newest failed one, at
	// most nine runs however long its history. A run's type is its
	// snapshot ID's (pgBackRest's label: full for one ending in "F"
	// with no "_", diff in "D", incr in "I"), else the one its run ID
	// ends with (backup.TypedRunID: "-full", "-diff", "-incr"); a run
	// of neither is in none. pgbackrest.TypeState of full, diff or incr
	// gives the same from them as from all the target's runs: the
	// newest good run holding a type is the newest good one of its type
	// or a bigger one, and the newest failed run of the type is either
	// newer than that or, if not, no failed run of the type is. Nil for
	// other targets and for a typed target with no such run.
	TypedRuns []Run
}

// TypedProvider is the provider whose backups have types (pgbackrest:
// full, diff, incr), each on its own schedule: Summary.TypedRuns is
// filled for its targets.
const TypedProvider = "pgbackrest"

var (
	// ErrNotFound is returned by FinishRun for an unknown run ID.
	ErrNotFound = errors.New("not found")
	// ErrSchemaTooNew is returned by Open for a catalog whose schema was
	// written by a newer homelab than this one.
	ErrSchemaTooNew = errors.New("catalog schema is newer than this homelab")
)
