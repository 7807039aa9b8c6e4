package app

import (
	"context"
	"errors"

	"homelab/internal/catalog"
	"homelab/internal/deploy"
	"homelab/internal/labsnapshot"
)

// LabSnapshots opens the catalog and returns the lab snapshot manager
// over it, with a backup manager that waits for busy targets and
// repository locks (a restore's compensation must not give up on a lock
// that frees in a minute), an upgrader for versions and health gates and
// a deployer for the blue/green services' serving colors;
// the returned func closes the catalog.
func (a *App) LabSnapshots(ctx context.Context) (*labsnapshot.Manager, func(), error) {
	u, closeFn, err := a.Upgrader(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := u.Backups.Catalog.(catalog.LabSnapshots); !ok {
		closeFn()
		return nil, nil, errors.New("the catalog keeps no lab snapshots")
	}
	m := &labsnapshot.Manager{Lab: a.Lab, Backups: u.Backups, Upgrader: u, Now: a.Now, Log: a.log()}
	if ds, ok := u.Backups.Catalog.(deploy.Store); ok {
		m.Deployer = &deploy.Deployer{Lab: a.Lab, Catalog: ds, Now: a.Now, Log: a.log()}
	}
	return m, closeFn, nil
}
