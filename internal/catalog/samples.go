package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Sample is one measurement of a series at a time (Unix seconds in the
// catalog, so sub-second parts are dropped). Series names what it is and
// its unit: "fs:<mount>" free bytes, "cpu" busy share (0..1), "rapl:<zone>"
// cumulative joules.
type Sample struct {
	Series string
	Time   time.Time
	Value  float64
}

const (
	// SampleMaxAge is how long samples are kept: the energy figures cover
	// 30 days, plus a margin.
	SampleMaxAge = 35 * 24 * time.Hour
	// SampleFullAge is how long every sample is kept; older ones are
	// thinned to the first and the last of each series and hour.
	SampleFullAge = 48 * time.Hour
)

// Samples is where the daemon keeps its samples of the host: the
// catalog's samples file (SQLite.SamplesPath).
type Samples interface {
	// AddSamples records ss in one transaction (Series and Time
	// required).
	AddSamples(ctx context.Context, ss []Sample) error
	// SamplesOf returns series' samples taken at or after since, oldest
	// first.
	SamplesOf(ctx context.Context, series string, since time.Time) ([]Sample, error)
	// SeriesNames returns the names of the series with samples, sorted.
	SeriesNames(ctx context.Context) ([]string, error)
	// CompactSamples bounds the samples as of now: those older than
	// SampleMaxAge are deleted, and of those older than SampleFullAge
	// only the first and the last of each series and hour are kept.
	CompactSamples(ctx context.Context, now time.Time) error
}

var (
	_ Samples = (*SQLite)(nil)
	_ Samples = (*sampleDB)(nil)
)

// samplesFile is the name of the samples' SQLite file, in the catalog's
// directory.
const samplesFile = "samples.db"

// samplesSchema is the samples file's schema version (PRAGMA
// user_version): 1 is the table below. A file of a newer version is
// refused with ErrSchemaTooNew.
const samplesSchema = 1

// sampleDB is the samples' own SQLite file. The samples are kept apart
// from the catalog's tables so that the sampler's writes (every
// hosts.sample_interval) leave the catalog's Version alone: every
// catalog.Cache and every cache keyed by that version (the daemon's
// status page, /metrics) stays valid, where a sample in the catalog made
// them all read the catalog again. Nothing the caches hold depends on
// the samples: the page and /metrics show the daemon's newest HostStatus,
// which the sampler keeps in memory.
//
// The file runs with the catalog's pragmas (dsn), so several processes
// share it as they share the catalog. Its one table is the catalog's
// samples table of migration 00007, which migration 00008 moves here
// (moveSamples).
type sampleDB struct {
	db *sql.DB
}

// openSampleDB opens the samples file at path (absolute), creating it
// and its table if needed.
func openSampleDB(ctx context.Context, path string) (*sampleDB, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open samples %s: %w", path, err)
	}
	if err := connect(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open samples %s: %w", path, err)
	}
	if err := createSamples(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open samples %s: %w", path, err)
	}
	return &sampleDB{db: db}, nil
}

// createSamples makes the samples table in a new file, in one
// transaction (which, begun IMMEDIATE, waits for another process doing
// the same), and refuses a file of a newer schema.
func createSamples(ctx context.Context, db *sql.DB) (err error) {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v == samplesSchema {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	switch {
	case v > samplesSchema:
		return fmt.Errorf("%w: samples schema version %d, this homelab knows up to %d; upgrade homelab", ErrSchemaTooNew, v, samplesSchema)
	case v < samplesSchema:
		for _, stmt := range []string{
			`CREATE TABLE IF NOT EXISTS samples (
				id     INTEGER PRIMARY KEY,
				series TEXT NOT NULL,
				time   INTEGER NOT NULL,
				value  REAL NOT NULL
			)`,
			`CREATE INDEX IF NOT EXISTS samples_series_time ON samples (series, time)`,
			fmt.Sprintf(`PRAGMA user_version = %d`, samplesSchema),
		} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// moveSamples is migration 00008, in goose's transaction tx on the
// catalog (which holds the catalog's write lock from its start, so no
// sample is written to the catalog meanwhile): it copies the catalog's
// samples into the samples file (SamplesPath), which it creates if there
// are any, and drops the catalog's samples table. The copy is committed
// first and keeps each sample's id, inserting none whose id the file
// holds already: after a crash between the two commits (the catalog still
// at version 7, with its samples), the next Open copies again and adds
// nothing twice.
//
// SQLite-only, as the samples file is: a PostgreSQL catalog would keep
// its samples in a table.
func (s *SQLite) moveSamples(ctx context.Context, tx *sql.Tx) error {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM samples`).Scan(&n); err != nil {
		return fmt.Errorf("move samples: %w", err)
	}
	if n > 0 {
		if err := copySamples(ctx, tx, s.SamplesPath()); err != nil {
			return fmt.Errorf("move samples to %s: %w", s.SamplesPath(), err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE samples`); err != nil {
		return fmt.Errorf("move samples: %w", err)
	}
	return nil
}

// copySamples copies the samples table that from reads into the samples
// file at path, ids kept, in one transaction of the file.
func copySamples(ctx context.Context, from *sql.Tx, path string) (err error) {
	sd, err := openSampleDB(ctx, path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sd.Close()) }()
	tx, err := sd.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO samples (id, series, time, value) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	rows, err := from.QueryContext(ctx, `SELECT id, series, time, value FROM samples ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, t  int64
			series string
			value  float64
		)
		if err := rows.Scan(&id, &series, &t, &value); err != nil {
			return err
		}
		if _, err := ins.ExecContext(ctx, id, series, t, value); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the file.
func (s *sampleDB) Close() error { return s.db.Close() }

// SamplesPath returns the absolute path of the file that holds the
// catalog's samples (Samples): samples.db in the catalog's directory,
// created at the first use of a Samples method (or by migration 00008
// when it has samples to move). Copy it with the catalog to keep the
// host's history.
func (s *SQLite) SamplesPath() string { return filepath.Join(filepath.Dir(s.path), samplesFile) }

// samplesDB returns the samples file, opened (and created) at the first
// call.
func (s *SQLite) samplesDB(ctx context.Context) (*sampleDB, error) {
	s.samplesMu.Lock()
	defer s.samplesMu.Unlock()
	if s.samplesClosed {
		return nil, errors.New("samples: catalog is closed")
	}
	if s.samples == nil {
		sd, err := openSampleDB(ctx, s.SamplesPath())
		if err != nil {
			return nil, err
		}
		s.samples = sd
	}
	return s.samples, nil
}

// AddSamples records ss in the samples file; see Samples.
func (s *SQLite) AddSamples(ctx context.Context, ss []Sample) error {
	sd, err := s.samplesDB(ctx)
	if err != nil {
		return fmt.Errorf("add samples: %w", err)
	}
	return sd.AddSamples(ctx, ss)
}

// SamplesOf lists series' samples from the samples file; see Samples.
func (s *SQLite) SamplesOf(ctx context.Context, series string, since time.Time) ([]Sample, error) {
	sd, err := s.samplesDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("samples of %s: %w", series, err)
	}
	return sd.SamplesOf(ctx, series, since)
}

// SeriesNames lists the series of the samples file; see Samples.
func (s *SQLite) SeriesNames(ctx context.Context) ([]string, error) {
	sd, err := s.samplesDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("sample series: %w", err)
	}
	return sd.SeriesNames(ctx)
}

// CompactSamples deletes and thins the samples file's old samples; see
// Samples.
func (s *SQLite) CompactSamples(ctx context.Context, now time.Time) error {
	sd, err := s.samplesDB(ctx)
	if err != nil {
		return fmt.Errorf("compact samples: %w", err)
	}
	return sd.CompactSamples(ctx, now)
}

// AddSamples records ss; see Samples.
func (s *sampleDB) AddSamples(ctx context.Context, ss []Sample) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add samples: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	for _, x := range ss {
		if x.Series == "" || x.Time.IsZero() {
			return errors.New("add samples: series and time are required")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO samples (series, time, value) VALUES (?, ?, ?)`,
			x.Series, x.Time.Unix(), x.Value); err != nil {
			return fmt.Errorf("add samples: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add samples: %w", err)
	}
	return nil
}

// SamplesOf lists series' samples; see Samples.
func (s *sampleDB) SamplesOf(ctx context.Context, series string, since time.Time) ([]Sample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT time, value FROM samples WHERE series = ? AND time >= ? ORDER BY time, id`,
		series, since.Unix())
	if err != nil {
		return nil, fmt.Errorf("samples of %s: %w", series, err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var t int64
		x := Sample{Series: series}
		if err := rows.Scan(&t, &x.Value); err != nil {
			return nil, fmt.Errorf("samples of %s: %w", series, err)
		}
		x.Time = time.Unix(t, 0).UTC()
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("samples of %s: %w", series, err)
	}
	return out, nil
}

// SeriesNames lists the series; see Samples.
func (s *sampleDB) SeriesNames(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT series FROM samples ORDER BY series`)
	if err != nil {
		return nil, fmt.Errorf("sample series: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("sample series: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sample series: %w", err)
	}
	return out, nil
}

// CompactSamples deletes and thins old samples; see Samples.
func (s *sampleDB) CompactSamples(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM samples WHERE time < ?`, now.Add(-SampleMaxAge).Unix()); err != nil {
		return fmt.Errorf("compact samples: %w", err)
	}
	thin := now.Add(-SampleFullAge).Unix()
	// The last of each hour is kept too: a gap (the daemon down, its
	// energy count flat across it) must stay one between two kept
	// samples, or the downtime would count as measured time.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM samples WHERE time < ? AND id NOT IN (
		SELECT MIN(id) FROM samples WHERE time < ? GROUP BY series, time / 3600
		UNION ALL
		SELECT MAX(id) FROM samples WHERE time < ? GROUP BY series, time / 3600)`, thin, thin, thin); err != nil {
		return fmt.Errorf("compact samples: %w", err)
	}
	return nil
}
