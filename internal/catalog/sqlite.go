package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// BusyTimeout is how long a write waits for another connection or process
// to release SQLite's write lock before it fails with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// timeLayout is how times are stored: UTC, fixed width (nanoseconds always
// written), so text order is time order and parsing gives back the exact
// instant.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// SQLite is a Store (and a Lookup) over one SQLite file. It is safe for
// concurrent use by several goroutines, and by several processes that open
// the same file.
type SQLite struct {
	db   *sql.DB
	path string
	// Summaries' statements, prepared once: the daemon runs them at
	// every scrape and status page, and parsing them costs about a
	// fifth of running them.
	newestRuns, newestDrills, failureCounts, typedBackups *sql.Stmt

	// versionDB holds the one connection, version, that Version asks for
	// PRAGMA data_version, opened at the first call. It never writes, so
	// every commit, by db's connections or by another process, changes
	// what it reads. It is a pool of its own so that it takes none of
	// db's connections, and one connection held for good, since the
	// numbers of two connections cannot be compared.
	versionMu sync.Mutex
	versionDB *sql.DB
	version   *sql.Conn
	versionQ  *sql.Stmt // PRAGMA data_version on version, prepared once
	closed    bool

	// samples is the samples file (samples.go), opened at the first
	// call that needs it; samplesClosed is set by Close.
	samplesMu     sync.Mutex
	samples       *sampleDB
	samplesClosed bool
}

var (
	_ Store     = (*SQLite)(nil)
	_ Lookup    = (*SQLite)(nil)
	_ Versioned = (*SQLite)(nil)
)

// Open opens the catalog at path, creating the file and its parent
// directory (mode 0700) if needed, and brings its schema up to
// SchemaVersion (under a lock on the file path+"-migrate.lock", which
// stays). Every connection runs in WAL mode with synchronous=NORMAL,
// foreign keys on and a BusyTimeout wait for the write lock; transactions
// begin IMMEDIATE (taking the write lock at once), so concurrent writers
// queue instead of failing. Open fails with an error wrapping
// ErrSchemaTooNew if the catalog was migrated by a newer homelab.
func Open(ctx context.Context, path string) (*SQLite, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	s := &SQLite{db: db, path: abs}
	if err := connect(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	return s, nil
}

// connect opens the first connection, retrying for up to BusyTimeout
// while it fails with SQLITE_BUSY. When several processes open a new
// catalog at once, a connection's opening pragmas (the switch to WAL) can
// fail with SQLITE_BUSY without waiting, busy_timeout notwithstanding
// (TestConcurrentOpen failed about 1 run in 300 before this), so Open waits
// here as a writer would.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(BusyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// dsn is the modernc.org/sqlite data source name for the file at the
// absolute path: a file: URI (so odd characters in the path are escaped)
// with the per-connection pragmas.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Path returns the absolute path of the catalog file.
func (s *SQLite) Path() string { return s.path }

// Version returns SQLite's PRAGMA data_version on a connection of its
// own that never writes: a number that differs from the one an earlier
// call returned when anything was committed to the catalog in between, by
// this SQLite or by any other connection or process; samples (Samples)
// are in another file and leave it. It reads no table: a look at the
// write-ahead log's header.
func (s *SQLite) Version(ctx context.Context) (uint64, error) {
	s.versionMu.Lock()
	defer s.versionMu.Unlock()
	if s.closed {
		return 0, errors.New("catalog version: catalog is closed")
	}
	if s.version == nil {
		db, err := sql.Open("sqlite", dsn(s.path))
		if err != nil {
			return 0, fmt.Errorf("catalog version: %w", err)
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			db.Close()
			return 0, fmt.Errorf("catalog version: %w", err)
		}
		q, err := conn.PrepareContext(ctx, "PRAGMA data_version")
		if err != nil {
			conn.Close()
			db.Close()
			return 0, fmt.Errorf("catalog version: %w", err)
		}
		s.versionDB, s.version, s.versionQ = db, conn, q
	}
	var v uint64
	if err := s.versionQ.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, fmt.Errorf("catalog version: %w", err)
	}
	return v, nil
}

// Close closes the database and the samples file.
func (s *SQLite) Close() error {
	var errs []error
	s.versionMu.Lock()
	s.closed = true
	if s.version != nil {
		errs = append(errs, s.versionQ.Close(), s.version.Close(), s.versionDB.Close())
		s.versionQ, s.version, s.versionDB = nil, nil, nil
	}
	s.versionMu.Unlock()
	s.samplesMu.Lock()
	s.samplesClosed = true
	if s.samples != nil {
		errs = append(errs, s.samples.Close())
		s.samples = nil
	}
	s.samplesMu.Unlock()
	for _, st := range []*sql.Stmt{s.newestRuns, s.newestDrills, s.failureCounts, s.typedBackups} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// prepare prepares the statements of Summaries.
func (s *SQLite) prepare(ctx context.Context) error {
	for _, p := range []struct {
		st    **sql.Stmt
		query string
	}{{&s.newestRuns, newestRuns}, {&s.newestDrills, newestDrills}, {&s.failureCounts, failureCounts}, {&s.typedBackups, typedBackups}} {
		st, err := s.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		*p.st = st
	}
	return nil
}

// StartRun inserts r (Result running if empty) and returns it with ID set
// and times in UTC. Target, Kind and Start are required.
func (s *SQLite) StartRun(ctx context.Context, r Run) (Run, error) {
	if r.Target == "" || r.Kind == "" || r.Start.IsZero() {
		return Run{}, errors.New("start run: target, kind and start are required")
	}
	if r.Result == "" {
		r.Result = ResultRunning
	}
	r.Start, r.End, r.SnapshotTime = utc(r.Start), utc(r.End), utc(r.SnapshotTime)
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs (run_id, kind, target, provider, repository,
		snapshot_id, snapshot_time, start_time, end_time, bytes, bytes_added, files, result, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.RunID, r.Kind, r.Target, r.Provider, r.Repository, r.SnapshotID, encTime(r.SnapshotTime),
		encTime(r.Start), encTime(r.End), r.Bytes, r.BytesAdded, r.Files, r.Result, r.Error)
	if err != nil {
		return Run{}, fmt.Errorf("start run %s of %s: %w", r.Kind, r.Target, err)
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return Run{}, fmt.Errorf("start run %s of %s: %w", r.Kind, r.Target, err)
	}
	return r, nil
}

// FinishRun records the end, snapshot ID, sizes, result and error of the
// run with r.ID. The result must be final (not empty or running). An
// unknown ID gives an error wrapping ErrNotFound.
func (s *SQLite) FinishRun(ctx context.Context, r Run) error {
	if r.Result == "" || r.Result == ResultRunning {
		return fmt.Errorf("finish run %d: result %q is not final", r.ID, r.Result)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET end_time = ?, snapshot_id = ?, snapshot_time = ?,
		bytes = ?, bytes_added = ?, files = ?, result = ?, error = ? WHERE id = ?`,
		encTime(r.End), r.SnapshotID, encTime(r.SnapshotTime), r.Bytes, r.BytesAdded, r.Files, r.Result, r.Error, r.ID)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", r.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("finish run %d: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("finish run %d: %w", r.ID, ErrNotFound)
	}
	return nil
}

const runCols = `id, run_id, kind, target, provider, repository, snapshot_id, snapshot_time,
	start_time, end_time, bytes, bytes_added, files, result, error`

// Runs returns the runs matching f, newest first (by start, then ID).
func (s *SQLite) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	var w where
	w.eq("target", f.Target)
	w.eq("kind", string(f.Kind))
	w.eq("result", string(f.Result))
	return s.runs(ctx, w, f.Limit)
}

// LastRun returns the newest run of target and kind whose result is one of
// results (any result if none are given); false if there is none.
func (s *SQLite) LastRun(ctx context.Context, target string, kind Kind, results ...Result) (Run, bool, error) {
	var w where
	w.eq("target", target)
	w.eq("kind", string(kind))
	w.in("result", results)
	runs, err := s.runs(ctx, w, 1)
	if err != nil || len(runs) == 0 {
		return Run{}, false, err
	}
	return runs[0], true, nil
}

func (s *SQLite) runs(ctx context.Context, w where, limit int) ([]Run, error) {
	return readRuns(s.db.QueryContext(ctx, w.query(runCols, "runs", "start_time", limit), w.args...))
}

// readRuns reads the runs that a query of runCols returned.
func readRuns(rows *sql.Rows, err error) ([]Run, error) {
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var snapTime, start, end sql.NullString
		if err := rows.Scan(&r.ID, &r.RunID, &r.Kind, &r.Target, &r.Provider, &r.Repository,
			&r.SnapshotID, &snapTime, &start, &end, &r.Bytes, &r.BytesAdded, &r.Files, &r.Result, &r.Error); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		if r.SnapshotTime, err = decTime(snapTime); err != nil {
			return nil, fmt.Errorf("list runs: run %d: %w", r.ID, err)
		}
		if r.Start, err = decTime(start); err != nil {
			return nil, fmt.Errorf("list runs: run %d: %w", r.ID, err)
		}
		if r.End, err = decTime(end); err != nil {
			return nil, fmt.Errorf("list runs: run %d: %w", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// RecordDrill inserts a finished drill and returns it with ID set and times
// in UTC. Target, SnapshotID, Start and Result are required.
func (s *SQLite) RecordDrill(ctx context.Context, d Drill) (Drill, error) {
	if d.Target == "" || d.SnapshotID == "" || d.Start.IsZero() || d.Result == "" {
		return Drill{}, errors.New("record drill: target, snapshot ID, start and result are required")
	}
	d.Start, d.End = utc(d.Start), utc(d.End)
	res, err := s.db.ExecContext(ctx, `INSERT INTO drills (run_id, target, snapshot_id, start_time,
		end_time, rto_ns, result, output, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.RunID, d.Target, d.SnapshotID, encTime(d.Start), encTime(d.End), int64(d.RTO),
		d.Result, d.Output, d.Error)
	if err != nil {
		return Drill{}, fmt.Errorf("record drill of %s: %w", d.Target, err)
	}
	if d.ID, err = res.LastInsertId(); err != nil {
		return Drill{}, fmt.Errorf("record drill of %s: %w", d.Target, err)
	}
	return d, nil
}

// FinishDrill records the end, RTO, result, output and error of the drill
// with d.ID, which RecordDrill inserted as running. The result must be
// final (not empty or running). An unknown ID gives an error wrapping
// ErrNotFound.
func (s *SQLite) FinishDrill(ctx context.Context, d Drill) error {
	if d.Result == "" || d.Result == ResultRunning {
		return fmt.Errorf("finish drill %d: result %q is not final", d.ID, d.Result)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE drills SET end_time = ?, rto_ns = ?, result = ?, output = ?,
		error = ? WHERE id = ?`, encTime(utc(d.End)), int64(d.RTO), d.Result, d.Output, d.Error, d.ID)
	if err != nil {
		return fmt.Errorf("finish drill %d: %w", d.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("finish drill %d: %w", d.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("finish drill %d: %w", d.ID, ErrNotFound)
	}
	return nil
}

const drillCols = `id, run_id, target, snapshot_id, start_time, end_time, rto_ns, result, output, error`

// Drills returns the drills matching f, newest first (by start, then ID).
func (s *SQLite) Drills(ctx context.Context, f DrillFilter) ([]Drill, error) {
	var w where
	w.eq("target", f.Target)
	w.eq("snapshot_id", f.SnapshotID)
	w.eq("result", string(f.Result))
	return readDrills(s.db.QueryContext(ctx, w.query(drillCols, "drills", "start_time", f.Limit), w.args...))
}

// readDrills reads the drills that a query of drillCols returned.
func readDrills(rows *sql.Rows, err error) ([]Drill, error) {
	if err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	defer rows.Close()
	var out []Drill
	for rows.Next() {
		var d Drill
		var start, end sql.NullString
		var rto int64
		if err := rows.Scan(&d.ID, &d.RunID, &d.Target, &d.SnapshotID, &start, &end, &rto,
			&d.Result, &d.Output, &d.Error); err != nil {
			return nil, fmt.Errorf("list drills: %w", err)
		}
		d.RTO = time.Duration(rto)
		if d.Start, err = decTime(start); err != nil {
			return nil, fmt.Errorf("list drills: drill %d: %w", d.ID, err)
		}
		if d.End, err = decTime(end); err != nil {
			return nil, fmt.Errorf("list drills: drill %d: %w", d.ID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	return out, nil
}

// LastDrill returns the newest drill of target; false if there is none.
func (s *SQLite) LastDrill(ctx context.Context, target string) (Drill, bool, error) {
	ds, err := s.Drills(ctx, DrillFilter{Target: target, Limit: 1})
	if err != nil || len(ds) == 0 {
		return Drill{}, false, err
	}
	return ds[0], true, nil
}

// DrilledOK returns the distinct IDs of target's snapshots that passed a
// drill, the most recently drilled first.
func (s *SQLite) DrilledOK(ctx context.Context, target string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT snapshot_id FROM drills
		WHERE target = ? AND result = ? GROUP BY snapshot_id
		ORDER BY MAX(start_time) DESC, MAX(id) DESC`, target, ResultOK)
	if err != nil {
		return nil, fmt.Errorf("list drilled snapshots of %s: %w", target, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list drilled snapshots of %s: %w", target, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list drilled snapshots of %s: %w", target, err)
	}
	return ids, nil
}

// backupTargets starts a query with t, the targets with a backup run (and
// a NULL), by a loose index scan: a seek from one target to the next.
const backupTargets = `WITH RECURSIVE t(target) AS (
		SELECT min(target) FROM runs WHERE kind = 'backup'
		UNION ALL
		SELECT (SELECT min(target) FROM runs WHERE target > t.target AND kind = 'backup')
		FROM t WHERE t.target IS NOT NULL),`

// newestRuns selects, newest first, the newest backup run of each target
// and its newest ok or partial backup run (one row if they are the same).
// All of it runs in the index on (target, kind, start_time), whose last
// column is the rowid (id): t lists the targets with a backup run by
// seeking from one to the next (a loose index scan, one seek per target
// instead of a scan of every run), and each newest run is a backward seek
// in the target's backup runs. Only the chosen rows are read.
const newestRuns = backupTargets + `
	ids(id) AS (
		SELECT (SELECT id FROM runs WHERE target = t.target AND kind = 'backup'
			ORDER BY start_time DESC, id DESC LIMIT 1) FROM t WHERE t.target IS NOT NULL
		UNION
		SELECT (SELECT id FROM runs WHERE target = t.target AND kind = 'backup' AND result IN ('ok', 'partial')
			ORDER BY start_time DESC, id DESC LIMIT 1) FROM t WHERE t.target IS NOT NULL)
	SELECT ` + runCols + ` FROM runs WHERE id IN ids ORDER BY start_time DESC, id DESC`

// newestDrills is newestRuns for drills, in the index on (target,
// start_time): the newest drill of each target and its newest ok drill.
const newestDrills = `WITH RECURSIVE t(target) AS (
		SELECT min(target) FROM drills
		UNION ALL
		SELECT (SELECT min(target) FROM drills WHERE target > t.target)
		FROM t WHERE t.target IS NOT NULL),
	ids(id) AS (
		SELECT (SELECT id FROM drills WHERE target = t.target
			ORDER BY start_time DESC, id DESC LIMIT 1) FROM t WHERE t.target IS NOT NULL
		UNION
		SELECT (SELECT id FROM drills WHERE target = t.target AND result = 'ok'
			ORDER BY start_time DESC, id DESC LIMIT 1) FROM t WHERE t.target IS NOT NULL)
	SELECT ` + drillCols + ` FROM drills WHERE id IN ids ORDER BY start_time DESC, id DESC`

// failureCounts counts the failed runs by target and kind, and the failed
// drills by target (with kind NULL), in the indexes on (result, target,
// kind) and (result, target): it reads only the failures' index entries.
const failureCounts = `SELECT target, kind, count(*) FROM runs WHERE result = 'failed' GROUP BY target, kind
	UNION ALL
	SELECT target, NULL, count(*) FROM drills WHERE result = 'failed' GROUP BY target`

// typeRankSQL is typeRank in SQL, the expression of the index
// runs_backup_type (migration 00009), which it must repeat exactly for
// SQLite to use the index.
const typeRankSQL = `(CASE
	WHEN snapshot_id GLOB '*F' AND snapshot_id NOT GLOB '*_*' THEN 3
	WHEN snapshot_id GLOB '*D' THEN 2
	WHEN snapshot_id GLOB '*I' THEN 1
	WHEN run_id GLOB '*-*-full' THEN 3
	WHEN run_id GLOB '*-*-diff' THEN 2
	WHEN run_id GLOB '*-*-incr' THEN 1
	ELSE 0 END)`

// typedKeys are the rows of TypedRuns: for each type rank, a run of each
// result that counts for pgbackrest.TypeState (ok, partial, failed).
const typedKeys = `k(rank, result) AS (VALUES
		(3, 'ok'), (3, 'partial'), (3, 'failed'),
		(2, 'ok'), (2, 'partial'), (2, 'failed'),
		(1, 'ok'), (1, 'partial'), (1, 'failed'))`

// newestOfKey is the ID of the newest backup run of the target named by
// the SQL expression target with the rank and result of k's row: one
// seek in the index runs_backup_type, whose last column is the rowid.
func newestOfKey(target string) string {
	return `(SELECT id FROM runs WHERE target = ` + target + ` AND kind = 'backup'
			AND ` + typeRankSQL + ` = k.rank AND result = k.result
			ORDER BY start_time DESC, id DESC LIMIT 1)`
}

// typedRuns selects TypedRuns of the target ?, newest first: nine seeks
// and the rows found.
var typedRuns = `WITH ` + typedKeys + `,
	ids(id) AS (SELECT ` + newestOfKey("?") + ` FROM k)
	SELECT ` + runCols + ` FROM runs WHERE id IN ids ORDER BY start_time DESC, id DESC`

// typedBackups selects TypedRuns of each target whose newest backup run's
// provider is TypedProvider (Summary.TypedRuns), by target, newest
// first. Like newestRuns it seeks from target to target in the index on
// (target, kind, start_time): a target of another provider costs one
// seek, a typed one ten (typedRuns'), whatever the length of its history.
// CROSS JOIN keeps typed the outer loop, so that its seek for the
// provider runs once per target, not once per row of k.
var typedBackups = backupTargets + `
	typed(target) AS (
		SELECT target FROM t WHERE t.target IS NOT NULL
			AND (SELECT provider FROM runs WHERE target = t.target AND kind = 'backup'
				ORDER BY start_time DESC, id DESC LIMIT 1) = '` + TypedProvider + `'),
	` + typedKeys + `,
	ids(id) AS (SELECT ` + newestOfKey("typed.target") + ` FROM typed CROSS JOIN k)
	SELECT ` + runCols + ` FROM runs WHERE id IN ids ORDER BY target, start_time DESC, id DESC`

// TypedRuns returns the backup runs of target that pgbackrest.TypeState
// needs, newest first: of each backup type (typeRank 1 to 3: incr, diff,
// full), the newest run with result ok, the newest partial one and the
// newest failed one. That is at most nine runs, read by nine seeks in
// the index runs_backup_type, however many runs the target has.
func (s *SQLite) TypedRuns(ctx context.Context, target string) ([]Run, error) {
	runs, err := readRuns(s.db.QueryContext(ctx, typedRuns, target))
	if err != nil {
		return nil, fmt.Errorf("typed runs of %s: %w", target, err)
	}
	return runs, nil
}

// Summaries returns the Summary of every target in four queries: the
// newest runs, the newest drills, the failure counts and the typed
// targets' TypedRuns. Each query reads
// its own snapshot of the catalog, so a run recorded meanwhile may show
// in one and not another.
func (s *SQLite) Summaries(ctx context.Context) (map[string]Summary, error) {
	runs, err := readRuns(s.newestRuns.QueryContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	drills, err := readDrills(s.newestDrills.QueryContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	// Newest first, the first run of a target is its newest, and the
	// first good one its newest good one: what Summarize picks. It also
	// counts the failures among these few rows; each such target and kind
	// has a row below, whose count replaces that.
	m := Summarize(runs, drills)
	rows, err := s.failureCounts.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("summaries: count failures: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var target string
		var kind sql.NullString
		var n int
		if err := rows.Scan(&target, &kind, &n); err != nil {
			return nil, fmt.Errorf("summaries: count failures: %w", err)
		}
		sum := m[target]
		if kind.Valid {
			if sum.Failed == nil {
				sum.Failed = map[Kind]int{}
			}
			sum.Failed[Kind(kind.String)] = n
		} else {
			sum.DrillsFailed = n
		}
		m[target] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summaries: count failures: %w", err)
	}
	typed, err := readRuns(s.typedBackups.QueryContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	for target, sum := range m { // Summarize's, of newestRuns' rows only
		sum.TypedRuns = nil
		m[target] = sum
	}
	for _, r := range typed { // by target, newest first
		sum := m[r.Target]
		if sum.LastBackup == nil || sum.LastBackup.Provider != TypedProvider {
			continue // its newest run, recorded meanwhile, is of another provider
		}
		sum.TypedRuns = append(sum.TypedRuns, r)
		m[r.Target] = sum
	}
	return m, nil
}

// AddEvent records e. Time and Kind are required; Level defaults to info.
func (s *SQLite) AddEvent(ctx context.Context, e Event) error {
	if e.Time.IsZero() || e.Kind == "" {
		return errors.New("add event: time and kind are required")
	}
	if e.Level == "" {
		e.Level = "info"
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO events (time, level, target, kind, message)
		VALUES (?, ?, ?, ?, ?)`, encTime(e.Time), e.Level, e.Target, e.Kind, e.Message); err != nil {
		return fmt.Errorf("add event %s: %w", e.Kind, err)
	}
	return nil
}

// Events returns the newest events first (by time, then ID), at most limit
// (0: all).
func (s *SQLite) Events(ctx context.Context, limit int) ([]Event, error) {
	var w where
	rows, err := s.db.QueryContext(ctx, w.query("id, time, level, target, kind, message", "events", "time", limit))
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t sql.NullString
		if err := rows.Scan(&e.ID, &t, &e.Level, &e.Target, &e.Kind, &e.Message); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		if e.Time, err = decTime(t); err != nil {
			return nil, fmt.Errorf("list events: event %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// where builds a WHERE clause from column conditions, with its arguments.
type where struct {
	conds []string
	args  []any
}

// eq adds col = v, unless v is empty.
func (w *where) eq(col, v string) {
	if v != "" {
		w.conds = append(w.conds, col+" = ?")
		w.args = append(w.args, v)
	}
}

// in adds col IN (vs...), unless vs is empty.
func (w *where) in(col string, vs []Result) {
	if len(vs) == 0 {
		return
	}
	w.conds = append(w.conds, col+" IN (?"+strings.Repeat(", ?", len(vs)-1)+")")
	for _, v := range vs {
		w.args = append(w.args, v)
	}
}

// query is a SELECT of cols from table under w, newest first by timeCol
// then id, with at most limit rows if limit > 0.
func (w *where) query(cols, table, timeCol string, limit int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s", cols, table)
	if len(w.conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(w.conds, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %s DESC, id DESC", timeCol)
	if limit > 0 {
		fmt.Fprintf(&b, " LIMIT %d", limit)
	}
	return b.String()
}

// utc returns t in UTC without a monotonic reading; the zero time stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Round(0).UTC()
}

// encTime is t as stored: NULL for the zero time, else timeLayout in UTC.
func encTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// decTime parses a stored time; NULL is the zero time.
func decTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time %q: %w", s.String, err)
	}
	return t.UTC(), nil
}
