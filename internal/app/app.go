package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/files"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/backup/postgres"
	"homelab/internal/backup/s3mirror"
	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/upgrade"
)

// App builds the working parts of one lab file. Lab is required; a nil
// Now is time.Now and a nil Log discards. A reloaded lab file (the
// daemon's SIGHUP) gets a new App.
type App struct {
	Lab *lab.Lab
	Now func() time.Time
	Log *slog.Logger
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *App) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

// CatalogPath is where the lab's catalog lives: <state_dir>/catalog.db.
func (a *App) CatalogPath() string { return filepath.Join(a.Lab.StateDir, "catalog.db") }

// OpenCatalog opens the lab's catalog, creating it (and the state
// directory) if needed; see catalog.Open for its errors. The caller closes
// it.
func (a *App) OpenCatalog(ctx context.Context) (*catalog.SQLite, error) {
	return catalog.Open(ctx, a.CatalogPath())
}

// Repo opens the restic client of the lab's repository name, with the
// password from password_file or password_env and the environment of env,
// env_from and, for a repository on S3, its keys and region (s3Env;
// values read from homelab's environment or files, kept out of restic's
// argv and error messages). retryLock is restic's --retry-lock (0: fail
// at once on a locked repository). It fails for an unknown repository, an
// unset password_env, or a restic that is missing or too old.
func (a *App) Repo(ctx context.Context, name string, retryLock time.Duration) (*restic.Client, error) {
	r, ok := a.Lab.Repositories[name]
	if !ok {
		return nil, fmt.Errorf("unknown repository %q", name)
	}
	// A lock left by a restic killed on this host (with its homelab) is
	// removed when it blocks a command; other locks are left to `homelab
	// repo unlock`.
	cfg := restic.Config{Name: name, Repository: r.URL, PasswordFile: r.PasswordFile, Logger: a.log(), RetryLock: retryLock, RemoveStaleLocks: true}
	if r.PasswordEnv != "" {
		v, err := r.PasswordSecret().Resolve()
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", name, err)
		}
		cfg.Password = v
	}
	for k, v := range r.Env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	for k, s := range r.EnvFromSecrets() {
		v, err := s.Resolve()
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", name, err)
		}
		cfg.Env = append(cfg.Env, k+"="+v)
		cfg.Secrets = append(cfg.Secrets, v)
	}
	if err := s3Env(&cfg, r); err != nil {
		return nil, fmt.Errorf("repository %s: %w", name, err)
	}
	return restic.New(ctx, cfg)
}

// s3Env adds the S3 keys of repository r (access_key_id_env/_file,
// secret_access_key_env/_file, region) to restic's environment as
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION, with
// both keys' values among the secrets redacted from errors. The keys are
// read now, at use, not when the lab is loaded; an unset variable or an
// unreadable file is an error naming the field, never the value.
func s3Env(cfg *restic.Config, r *lab.Repository) error {
	for _, k := range []struct {
		env    string
		secret lab.Secret
	}{{"AWS_ACCESS_KEY_ID", r.AccessKeyID()}, {"AWS_SECRET_ACCESS_KEY", r.SecretAccessKey()}} {
		if !k.secret.IsSet() {
			continue
		}
		v, err := k.secret.Resolve()
		if err != nil {
			return err
		}
		cfg.Env = append(cfg.Env, k.env+"="+v)
		cfg.Secrets = append(cfg.Secrets, v)
	}
	if r.Region != "" {
		cfg.Env = append(cfg.Env, "AWS_DEFAULT_REGION="+r.Region)
	}
	return nil
}

// AtStart is what every command does first, with the catalog opened
// once: with reconcile, the runs and drills a killed homelab left
// running are recorded as interrupted (backup.Manager.Reconcile; its
// error is returned as reconcileErr, the rest still done); with
// unfinished, it returns the unfinished sagas (UnfinishedIn). A lab whose
// catalog does not exist yet has nothing to do, and none is created.
func (a *App) AtStart(ctx context.Context, reconcile, unfinished bool) (open []OpenSaga, reconcileErr, err error) {
	if !reconcile && !unfinished {
		return nil, nil, nil
	}
	store, err := a.openExisting(ctx)
	if err != nil || store == nil {
		return nil, nil, err
	}
	defer store.Close()
	if reconcile {
		_, reconcileErr = a.NewManager(store, false).Reconcile(ctx)
	}
	if unfinished {
		open, err = a.UnfinishedIn(ctx, store)
	}
	return open, reconcileErr, err
}

// openExisting opens the catalog if it exists; (nil, nil) when it does
// not (nothing is created).
func (a *App) openExisting(ctx context.Context) (*catalog.SQLite, error) {
	if _, err := os.Stat(a.CatalogPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return a.OpenCatalog(ctx)
}

// lockWait is how long a waiting manager's restic commands wait for a
// repository lock (--retry-lock).
const lockWait = 30 * time.Minute

// NewManager returns the backup manager of the lab over store, with every
// provider (restic files, postgres, pgbackrest) and restic clients from Repo. With
// wait, busy targets are waited for and restic waits up to 30 minutes for
// a repository lock; without, both fail at once.
func (a *App) NewManager(store catalog.Store, wait bool) *backup.Manager {
	retry := time.Duration(0)
	if wait {
		retry = lockWait
	}
	return &backup.Manager{
		Lab:     a.Lab,
		Catalog: store,
		Providers: map[string]backup.Provider{
			lab.ProviderRestic:     &files.Provider{},
			lab.ProviderPostgres:   &postgres.Provider{StateDir: a.Lab.StateDir},
			lab.ProviderS3Mirror:   &s3mirror.Provider{},
			lab.ProviderPgBackRest: &pgbackrest.Provider{StateDir: a.Lab.StateDir, Now: a.now},
		},
		Repo: func(ctx context.Context, name string) (*restic.Client, error) { return a.Repo(ctx, name, retry) },
		Wait: wait,
		Now:  a.now,
		Log:  a.log(),
	}
}

// Manager opens the catalog and returns the backup manager over it (see
// NewManager); the returned func closes the catalog.
func (a *App) Manager(ctx context.Context, wait bool) (*backup.Manager, func(), error) {
	store, err := a.OpenCatalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	return a.NewManager(store, wait), func() { store.Close() }, nil
}

// Upgrader opens the catalog and returns the lab's upgrader, journalling
// into it; the returned func closes the catalog. wait is for the
// service's upgrade lock (another upgrade); the restore points and
// rollbacks always wait for busy backup targets and restic repository
// locks (the daemon's backup or prune): a rollback must not give up on a
// lock that frees in a minute.
func (a *App) Upgrader(ctx context.Context, wait bool) (*upgrade.Upgrader, func(), error) {
	m, closeFn, err := a.Manager(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	j, ok := m.Catalog.(catalog.Journal)
	if !ok {
		closeFn()
		return nil, nil, errors.New("the catalog keeps no saga journal")
	}
	u := &upgrade.Upgrader{Lab: a.Lab, Backups: m, Journal: j, Wait: wait, Now: a.Now, Log: a.log()}
	return u, closeFn, nil
}

// Certs returns the manager of the lab's CA and leaf certificates.
func (a *App) Certs() *certs.Manager {
	return &certs.Manager{Lab: a.Lab, Now: a.now, Log: a.log()}
}
