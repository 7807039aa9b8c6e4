package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// LabSnapshotState is where a lab snapshot is in its life.
type LabSnapshotState string

const (
	// LabSnapshotCreating: its create saga is at work (or died; resuming
	// the saga marks it incomplete). Its members are kept from retention.
	LabSnapshotCreating LabSnapshotState = "creating"
	// LabSnapshotComplete: every member was taken; it can be restored,
	// and its members are kept from retention while it exists.
	LabSnapshotComplete LabSnapshotState = "complete"
	// LabSnapshotIncomplete: a member failed (or the create was
	// interrupted and resumed); never restored, and its members are left
	// to retention.
	LabSnapshotIncomplete LabSnapshotState = "incomplete"
)

// ErrExists is returned (wrapped) when a name is already taken.
var ErrExists = errors.New("already exists")

// LabSnapshot is a lab snapshot as recorded: a named set of restic
// snapshots (members), one per backup target, with what else the lab was
// when it was taken.
type LabSnapshot struct {
	Name  string           `json:"name"`
	Note  string           `json:"note,omitempty"`
	State LabSnapshotState `json:"state"`
	// SagaID is the saga that created it.
	SagaID  string    `json:"saga_id,omitempty"`
	Created time.Time `json:"created"`
	// Finished is when it became complete or incomplete; zero while
	// creating.
	Finished time.Time `json:"finished,omitzero"`
	// LabFile is a copy of the lab file as it was (YAML text; secrets are
	// references in it, never values).
	LabFile string              `json:"-"`
	Members []LabSnapshotMember `json:"members"`
	// Versions maps each service whose runtime reports a version to it.
	Versions map[string]string `json:"versions"`
	// Colors maps each blue/green service that served to its serving
	// color and that color's version (the deploy state). They are kept in
	// the versions column: a service name maps to a version string, or, for
	// a blue/green service, to {"color": ..., "version": ...}; rows written
	// before colors were recorded hold strings only.
	Colors map[string]ServingColor `json:"colors,omitempty"`
	// Certs maps each certificate ("ca" and the leaves' names) that
	// existed to its SHA-256 fingerprint (hex).
	Certs map[string]string `json:"certs"`
	Error string            `json:"error,omitempty"`
}

// ServingColor is the color that serves a blue/green service and the
// version it runs.
type ServingColor struct {
	Color   string `json:"color"`
	Version string `json:"version"`
}

// LabSnapshotMember is one target's restic snapshot in a lab snapshot.
type LabSnapshotMember struct {
	Target     string    `json:"target"`
	Repository string    `json:"repository"`
	SnapshotID string    `json:"snapshot_id"`
	Time       time.Time `json:"time"`
	// Bytes and Files are what the backup read from the source.
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
}

// Member returns the member of target, and whether there is one.
func (s LabSnapshot) Member(target string) (LabSnapshotMember, bool) {
	for _, m := range s.Members {
		if m.Target == target {
			return m, true
		}
	}
	return LabSnapshotMember{}, false
}

// Holds reports whether s keeps its members from retention: it is
// complete, or still being created.
func (s LabSnapshot) Holds() bool {
	return s.State == LabSnapshotComplete || s.State == LabSnapshotCreating
}

// LabSnapshots records lab snapshots. SQLite implements it.
type LabSnapshots interface {
	// CreateLabSnapshot inserts s (Name, State and Created required); a
	// name already used gives an error wrapping ErrExists.
	CreateLabSnapshot(ctx context.Context, s LabSnapshot) error
	// AddLabSnapshotMember adds m to the lab snapshot name, replacing a
	// member of the same target; an unknown name wraps ErrNotFound.
	AddLabSnapshotMember(ctx context.Context, name string, m LabSnapshotMember) error
	// FinishLabSnapshot sets its state, end time and error.
	FinishLabSnapshot(ctx context.Context, name string, state LabSnapshotState, end time.Time, errMsg string) error
	// LabSnapshot returns the lab snapshot name; unknown wraps ErrNotFound.
	LabSnapshot(ctx context.Context, name string) (LabSnapshot, error)
	// LabSnapshotList returns lab snapshots newest first, at most limit
	// (0: all), without their lab file copies.
	LabSnapshotList(ctx context.Context, limit int) ([]LabSnapshot, error)
	// DeleteLabSnapshot removes the record; unknown wraps ErrNotFound.
	DeleteLabSnapshot(ctx context.Context, name string) error
}

var _ LabSnapshots = (*SQLite)(nil)

// CreateLabSnapshot inserts s, durably. See LabSnapshots.
func (s *SQLite) CreateLabSnapshot(ctx context.Context, ls LabSnapshot) error {
	if ls.Name == "" || ls.State == "" || ls.Created.IsZero() {
		return errors.New("create lab snapshot: name, state and created are required")
	}
	members, versions, certs, err := encLabSnapshot(ls)
	if err != nil {
		return fmt.Errorf("create lab snapshot %s: %w", ls.Name, err)
	}
	err = s.durably(ctx, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO lab_snapshots (name, note, state, saga_id, created_at,
			finished_at, lab_file, members, versions, certs, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ls.Name, ls.Note, ls.State, ls.SagaID, encTime(ls.Created), encTime(ls.Finished), ls.LabFile,
			members, versions, certs, ls.Error)
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("create lab snapshot %s: %w", ls.Name, ErrExists)
		}
		return fmt.Errorf("create lab snapshot %s: %w", ls.Name, err)
	}
	return nil
}

func encLabSnapshot(ls LabSnapshot) (members, versions, certs string, err error) {
	if ls.Members == nil {
		ls.Members = []LabSnapshotMember{}
	}
	m, err := json.Marshal(ls.Members)
	if err != nil {
		return "", "", "", err
	}
	v, err := encVersions(ls.Versions, ls.Colors)
	if err != nil {
		return "", "", "", err
	}
	c, err := json.Marshal(nonNilMap(ls.Certs))
	return string(m), string(v), string(c), err
}

// encVersions is the versions column: each service's version (a JSON
// string) and each blue/green service's serving color (a JSON object).
func encVersions(versions map[string]string, colors map[string]ServingColor) ([]byte, error) {
	all := map[string]any{}
	for k, v := range versions {
		all[k] = v
	}
	for k, c := range colors {
		if _, ok := versions[k]; ok {
			return nil, fmt.Errorf("service %s has both a version and a serving color", k)
		}
		all[k] = c
	}
	return json.Marshal(all)
}

// decVersions splits the versions column into versions and colors (see
// encVersions).
func decVersions(text string, ls *LabSnapshot) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &all); err != nil {
		return err
	}
	ls.Versions = map[string]string{}
	for k, raw := range all {
		if len(raw) > 0 && raw[0] == '{' {
			var c ServingColor
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("versions: %s: %w", k, err)
			}
			if ls.Colors == nil {
				ls.Colors = map[string]ServingColor{}
			}
			ls.Colors[k] = c
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("versions: %s: %w", k, err)
		}
		ls.Versions[k] = v
	}
	return nil
}

// AddLabSnapshotMember adds or replaces a member, durably, in one
// transaction. See LabSnapshots.
func (s *SQLite) AddLabSnapshotMember(ctx context.Context, name string, m LabSnapshotMember) error {
	err := s.durably(ctx, func(c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var text string
		if err := tx.QueryRowContext(ctx, `SELECT members FROM lab_snapshots WHERE name = ?`, name).Scan(&text); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		var members []LabSnapshotMember
		if err := json.Unmarshal([]byte(text), &members); err != nil {
			return err
		}
		members = slices.DeleteFunc(members, func(x LabSnapshotMember) bool { return x.Target == m.Target })
		m.Time = utc(m.Time)
		members = append(members, m)
		slices.SortFunc(members, func(a, b LabSnapshotMember) int { return strings.Compare(a.Target, b.Target) })
		b, err := json.Marshal(members)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lab_snapshots SET members = ? WHERE name = ?`, string(b), name); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("add member %s to lab snapshot %s: %w", m.Target, name, err)
	}
	return nil
}

// FinishLabSnapshot sets the state, end and error, durably. See
// LabSnapshots.
func (s *SQLite) FinishLabSnapshot(ctx context.Context, name string, state LabSnapshotState, end time.Time, errMsg string) error {
	var n int64
	err := s.durably(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, `UPDATE lab_snapshots SET state = ?, finished_at = ?, error = ? WHERE name = ?`,
			state, encTime(end), errMsg, name)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("finish lab snapshot %s: %w", name, err)
	}
	return nil
}

// LabSnapshot returns one lab snapshot with its lab file copy. See
// LabSnapshots.
func (s *SQLite) LabSnapshot(ctx context.Context, name string) (LabSnapshot, error) {
	out, err := s.labSnapshots(ctx, "lab_file", "WHERE name = ?", []any{name})
	if err != nil {
		return LabSnapshot{}, fmt.Errorf("lab snapshot %s: %w", name, err)
	}
	if len(out) == 0 {
		return LabSnapshot{}, fmt.Errorf("lab snapshot %s: %w", name, ErrNotFound)
	}
	return out[0], nil
}

// LabSnapshotList returns lab snapshots newest first. See LabSnapshots.
func (s *SQLite) LabSnapshotList(ctx context.Context, limit int) ([]LabSnapshot, error) {
	q := "ORDER BY created_at DESC, name"
	var args []any
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	out, err := s.labSnapshots(ctx, "''", q, args)
	if err != nil {
		return nil, fmt.Errorf("list lab snapshots: %w", err)
	}
	return out, nil
}

func (s *SQLite) labSnapshots(ctx context.Context, labFileCol, rest string, args []any) ([]LabSnapshot, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, note, state, saga_id, created_at, finished_at, `+labFileCol+`,
		members, versions, certs, error FROM lab_snapshots `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LabSnapshot
	for rows.Next() {
		var ls LabSnapshot
		var created, finished sql.NullString
		var members, versions, certs string
		if err := rows.Scan(&ls.Name, &ls.Note, &ls.State, &ls.SagaID, &created, &finished, &ls.LabFile,
			&members, &versions, &certs, &ls.Error); err != nil {
			return nil, err
		}
		if ls.Created, err = decTime(created); err != nil {
			return nil, err
		}
		if ls.Finished, err = decTime(finished); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			text string
			v    any
		}{{members, &ls.Members}, {certs, &ls.Certs}} {
			if err := json.Unmarshal([]byte(f.text), f.v); err != nil {
				return nil, fmt.Errorf("lab snapshot %s: %w", ls.Name, err)
			}
		}
		if err := decVersions(versions, &ls); err != nil {
			return nil, fmt.Errorf("lab snapshot %s: %w", ls.Name, err)
		}
		out = append(out, ls)
	}
	return out, rows.Err()
}

// DeleteLabSnapshot removes the record. See LabSnapshots.
func (s *SQLite) DeleteLabSnapshot(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM lab_snapshots WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete lab snapshot %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete lab snapshot %s: %w", name, err)
	}
	return nil
}

// HeldMembers returns, for target, the IDs of its restic snapshots that
// lab snapshots in ls hold (LabSnapshot.Holds), each with the names of
// the lab snapshots holding it, in ls's order.
func HeldMembers(ls []LabSnapshot, target string) map[string][]string {
	out := map[string][]string{}
	for _, s := range ls {
		if !s.Holds() {
			continue
		}
		if m, ok := s.Member(target); ok {
			out[m.SnapshotID] = append(out[m.SnapshotID], s.Name)
		}
	}
	return out
}
