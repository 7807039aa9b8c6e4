package lab

import (
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// ProviderPgBackRest backs up a PostgreSQL cluster with pgBackRest:
// physical full/diff/incr backups, WAL archiving and point-in-time
// recovery. Its repository is pgBackRest's own (PgBackRest.Repo), not a
// restic repository: such a target names no `repository`.
const ProviderPgBackRest = "pgbackrest"

// DefaultArchiveTimeout is pgbackrest.archive_timeout when not set
// (pgBackRest's own default).
const DefaultArchiveTimeout = 60 * time.Second

// DrillThrowaway is drill.instance for a postgres target drilled in a
// throwaway cluster of its own.
const DrillThrowaway = "throwaway"

// PgBackRest is a pgbackrest target's settings:
//
//	pgbackrest:
//	  stanza: main
//	  cluster: {data_dir: /var/lib/postgresql/15/main, port: 5432,
//	            socket_dir: /var/run/postgresql, os_user: postgres}
//	  repo: {path: /srv/pgbackrest}      # or on S3: {location: offsite, prefix: pgbackrest/db}
//	  cipher_pass_env: PGBR_CIPHER     # or cipher_pass_file (repo1-cipher-type aes-256-cbc)
//	  process_max: 2
//	  archive_timeout: 60s             # pgBackRest's archive-timeout
//	  schedules: {full: "0 1 * * 0", diff: "0 1 * * 1-6", incr: "0 */4 * * *"}
//
// Paths must be absolute. Retention: keep_last is the number of full
// backups kept (pgBackRest's repo1-retention-full); the other keep_*
// rules are not pgBackRest's and are refused.
type PgBackRest struct {
	Stanza  string            `yaml:"stanza"`
	Cluster PgBackRestCluster `yaml:"cluster"`
	Repo    PgBackRestRepo    `yaml:"repo"`
	// CipherPassEnv/CipherPassFile: the repository's encryption
	// passphrase (aes-256-cbc); unset means an unencrypted repository.
	CipherPassEnv  string `yaml:"cipher_pass_env"`
	CipherPassFile string `yaml:"cipher_pass_file"`
	// ProcessMax is pgBackRest's process-max (default 1).
	ProcessMax int `yaml:"process_max"`
	// ArchiveTimeout is pgBackRest's archive-timeout: how long check and
	// a backup wait for a WAL segment to reach the repository before
	// they fail (default 60s; whole seconds at least 1s).
	ArchiveTimeout time.Duration `yaml:"archive_timeout"`
	// Schedules are cron expressions per backup type; the target's
	// `schedule` is the full one's when Schedules.Full is empty.
	Schedules PgBackRestSchedules `yaml:"schedules"`
	// Database is where the drill's SQL checks run (default postgres).
	Database string `yaml:"database"`
}

// PgBackRestCluster is the PostgreSQL cluster a pgbackrest target backs up.
type PgBackRestCluster struct {
	DataDir   string `yaml:"data_dir"`
	Port      int    `yaml:"port"`       // default 5432
	SocketDir string `yaml:"socket_dir"` // default /var/run/postgresql
	// OSUser owns the data directory and runs pgBackRest and the drill's
	// throwaway server when homelab runs as root (default postgres).
	OSUser string `yaml:"os_user"`
	// User is the database superuser pgBackRest and the checks connect as
	// over the socket (default postgres).
	User string `yaml:"user"`
	// BinDir holds pg_ctl of the cluster's major version; default
	// /usr/lib/postgresql/<major>/bin, then PATH.
	BinDir string `yaml:"bin_dir"`
}

// PgBackRestRepo is pgBackRest's repository: a local path, or a prefix
// of an S3 bucket (pgBackRest's repo1-type=s3), given as an [S3Location]
// inline or named with location:
//
//	repo: {path: /srv/pgbackrest}
//	repo: {location: offsite, prefix: pgbackrest/db}
//	repo: {endpoint: "https://s3.lab:7070", bucket: pg, ca_file: lab-ca.pem,
//	       access_key_id_env: S3_KEY, secret_access_key_file: keys/s3}
//
// pgBackRest 2.45 reaches S3 over https only: the endpoint is https://,
// and ca_file names the CA of a server whose certificate the system does
// not trust (repo1-storage-ca-file). The repository lies under the prefix
// in the bucket (repo1-path "/" + prefix; the bucket's root without one).
type PgBackRestRepo struct {
	// Path is the repository's local directory; not with S3.
	Path       string `yaml:"path"`
	S3Location `yaml:",inline"`
}

// IsS3 reports whether the repository is on S3.
func (r PgBackRestRepo) IsS3() bool { return r.S3Location.IsSet() }

// PgBackRestSchedules are cron expressions per backup type.
type PgBackRestSchedules struct {
	Full string `yaml:"full"`
	Diff string `yaml:"diff"`
	Incr string `yaml:"incr"`
}

// TypeSchedule is the schedule of one backup type of a pgbackrest
// target: Type is pgBackRest's --type (full, diff, incr).
type TypeSchedule struct {
	Type, Expr string
}

// TypeSchedules are the schedules of the backup types of a pgbackrest
// target that have one, full first: schedules.full (or, without it,
// targetSchedule, the target's schedule), schedules.diff,
// schedules.incr. It is nil when none of schedules is set: the target's
// schedule then runs the type due (see the pgbackrest provider).
func (p PgBackRest) TypeSchedules(targetSchedule string) []TypeSchedule {
	s := p.Schedules
	if s == (PgBackRestSchedules{}) {
		return nil
	}
	full := s.Full
	if full == "" {
		full = targetSchedule
	}
	var out []TypeSchedule
	for _, t := range []TypeSchedule{{"full", full}, {"diff", s.Diff}, {"incr", s.Incr}} {
		if t.Expr != "" {
			out = append(out, t)
		}
	}
	return out
}

// BackupSchedules are the cron expressions backups of b run on: the
// per-type schedules of a pgbackrest target that has them
// (TypeSchedules), or else the target's schedule; none for a target
// backed up by hand.
func (b *Backup) BackupSchedules() []string {
	if b.Provider == ProviderPgBackRest && b.PgBackRest != nil {
		if ts := b.PgBackRest.TypeSchedules(b.Schedule); ts != nil {
			out := make([]string, len(ts))
			for i, t := range ts {
				out[i] = t.Expr
			}
			return out
		}
	}
	if b.Schedule == "" {
		return nil
	}
	return []string{b.Schedule}
}

// CipherSecret is the repository passphrase reference (cipher_pass_env,
// cipher_pass_file).
func (p PgBackRest) CipherSecret() Secret {
	return Secret{Field: "pgbackrest.cipher_pass", Env: p.CipherPassEnv, File: p.CipherPassFile}
}

// setDefaults fills the cluster's defaults.
func (p *PgBackRest) setDefaults() {
	c := &p.Cluster
	if c.Port == 0 {
		c.Port = 5432
	}
	if c.SocketDir == "" {
		c.SocketDir = "/var/run/postgresql"
	}
	if c.OSUser == "" {
		c.OSUser = "postgres"
	}
	if c.User == "" {
		c.User = "postgres"
	}
	if p.ProcessMax == 0 {
		p.ProcessMax = 1
	}
	if p.ArchiveTimeout == 0 {
		p.ArchiveTimeout = DefaultArchiveTimeout
	}
	if p.Database == "" {
		p.Database = "postgres"
	}
}

func (d *decoder) validatePgBackRest(p string, b *Backup, l *Lab) {
	if b.PgBackRest == nil {
		d.at(p+".pgbackrest", "required for provider pgbackrest: stanza, cluster and repo")
		return
	}
	g := b.PgBackRest
	pp := p + ".pgbackrest"
	if g.Stanza == "" {
		d.at(pp+".stanza", "required: the pgBackRest stanza name")
	} else if !namePattern.MatchString(g.Stanza) {
		d.at(pp+".stanza", "bad stanza %q: lowercase letters, digits, _ and -", g.Stanza)
	}
	abs := func(f, v string, required bool) {
		switch {
		case v == "" && required:
			d.at(pp+"."+f, "required: an absolute path")
		case v != "" && (!filepath.IsAbs(v) || strings.ContainsAny(v, " \t\n'\"")):
			d.at(pp+"."+f, "must be an absolute path without spaces or quotes, got %q", v)
		}
	}
	abs("cluster.data_dir", g.Cluster.DataDir, true)
	abs("cluster.socket_dir", g.Cluster.SocketDir, false)
	abs("cluster.bin_dir", g.Cluster.BinDir, false)
	if g.Repo.IsS3() {
		d.validatePgBackRestS3(pp+".repo", &g.Repo, l)
	} else {
		abs("repo.path", g.Repo.Path, true)
	}
	abs("cipher_pass_file", g.CipherPassFile, false)
	if g.Cluster.Port < 0 || g.Cluster.Port > 65535 {
		d.at(pp+".cluster.port", "must be between 1 and 65535, got %d", g.Cluster.Port)
	}
	if g.ProcessMax < 0 || g.ProcessMax > 999 {
		d.at(pp+".process_max", "must be between 1 and 999, got %d", g.ProcessMax)
	}
	if t := g.ArchiveTimeout; t != 0 && (t < time.Second || t%time.Second != 0) {
		d.at(pp+".archive_timeout", "must be whole seconds, at least 1s, got %s", t)
	}
	d.exclusive(pp, false, []string{"cipher_pass_env", "cipher_pass_file"}, g.CipherPassEnv != "", g.CipherPassFile != "")
	d.checkSchedule(pp+".schedules.full", g.Schedules.Full)
	d.checkSchedule(pp+".schedules.diff", g.Schedules.Diff)
	d.checkSchedule(pp+".schedules.incr", g.Schedules.Incr)
	r := b.Retention
	d.notAllowed(p+".retention", ProviderPgBackRest, map[string]bool{
		"keep_hourly": r.KeepHourly != 0, "keep_daily": r.KeepDaily != 0, "keep_weekly": r.KeepWeekly != 0,
		"keep_monthly": r.KeepMonthly != 0, "keep_yearly": r.KeepYearly != 0, "keep_within": r.KeepWithin != "",
	})
	if b.Repository != "" {
		d.at(p+".repository", "not allowed for provider pgbackrest: its repository is pgbackrest.repo")
	}
	s := b.Source
	d.notAllowed(p+".source", ProviderPgBackRest, map[string]bool{
		"paths": len(s.Paths) > 0, "exclude": len(s.Exclude) > 0, "host": s.Host != "", "port": s.Port != 0,
		"database": s.Database != "", "user": s.User != "", "password_env": s.PasswordEnv != "",
		"password_file": s.PasswordFile != "", "sslmode": s.SSLMode != "",
	})
	g.setDefaults()
}

// validatePgBackRestS3 checks a repository on S3 at path p: an S3
// location (named or inline) on an https endpoint, and no local path.
func (d *decoder) validatePgBackRestS3(p string, r *PgBackRestRepo, l *Lab) {
	if r.Path != "" {
		d.at(p+".path", "not for a repository on S3: the place in the bucket is prefix:")
	}
	if !d.useLocation(p, &r.S3Location, l) {
		d.validateS3Location(p, r.S3Location)
	}
	if u, err := url.Parse(r.Endpoint); err == nil && u.Scheme == "http" {
		f := p + ".endpoint"
		if r.Location != "" {
			f = p + ".location"
		}
		d.at(f, "pgBackRest reaches S3 over https only, got %q: serve the endpoint over https (with ca_file naming its CA when the system does not trust it)", r.Endpoint)
	}
}
