package backup

import (
	"context"
	"fmt"

	"homelab/internal/catalog"
	"homelab/internal/execx"
)

// Setupper is a provider whose targets are set up before their first
// backup (pgbackrest: stanza-create, then check that WAL reaches the
// repository). Setting up again changes nothing that is right already.
type Setupper interface {
	Setup(ctx context.Context, t Target) error
}

// RepoVerifier is a provider whose targets keep their own repository
// (pgbackrest): VerifyRepository checks it whole (pgbackrest verify).
type RepoVerifier interface {
	VerifyRepository(ctx context.Context, t Target) error
}

// Setup sets up target name under its lock; a provider that needs no
// set-up is an error saying so.
func (m *Manager) Setup(ctx context.Context, name string) error {
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return err
	}
	s, ok := p.(Setupper)
	if !ok {
		return fmt.Errorf("target %s: provider %s needs no set-up (its repository is set up by homelab repo init)", name, t.Spec.Provider)
	}
	release, err := m.lockTarget(ctx, name)
	if err != nil {
		return err
	}
	defer release()
	return s.Setup(ctx, t)
}

// TargetRepository is the catalog's repository name of a target that
// keeps its own repository: "pgbackrest:<target>".
func TargetRepository(provider, target string) string { return provider + ":" + target }

// CheckTarget verifies the own repository of target name (RepoVerifier)
// and records the run as a check of TargetRepository, like Check.
func (m *Manager) CheckTarget(ctx context.Context, name string) CheckReport {
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return CheckReport{Repository: name, Err: err}
	}
	repo := TargetRepository(t.Spec.Provider, name)
	rep := CheckReport{Repository: repo}
	v, ok := p.(RepoVerifier)
	if !ok {
		rep.Err = fmt.Errorf("target %s: provider %s keeps no repository of its own", name, t.Spec.Provider)
		return rep
	}
	runID := NewRunID(m.now())
	ctx = execx.WithMark(ctx, RunEnv+"="+runID)
	run := catalog.Run{RunID: runID, Kind: catalog.KindCheck, Target: repo, Repository: repo, Provider: t.Spec.Provider, Start: m.now().UTC()}
	rep.Run, rep.Err = m.recordCheck(ctx, run, func(ctx context.Context) error { return v.VerifyRepository(ctx, t) })
	return rep
}
