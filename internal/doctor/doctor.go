package doctor

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
)

// Check names, the values of Finding.Check. They are part of doctor's
// JSON output: stable.
const (
	CheckCollation    = "collation_version"  // datcollversion or a collation's version differs from the library's
	CheckStatistics   = "missing_statistics" // tables with data and no planner statistics (never analyzed)
	CheckExtension    = "extension_update"   // an installed extension older than its available default version
	CheckInvalidIndex = "invalid_index"      // pg_index.indisvalid is false (a failed CREATE INDEX CONCURRENTLY)
	CheckMigrations   = "pending_migrations" // a service's migrations status command says some are pending
	CheckStaleLock    = "stale_lock"         // a restic lock whose holder is gone
	CheckSingleKey    = "single_key"         // a repository with one key: no recovery key
	CheckUnfinished   = "unfinished_saga"    // an upgrade, deploy or lab snapshot no process works on
	CheckDrill        = "drill_overdue"      // no passed drill since the drill schedule's last slot (plus grace)
	CheckCertificate  = "certificate"        // a certificate missing, expired, in its rotation window or with issues
	CheckLeftState    = "left_pgbackrest"    // the pgBackRest configuration (with secrets) of a target no longer in the lab
	CheckUnchecked    = "unchecked"          // a check could not run (server unreachable, secret unset, command failed)
)

// Checks lists the check names in the order Run reports them.
var Checks = []string{CheckCollation, CheckStatistics, CheckExtension, CheckInvalidIndex, CheckMigrations,
	CheckStaleLock, CheckSingleKey, CheckUnfinished, CheckDrill, CheckCertificate, CheckLeftState, CheckUnchecked}

// FixCommand is the Fix of the findings that Fix applies.
const FixCommand = "homelab doctor --fix"

// Finding is one thing wrong with the lab.
type Finding struct {
	// Check is one of the Check* names.
	Check string `json:"check"`
	// Subject is what it is about, in words with its names: "postgres
	// 127.0.0.1:5432 database app", "repository local", "service web",
	// "target db", "certificate web", "saga 01J...".
	Subject string `json:"subject"`
	// Problem says what is wrong, in one line.
	Problem string `json:"problem"`
	// Fix is the command that fixes it: FixCommand for Auto findings,
	// else the homelab (or other) command to run; "" when there is none
	// to name (an unreachable server).
	Fix string `json:"fix"`
	// SQL are the statements Fix runs, in order, for SQL fixes; for a
	// finding that is not Auto, the statements to run as Fix says (a
	// missing_statistics finding of tables the role may not analyze).
	SQL []string `json:"sql,omitempty"`
	// Auto is true for the safe fixes that Doctor.Fix applies.
	Auto bool `json:"auto"`

	apply func(ctx context.Context) error
}

// Report is what Run found.
type Report struct {
	// Findings are ordered by check (Checks), then as found.
	Findings []Finding
	// Checked lists what was checked, in words ("postgres
	// 127.0.0.1:5432 (3 databases)", "repository local", "service web",
	// "catalog", "certificates").
	Checked []string
}

// Doctor checks one lab.
type Doctor struct {
	Lab *lab.Lab
	// Repo opens a repository of the lab by name (app.Repo); nil skips
	// the repository checks.
	Repo func(ctx context.Context, name string) (*restic.Client, error)
	// Catalog is the lab's catalog (drills, sagas); nil (no catalog yet)
	// skips the drill and saga checks.
	Catalog catalog.Store
	// Now is the clock (default time.Now); Hostname is this host's name
	// as restic records it in locks (default os.Hostname).
	Now      func() time.Time
	Hostname string
	Log      *slog.Logger
}

func (d *Doctor) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Doctor) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// part is what one group of checks (a server, a repository, ...) found.
type part struct {
	checked  string
	findings []Finding
}

// Run runs every check and returns what it found. The groups (each
// PostgreSQL server, each repository, each service's migrations, the
// catalog, the certificates) run at the same time; a group that cannot
// run is one CheckUnchecked finding. It changes nothing.
func (d *Doctor) Run(ctx context.Context) Report {
	var groups []func(context.Context) part
	for _, s := range Servers(d.Lab) {
		groups = append(groups, func(ctx context.Context) part { return d.checkServer(ctx, s) })
	}
	if d.Repo != nil {
		for _, name := range sortedKeys(d.Lab.Repositories) {
			groups = append(groups, func(ctx context.Context) part { return d.checkRepository(ctx, name) })
		}
	}
	for _, name := range sortedKeys(d.Lab.Services) {
		if s := d.Lab.Services[name]; s.Migrations != nil {
			groups = append(groups, func(ctx context.Context) part { return d.checkMigrations(ctx, name, s.Migrations) })
		}
	}
	if d.Catalog != nil {
		groups = append(groups, d.checkCatalog)
	}
	groups = append(groups, d.checkCerts, d.checkLeftState)

	parts := make([]part, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { parts[i] = g(ctx) })
	}
	wg.Wait()
	var r Report
	for _, c := range Checks {
		for _, p := range parts {
			for _, f := range p.findings {
				if f.Check == c {
					r.Findings = append(r.Findings, f)
				}
			}
		}
	}
	for _, p := range parts {
		if p.checked != "" {
			r.Checked = append(r.Checked, p.checked)
		}
	}
	return r
}

// Fix applies f's fix (only Auto findings have one); an error says why
// it failed, with the statement or command that did.
func (d *Doctor) Fix(ctx context.Context, f Finding) error {
	if !f.Auto || f.apply == nil {
		return errNotAuto
	}
	return f.apply(ctx)
}

// unchecked is the finding of a group that could not run.
func unchecked(subject string, err error) Finding {
	return Finding{Check: CheckUnchecked, Subject: subject, Problem: "could not check: " + err.Error()}
}

func hostname(h string) string {
	if h != "" {
		return h
	}
	h, _ = os.Hostname()
	return h
}
