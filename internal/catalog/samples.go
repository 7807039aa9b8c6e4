package catalog

import (
	"context"
	"errors"
	"fmt"
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
// catalog (SQLite, migration 00007).
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

var _ Samples = (*SQLite)(nil)

// AddSamples records ss; see Samples.
func (s *SQLite) AddSamples(ctx context.Context, ss []Sample) (err error) {
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
func (s *SQLite) SamplesOf(ctx context.Context, series string, since time.Time) ([]Sample, error) {
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
func (s *SQLite) SeriesNames(ctx context.Context) ([]string, error) {
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
func (s *SQLite) CompactSamples(ctx context.Context, now time.Time) error {
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
