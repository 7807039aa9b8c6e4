package app

import (
	"context"

	"homelab/internal/catalog"
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

// deploysOf is store's deploy records (the daemon's catalog.Cache reads
// them from the store it wraps, uncached); nil when it keeps none.
func deploysOf(store catalog.Store) catalog.Deploys {
	if c, ok := store.(*catalog.Cache); ok {
		d, _ := c.Versioned.(catalog.Deploys)
		return d
	}
	d, _ := store.(catalog.Deploys)
	return d
}
