package app

import (
	"context"

	"homelab/internal/deploy"
)

// Deployer opens the catalog and returns the lab's deployer of blue/green
// services, journalling into it; the returned func closes the catalog.
// wait is for the service's saga lock (another deploy, rollback or
// upgrade of it).
func (a *App) Deployer(ctx context.Context, wait bool) (*deploy.Deployer, func(), error) {
	store, err := a.OpenCatalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	d := &deploy.Deployer{Lab: a.Lab, Catalog: store, Wait: wait, Now: a.Now, Log: a.log()}
	return d, func() { store.Close() }, nil
}
