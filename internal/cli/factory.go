package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/term"

	"homelab/internal/backup"
	"homelab/internal/backup/files"
	"homelab/internal/backup/postgres"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
)

// IOStreams are the command's standard streams. Results go to Out; notes
// and progress go to ErrOut, decorated only when it is a terminal.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// StdinTTY and StderrTTY report whether those are terminals.
	StdinTTY, StderrTTY bool
}

// SystemIO returns the process's streams.
func SystemIO() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		StdinTTY: term.IsTerminal(int(os.Stdin.Fd())), StderrTTY: term.IsTerminal(int(os.Stderr.Fd()))}
}

// Factory carries what every command needs; flags of the root command
// fill it.
type Factory struct {
	IO      *IOStreams
	LabFlag string
	JSON    bool
	Verbose bool
	Now     func() time.Time

	once sync.Once
	lab  *lab.Lab
	err  error
	// log, when set, replaces the default logger (homelab serve logs
	// JSON off a terminal).
	log *slog.Logger
}

// Logger returns the logger for notes on stderr.
func (f *Factory) Logger() *slog.Logger {
	if f.log != nil {
		return f.log
	}
	level := slog.LevelWarn
	if f.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(f.IO.ErrOut, &slog.HandlerOptions{Level: level}))
}

// Lab loads the lab file once (--lab, ./lab.yaml, $HOMELAB_LAB).
func (f *Factory) Lab() (*lab.Lab, error) {
	f.once.Do(func() { f.lab, f.err = lab.Load(lab.Find(f.LabFlag)) })
	return f.lab, f.err
}

// Repo opens the restic client of a repository of l.
func (f *Factory) Repo(ctx context.Context, l *lab.Lab, name string, retryLock time.Duration) (*restic.Client, error) {
	r, ok := l.Repositories[name]
	if !ok {
		return nil, fmt.Errorf("unknown repository %q", name)
	}
	// A lock left by a restic killed on this host (with its homelab) is
	// removed when it blocks a command; other locks are left to `homelab
	// repo unlock`.
	cfg := restic.Config{Repository: r.URL, PasswordFile: r.PasswordFile, Logger: f.Logger(), RetryLock: retryLock, RemoveStaleLocks: true}
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
	return restic.New(ctx, cfg)
}

// Manager opens the catalog and returns a backup manager for the lab; the
// returned func closes the catalog.
func (f *Factory) Manager(ctx context.Context, wait bool) (*backup.Manager, func(), error) {
	l, err := f.Lab()
	if err != nil {
		return nil, nil, err
	}
	store, err := catalog.Open(ctx, filepath.Join(l.StateDir, "catalog.db"))
	if err != nil {
		return nil, nil, err
	}
	m := f.newManager(l, store, wait, f.Logger())
	return m, func() { store.Close() }, nil
}

// newManager returns the backup manager of l over store; with wait, busy
// targets and repository locks are waited for (30 minutes for restic).
func (f *Factory) newManager(l *lab.Lab, store catalog.Store, wait bool, log *slog.Logger) *backup.Manager {
	retry := time.Duration(0)
	if wait {
		retry = 30 * time.Minute
	}
	return &backup.Manager{
		Lab:     l,
		Catalog: store,
		Providers: map[string]backup.Provider{
			lab.ProviderRestic:   &files.Provider{},
			lab.ProviderPostgres: &postgres.Provider{},
		},
		Repo: func(ctx context.Context, name string) (*restic.Client, error) { return f.Repo(ctx, l, name, retry) },
		Wait: wait,
		Now:  f.now,
		Log:  log,
	}
}

// reconcileRuns records as interrupted the runs a killed homelab left
// running in the catalog (backup.Manager.Reconcile), when the lab and its
// catalog exist; errors are logged: the command itself meets them.
func (f *Factory) reconcileRuns(ctx context.Context) {
	l, err := f.Lab()
	if err != nil {
		return
	}
	path := filepath.Join(l.StateDir, "catalog.db")
	if _, err := os.Stat(path); err != nil {
		return
	}
	store, err := catalog.Open(ctx, path)
	if err != nil {
		return
	}
	defer store.Close()
	m := &backup.Manager{Lab: l, Catalog: store, Now: f.now, Log: f.Logger()}
	if _, err := m.Reconcile(ctx); err != nil {
		f.Logger().Warn("reconcile the catalog's runs", "err", err)
	}
}

func (f *Factory) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
