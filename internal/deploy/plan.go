package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/haproxy"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/migrations"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/version"
)

// Kind is the saga kind of deploys, rollbacks, redeploys and cleanups
// (so that every unfinished one is finished by homelab deploy --resume).
const Kind = "deploy"

// Store is the catalog a Deployer journals and records into.
type Store interface {
	catalog.Journal
	catalog.Deploys
	AddEvent(ctx context.Context, e catalog.Event) error
}

// Deployer deploys and rolls back the blue/green services of a lab.
type Deployer struct {
	Lab     *lab.Lab
	Catalog Store
	// Wait makes a busy service (another deploy or upgrade running) wait
	// instead of failing.
	Wait bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Log gets what is only worth logging; nil discards.
	Log *slog.Logger
	// Progress is the saga runner's (saga.Runner.Progress).
	Progress func(id string, st saga.StepRecord)
	// Who and Host are recorded with each deploy; empty: the user and
	// host name of this process.
	Who, Host string
	// Poll is the interval of the health gate and the public URL checks;
	// 0 is 250ms.
	Poll time.Duration
}

func (d *Deployer) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Deployer) poll() time.Duration {
	if d.Poll > 0 {
		return d.Poll
	}
	return 250 * time.Millisecond
}

func (d *Deployer) runner() *saga.Runner {
	return &saga.Runner{Journal: d.Catalog, StateDir: d.Lab.StateDir, Wait: d.Wait, Now: d.Now, Log: d.Log, Progress: d.Progress}
}

// Side is a color and the version it runs; an empty Color is none.
type Side struct {
	Color   string `json:"color"`
	Version string `json:"version"`
}

func (s Side) String() string {
	if s.Color == "" {
		return "none"
	}
	return s.Color + " (" + s.Version + ")"
}

// Plan is what Run does: traffic goes from From to To, after To is
// started on its version (Start) or checked alive (a fast rollback).
type Plan struct {
	Service string             `json:"service"`
	Kind    catalog.DeployKind `json:"kind"`
	// From serves now (Color "" before the first deploy).
	From Side `json:"from"`
	// To serves after.
	To Side `json:"to"`
	// Start: To.Color is started on To.Version (deploy, redeploy); else
	// it already runs it (fast rollback).
	Start bool `json:"start"`
	// Replaces is what To.Color ran, kept for a fast rollback, that a
	// deploy replaces ("" when it was stopped).
	Replaces string `json:"replaces,omitempty"`
	// Adopted: the catalog had no record; From was read from HAProxy's
	// configuration (and the color's version command).
	Adopted bool `json:"adopted,omitempty"`
	// Contract are the contract statements of the migrations between the
	// two versions (allowed by AllowContract for a deploy; a warning for a
	// redeploy).
	Contract      []migrations.Statement `json:"contract,omitempty"`
	AllowContract bool                   `json:"allow_contract,omitempty"`
	// Reason is the operator's line of why (required for rollbacks and
	// for AllowContract).
	Reason   string   `json:"reason,omitempty"`
	Who      string   `json:"who"`
	Host     string   `json:"host"`
	Warnings []string `json:"warnings,omitempty"`
	// HealthyWithin bounds the health gate and the public URL check.
	HealthyWithin time.Duration `json:"healthy_within"`
}

// PlanError is a plan that cannot be made from the arguments or the lab
// file (an unknown service, one that is not blue/green, a bad version):
// bad usage.
type PlanError struct{ Err error }

func (e *PlanError) Error() string { return e.Err.Error() }
func (e *PlanError) Unwrap() error { return e.Err }

// RefusedError is a plan refused by a pre-check: nothing was changed.
type RefusedError struct {
	Service string
	Reason  string
}

func (e *RefusedError) Error() string { return fmt.Sprintf("%s: refused: %s", e.Service, e.Reason) }

// ContractError is a deploy refused because the release's migrations
// contract the schema the serving version uses.
type ContractError struct {
	Service    string
	Statements []migrations.Statement
}

func (e *ContractError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: refused: the release's migrations contract the schema the serving version uses (%d statement(s)); split them into a later release, or pass --allow-contract --reason \"...\"", e.Service, len(e.Statements))
	for _, s := range e.Statements {
		fmt.Fprintf(&b, "\n  %s:%d: %s", s.File, s.Line, s.Why)
	}
	return b.String()
}

// service returns the blue/green section of name.
func (d *Deployer) service(name string) (*lab.Deploy, error) {
	s := d.Lab.Services[name]
	switch {
	case s == nil:
		return nil, &PlanError{fmt.Errorf("unknown service %q", name)}
	case s.Deploy == nil:
		return nil, &PlanError{fmt.Errorf("service %s is not blue/green: it has no deploy section (use homelab upgrade)", name)}
	}
	return s.Deploy, nil
}

// State is a blue/green service as the catalog and HAProxy say.
type State struct {
	// Active serves (Color "" before the first deploy).
	Active Side
	// Kept is the previous color, kept for a fast rollback (Color "" when
	// none is).
	Kept Side
	// Adopted: no record yet; Active was read from HAProxy's
	// configuration.
	Adopted bool
	// Last is the newest record (zero ID if none).
	Last catalog.Deploy
}

// State reads service's state: the newest deploy record, checked against
// the live HAProxy configuration (they must name the same color; an error
// says how they differ), or, with no record, the configuration's server
// and that color's version.
func (d *Deployer) State(ctx context.Context, service string) (State, error) {
	return readState(ctx, d.Lab, d.Catalog, service)
}

func readState(ctx context.Context, l *lab.Lab, deploys catalog.Deploys, service string) (State, error) {
	dp, err := (&Deployer{Lab: l}).service(service)
	if err != nil {
		return State{}, err
	}
	cfg, err := os.ReadFile(dp.HAProxy.Config)
	if err != nil {
		return State{}, fmt.Errorf("read HAProxy's configuration: %w", err)
	}
	live, err := haproxy.Active(cfg, dp.HAProxy.Backend)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", dp.HAProxy.Config, err)
	}
	hist, err := deploys.DeployHistory(ctx, service, 1)
	if err != nil {
		return State{}, err
	}
	if len(hist) > 0 {
		h := hist[0]
		if live != h.ToColor {
			return State{}, &RefusedError{Service: service, Reason: fmt.Sprintf("HAProxy's configuration %s serves %q from backend %s but the catalog says %s serves (since %s): put the configuration back, or resume the unfinished deploy",
				dp.HAProxy.Config, live, dp.HAProxy.Backend, h.ToColor, h.Time.Format(time.RFC3339))}
		}
		st := State{Active: Side{h.ToColor, h.ToVersion}, Last: h}
		if h.Kind != catalog.DeployCleanup {
			st.Kept = Side{h.FromColor, h.FromVersion}
		}
		return st, nil
	}
	switch live {
	case "":
		return State{}, nil
	case lab.Blue, lab.Green:
	default:
		return State{}, &RefusedError{Service: service, Reason: fmt.Sprintf("backend %s of %s serves %q, which is not a color (blue or green)", dp.HAProxy.Backend, dp.HAProxy.Config, live)}
	}
	v, err := colorVersion(ctx, service, dp, live)
	if err != nil {
		return State{}, err
	}
	return State{Active: Side{live, v}, Adopted: true}, nil
}

// colorVersion asks a color's runtime which version it is set to run.
func colorVersion(ctx context.Context, service string, dp *lab.Deploy, color string) (string, error) {
	_, ver, err := colorRuntime(service, dp, color)
	if err != nil {
		return "", err
	}
	out, err := ver.Version(ctx)
	if err != nil {
		return "", fmt.Errorf("the version of the %s color: %w", color, err)
	}
	for _, tok := range strings.Fields(out) {
		if _, err := version.Parse(tok); err == nil {
			return tok, nil
		}
	}
	return strings.TrimSpace(out), nil
}

// colorRuntime returns the runtime of a color and its Versioner.
func colorRuntime(service string, dp *lab.Deploy, color string) (runtime.Runtime, runtime.Versioner, error) {
	c := dp.Colors.Color(color)
	if c == nil {
		return nil, nil, fmt.Errorf("service %s has no color %q", service, color)
	}
	rt, err := runtime.New(c.Service(service, color), runtime.Options{})
	if err != nil {
		return nil, nil, err
	}
	ver, err := runtime.AsVersioner(rt)
	if err != nil {
		return nil, nil, fmt.Errorf("the %s color of %s: %w", color, service, err)
	}
	return rt, ver, nil
}

// Other is the other color.
func Other(color string) string {
	if color == lab.Blue {
		return lab.Green
	}
	return lab.Blue
}

// Options are the operator's choices for a deploy.
type Options struct {
	// AllowContract lets a release with contract migrations deploy; it
	// needs a Reason, recorded with the deploy.
	AllowContract bool
	Reason        string
}

func (d *Deployer) identity(p *Plan) {
	p.Who, p.Host = d.Who, d.Host
	if p.Who == "" {
		if u, err := user.Current(); err == nil {
			p.Who = u.Username
		}
		if s := os.Getenv("SUDO_USER"); s != "" {
			p.Who = s
		}
	}
	if p.Host == "" {
		p.Host, _ = os.Hostname()
	}
}

// PlanDeploy plans the deploy of service at version to: the idle color
// is started on it, gated, and traffic flipped to it. It refuses
// (*RefusedError) an idle color that runs without a deploy record keeping
// it, a State that disagrees with HAProxy, and (*ContractError) a
// release whose migrations since the serving version contract the schema
// unless o.AllowContract; version.ErrAlreadyAt when to already serves.
func (d *Deployer) PlanDeploy(ctx context.Context, service, to string, o Options) (Plan, error) {
	return d.plan(ctx, service, to, catalog.DeployNew, o)
}

func (d *Deployer) plan(ctx context.Context, service, to string, kind catalog.DeployKind, o Options) (Plan, error) {
	dp, err := d.service(service)
	if err != nil {
		return Plan{}, err
	}
	tv, err := version.Parse(to)
	if err != nil {
		return Plan{}, &PlanError{fmt.Errorf("version %q: %w", to, err)}
	}
	if o.AllowContract && strings.TrimSpace(o.Reason) == "" {
		return Plan{}, &PlanError{errors.New("--allow-contract needs --reason \"...\": the line of why is recorded with the deploy")}
	}
	st, err := d.State(ctx, service)
	if err != nil {
		return Plan{}, err
	}
	if st.Active.Color != "" && st.Active.Version == to {
		return Plan{}, fmt.Errorf("%s serves %s from %s: %w", service, to, st.Active.Color, version.ErrAlreadyAt)
	}
	p := Plan{Service: service, Kind: kind, From: st.Active, Start: true, Adopted: st.Adopted,
		AllowContract: o.AllowContract, Reason: strings.TrimSpace(o.Reason), HealthyWithin: dp.HealthyWithin}
	p.To = Side{lab.Blue, to}
	if st.Active.Color != "" {
		p.To.Color = Other(st.Active.Color)
	}
	rt, _, err := colorRuntime(service, dp, p.To.Color)
	if err != nil {
		return Plan{}, &PlanError{err}
	}
	rs, err := rt.Status(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("the idle color %s: %w", p.To.Color, err)
	}
	if rs.State != runtime.Stopped {
		if st.Kept.Color != p.To.Color {
			return Plan{}, &RefusedError{Service: service, Reason: fmt.Sprintf("the idle color %s is %s, but no deploy left it there for a rollback: stop it (homelab deploy --cleanup %s) or find out what runs it",
				p.To.Color, rs.State, service)}
		}
		p.Replaces = st.Kept.Version
	}
	if dp.Migrations != "" {
		var since version.Version
		if st.Active.Version != "" {
			since, _ = version.Parse(st.Active.Version)
		}
		switch {
		case since.IsZero() || version.Compare(tv, since) > 0:
			rels, err := migrations.Check(dp.Migrations, since, tv)
			if err != nil {
				return Plan{}, err
			}
			p.Contract = migrations.Contracts(rels)
		default: // going back: contract migrations after tv ran already
			rels, err := migrations.Check(dp.Migrations, tv, since)
			if err != nil {
				return Plan{}, err
			}
			p.Contract = migrations.Contracts(rels)
			if len(p.Contract) > 0 {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%d contract migration(s) newer than %s ran; %s may not work on the schema they left (first: %s:%d: %s)",
					len(p.Contract), to, to, p.Contract[0].File, p.Contract[0].Line, p.Contract[0].Why))
			}
		}
	}
	d.identity(&p)
	if kind == catalog.DeployNew && len(p.Contract) > 0 && !o.AllowContract {
		return p, &ContractError{Service: service, Statements: p.Contract}
	}
	return p, nil
}

// RollbackOptions are the operator's choices for a rollback.
type RollbackOptions struct {
	// Redeploy starts Version (default: the previous version in the
	// history) on the idle color instead of flipping to the kept one.
	Redeploy bool
	Version  string
	// Reason is the incident note; required.
	Reason string
}

// PlanRollback plans a rollback of service: a fast flip to the kept
// previous color, after checking it still runs and passes its probe
// (refused with the reason otherwise), or with o.Redeploy a deploy of the
// previous version (o.Version, default the previous one in the history)
// on the idle color, which warns of contract migrations newer than it.
func (d *Deployer) PlanRollback(ctx context.Context, service string, o RollbackOptions) (Plan, error) {
	dp, err := d.service(service)
	if err != nil {
		return Plan{}, err
	}
	if strings.TrimSpace(o.Reason) == "" {
		return Plan{}, &PlanError{errors.New("a rollback needs a reason (--reason \"...\"): it is the incident record")}
	}
	st, err := d.State(ctx, service)
	if err != nil {
		return Plan{}, err
	}
	if st.Active.Color == "" {
		return Plan{}, &RefusedError{Service: service, Reason: "nothing serves yet: there is nothing to roll back"}
	}
	if o.Redeploy {
		v := o.Version
		if v == "" {
			if v, err = d.previousVersion(ctx, service, st); err != nil {
				return Plan{}, err
			}
		}
		return d.plan(ctx, service, v, catalog.DeployRedeploy, Options{Reason: o.Reason})
	}
	if st.Kept.Color == "" {
		return Plan{}, &RefusedError{Service: service, Reason: "no previous color is kept for a fast rollback (the last change was a cleanup, or the first deploy): use --redeploy [VERSION]"}
	}
	if err := d.alive(ctx, service, dp, st.Kept); err != nil {
		return Plan{}, &RefusedError{Service: service, Reason: fmt.Sprintf("the previous color %s is gone: %v; use --redeploy to start %s again", st.Kept, err, st.Kept.Version)}
	}
	p := Plan{Service: service, Kind: catalog.DeployRollback, From: st.Active, To: st.Kept,
		Reason: strings.TrimSpace(o.Reason), HealthyWithin: dp.HealthyWithin}
	d.identity(&p)
	return p, nil
}

// previousVersion is the version that served before the active one: the
// kept color's, else the newest record's version that differs.
func (d *Deployer) previousVersion(ctx context.Context, service string, st State) (string, error) {
	if st.Last.FromVersion != "" && st.Last.FromVersion != st.Active.Version {
		return st.Last.FromVersion, nil
	}
	hist, err := d.Catalog.DeployHistory(ctx, service, 0)
	if err != nil {
		return "", err
	}
	for _, h := range hist {
		for _, v := range []string{h.ToVersion, h.FromVersion} {
			if v != "" && v != st.Active.Version {
				return v, nil
			}
		}
	}
	return "", &RefusedError{Service: service, Reason: "the history has no previous version: give one (--redeploy VERSION)"}
}

// alive checks that a color runs and passes its probe now.
func (d *Deployer) alive(ctx context.Context, service string, dp *lab.Deploy, s Side) error {
	rt, _, err := colorRuntime(service, dp, s.Color)
	if err != nil {
		return err
	}
	rs, err := rt.Status(ctx)
	if err != nil {
		return err
	}
	if rs.State != runtime.Running {
		return fmt.Errorf("its runtime says %s", rs.State)
	}
	r := health.Probe(ctx, dp.Colors.Color(s.Color).Service(service, s.Color), health.Options{})
	if !r.Healthy {
		return fmt.Errorf("its health probe fails: %s", r.Detail)
	}
	return nil
}

// CheckMigrations classifies service's migrations of the releases after
// since (empty: after the serving version, or all of them before the
// first deploy). It returns the since it used ("" for all) and the
// releases; a service without a migrations directory is a *PlanError.
func (d *Deployer) CheckMigrations(ctx context.Context, service, since string) (string, []migrations.Release, error) {
	dp, err := d.service(service)
	if err != nil {
		return "", nil, err
	}
	if dp.Migrations == "" {
		return "", nil, &PlanError{fmt.Errorf("service %s has no migrations directory (deploy.migrations)", service)}
	}
	if since == "" {
		st, err := d.State(ctx, service)
		if err != nil {
			return "", nil, err
		}
		since = st.Active.Version
	}
	var sv version.Version
	if since != "" {
		if sv, err = version.Parse(since); err != nil {
			return "", nil, &PlanError{fmt.Errorf("--since %q: %w", since, err)}
		}
	}
	rels, err := migrations.Check(dp.Migrations, sv, version.Version{})
	return since, rels, err
}
