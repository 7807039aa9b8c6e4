package app

import (
	"context"
	"os"

	"homelab/internal/doctor"
	"homelab/internal/restic"
)

// Doctor returns the lab's doctor: repositories opened with Repo (no
// lock wait), over the catalog when it exists (none is created: a lab
// without one has no drills or sagas to judge). The returned func closes
// the catalog.
func (a *App) Doctor(ctx context.Context) (*doctor.Doctor, func(), error) {
	store, err := a.openExisting(ctx)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	d := &doctor.Doctor{
		Lab:      a.Lab,
		Repo:     func(ctx context.Context, name string) (*restic.Client, error) { return a.Repo(ctx, name, 0) },
		Now:      a.now,
		Hostname: host,
		Log:      a.log(),
	}
	closeFn := func() {}
	if store != nil {
		d.Catalog = store
		closeFn = func() { store.Close() }
	}
	return d, closeFn, nil
}
