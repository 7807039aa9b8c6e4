package app

import (
	"context"

	"homelab/internal/backup"
)

// TargetPreflight is what Preflight found for one backup target: the
// privileges its source role lacks, or Err when it could not be checked
// (the server cannot be reached, a secret is unset).
type TargetPreflight struct {
	Target   string
	Findings []backup.Finding
	Err      error
}

// Preflight checks, for every backup target of the lab (in the lab's
// order) whose provider can (backup.Preflighter: postgres), the
// privileges a restore drill and an in-place restore of it need,
// connected as the target's source role. It changes nothing and opens no
// catalog; targets whose provider checks nothing are left out.
func (a *App) Preflight(ctx context.Context) []TargetPreflight {
	m := a.NewManager(nil, false)
	var out []TargetPreflight
	for _, name := range a.Lab.BackupNames() {
		if _, ok := m.Providers[a.Lab.Backups[name].Provider].(backup.Preflighter); !ok {
			continue
		}
		fs, err := m.Preflight(ctx, name, backup.Need{Drill: true, Restore: &backup.Destination{InPlace: true}})
		out = append(out, TargetPreflight{Target: name, Findings: fs, Err: err})
	}
	return out
}
