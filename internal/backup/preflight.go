package backup

import (
	"context"
	"fmt"
	"strings"
)

// Need is what a preflight checks a target's privileges for: a restore
// drill, a restore into Restore (a destination as PlanRestore takes it:
// Database with or without Replace, or InPlace), or both.
type Need struct {
	Drill   bool
	Restore *Destination
}

// Finding is a privilege a role lacks for a need of a target, found
// before anything is changed.
type Finding struct {
	Target string `json:"target"`
	// Role is the role that lacks it: the role the target's source is
	// reached as.
	Role string `json:"role"`
	// Needs is what the role lacks ("CREATEDB (or superuser)").
	Needs string `json:"needs"`
	// For is what it is needed for ("to create the drill database
	// homelab_drill_db_*").
	For string `json:"for"`
}

// String is "target db: role app needs CREATEDB (or superuser) to ...".
func (f Finding) String() string {
	return fmt.Sprintf("target %s: role %s needs %s %s", f.Target, f.Role, f.Needs, f.For)
}

// Preflighter is implemented by providers that can check, connected as
// the target's source role, whether a drill or a restore of the target
// would be allowed, without changing anything. The findings name the
// role and what it lacks; none means nothing was found missing (not that
// the restore will succeed). The error is a failure to check (the server
// cannot be reached), not a finding.
type Preflighter interface {
	Preflight(ctx context.Context, t Target, need Need) ([]Finding, error)
}

// PreflightError is a drill or restore refused before it began because of
// the findings of a preflight.
type PreflightError struct{ Findings []Finding }

func (e *PreflightError) Error() string {
	s := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		s[i] = f.String()
	}
	return strings.Join(s, "; ")
}

// Preflight checks the privileges target name's provider needs for need
// (Preflighter); a provider that does not implement it (or is not
// available: the backup itself says so) finds nothing. Errors: an
// unknown target, a failure to check.
func (m *Manager) Preflight(ctx context.Context, name string, need Need) ([]Finding, error) {
	spec, err := m.Lab.Backup(name)
	if err != nil {
		return nil, err
	}
	if _, ok := m.Providers[spec.Provider].(Preflighter); !ok {
		return nil, nil
	}
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return nil, err
	}
	return preflight(ctx, t, p, need)
}

func preflight(ctx context.Context, t Target, p Provider, need Need) ([]Finding, error) {
	pf, ok := p.(Preflighter)
	if !ok {
		return nil, nil
	}
	fs, err := pf.Preflight(ctx, t, need)
	if err != nil {
		return nil, fmt.Errorf("target %s: check the privileges a restore needs: %w", t.Name(), err)
	}
	return fs, nil
}

// refuse returns a *PreflightError for findings, nil for none.
func refuse(fs []Finding) error {
	if len(fs) == 0 {
		return nil
	}
	return &PreflightError{Findings: fs}
}
