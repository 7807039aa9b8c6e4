package app

import (
	"context"

	"homelab/internal/clusterrestore"
)

// ClusterRestorer opens the catalog and returns the in-place restorer of
// the lab's pgbackrest targets, journalling into it, with the upgrader's
// runtimes and health gate; the returned func closes the catalog.
func (a *App) ClusterRestorer(ctx context.Context) (*clusterrestore.Restorer, func(), error) {
	u, closeFn, err := a.Upgrader(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	return &clusterrestore.Restorer{Lab: a.Lab, Backups: u.Backups, Upgrader: u, Journal: u.Journal, Now: a.Now, Log: a.log()}, closeFn, nil
}
