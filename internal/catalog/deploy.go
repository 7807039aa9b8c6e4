package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeployKind is what a Deploy record did.
type DeployKind string

// Deploy kinds.
const (
	// DeployNew: a new version started on the idle color, traffic
	// flipped to it.
	DeployNew DeployKind = "deploy"
	// DeployRollback: traffic flipped back to the previous color, still
	// running (the fast path of homelab rollback).
	DeployRollback DeployKind = "rollback"
	// DeployRedeploy: a rollback that started an older version on the
	// idle color (rollback --redeploy).
	DeployRedeploy DeployKind = "redeploy"
	// DeployCleanup: the idle color was stopped; no fast rollback is left.
	DeployCleanup DeployKind = "cleanup"
)

// Deploy is one finished change of a blue/green service's traffic (or a
// cleanup of its idle color): after it, ToColor serves at ToVersion and
// FromColor is kept at FromVersion for a fast rollback (empty after a
// cleanup, and before the first deploy had a previous color).
type Deploy struct {
	ID                     int64
	Service                string
	Time                   time.Time
	Kind                   DeployKind
	FromColor, FromVersion string
	ToColor, ToVersion     string
	// Who and Host are the user and machine that ran it.
	Who, Host string
	// Reason is the operator's line of why (a rollback's incident note,
	// or an --allow-contract deploy's justification).
	Reason string
	// AllowContract: the release's contract migrations were allowed.
	AllowContract bool
	// SagaID is the saga that made the change ("" for a cleanup).
	SagaID string
}

// Deploys is where deploys are recorded: the catalog (SQLite).
type Deploys interface {
	// AddDeploy records d (Service, Time, Kind, ToColor required) and
	// returns it with its ID.
	AddDeploy(ctx context.Context, d Deploy) (Deploy, error)
	// DeployHistory returns service's records newest first, at most
	// limit (0: all); service "" lists every service's.
	DeployHistory(ctx context.Context, service string, limit int) ([]Deploy, error)
	// DeleteDeploys removes the records made by saga sagaID (the undo of
	// a saga's last step); none is not an error.
	DeleteDeploys(ctx context.Context, sagaID string) error
}

var _ Deploys = (*SQLite)(nil)

// AddDeploy records d; see Deploys.
func (s *SQLite) AddDeploy(ctx context.Context, d Deploy) (Deploy, error) {
	if d.Service == "" || d.Time.IsZero() || d.Kind == "" || d.ToColor == "" {
		return Deploy{}, errors.New("add deploy: service, time, kind and to color are required")
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO deploys (service, time, kind, from_color, from_version,
		to_color, to_version, who, host, reason, allow_contract, saga_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Service, encTime(d.Time), string(d.Kind), d.FromColor, d.FromVersion, d.ToColor, d.ToVersion,
		d.Who, d.Host, d.Reason, d.AllowContract, d.SagaID)
	if err != nil {
		return Deploy{}, fmt.Errorf("add deploy of %s: %w", d.Service, err)
	}
	if d.ID, err = res.LastInsertId(); err != nil {
		return Deploy{}, fmt.Errorf("add deploy of %s: %w", d.Service, err)
	}
	d.Time = utc(d.Time)
	return d, nil
}

// DeployHistory lists deploys; see Deploys.
func (s *SQLite) DeployHistory(ctx context.Context, service string, limit int) ([]Deploy, error) {
	var w where
	w.eq("service", service)
	rows, err := s.db.QueryContext(ctx, w.query(`id, service, time, kind, from_color, from_version, to_color,
		to_version, who, host, reason, allow_contract, saga_id`, "deploys", "time", limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("deploy history: %w", err)
	}
	defer rows.Close()
	var out []Deploy
	for rows.Next() {
		var d Deploy
		var t sql.NullString
		if err := rows.Scan(&d.ID, &d.Service, &t, &d.Kind, &d.FromColor, &d.FromVersion, &d.ToColor,
			&d.ToVersion, &d.Who, &d.Host, &d.Reason, &d.AllowContract, &d.SagaID); err != nil {
			return nil, fmt.Errorf("deploy history: %w", err)
		}
		if d.Time, err = decTime(t); err != nil {
			return nil, fmt.Errorf("deploy history: record %d: %w", d.ID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deploy history: %w", err)
	}
	return out, nil
}

// DeleteDeploys removes saga sagaID's records; see Deploys.
func (s *SQLite) DeleteDeploys(ctx context.Context, sagaID string) error {
	if sagaID == "" {
		return errors.New("delete deploys: saga id required")
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM deploys WHERE saga_id = ?`, sagaID); err != nil {
		return fmt.Errorf("delete deploys of saga %s: %w", sagaID, err)
	}
	return nil
}
