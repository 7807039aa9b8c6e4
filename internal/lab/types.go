package lab

import (
	"strings"
	"time"

	"homelab/internal/notify"
)

// Lab is a loaded, defaulted and validated lab file. It is used read-only
// after Load returns.
type Lab struct {
	// Path is the file the lab was loaded from (absolute).
	Path string `yaml:"-"`
	// Name names the lab (shown on status). Default: the file's directory name.
	Name string `yaml:"name"`
	// StateDir holds catalog.db, locks and journals. Relative paths are
	// resolved against the lab file's directory. Default: ".homelab" next
	// to the lab file.
	StateDir     string                 `yaml:"state_dir"`
	Repositories map[string]*Repository `yaml:"repositories"`
	Services     map[string]*Service    `yaml:"services"`
	Backups      map[string]*Backup     `yaml:"backups"`
	// S3Locations are named S3 places (endpoint, bucket, prefix, ca_file,
	// keys) that s3-mirror sources and destinations may name with
	// `location:` instead of repeating them.
	S3Locations map[string]*S3Location `yaml:"s3_locations"`
	// Notify lists where `homelab serve` sends failure, overdue and
	// recovery notifications.
	Notify []*Notify `yaml:"notify"`
	// Serve configures the daemon (`homelab serve`).
	Serve Serve `yaml:"serve"`
	// Certs is the local CA and the leaf certificates homelab issues and
	// rotates (see certs.go).
	Certs Certs `yaml:"certs"`
	// Hosts configures the host section of status and the daemon's
	// samples of it (hosts.go).
	Hosts Hosts `yaml:"hosts"`
	// Alerts names the Alertmanager status shows and homelab pushes to
	// (alerts.go).
	Alerts Alerts `yaml:"alerts"`
	// Energy measures the host's energy and prices it (energy.go); nil
	// without an energy section.
	Energy *Energy `yaml:"energy"`
}

// NotifyEvents are the values Notify.On accepts: the event kinds of
// internal/notify.
var NotifyEvents = notify.Kinds

// Notify is one notification channel: a shoutrrr URL
// (https://shoutrrr.nickfedor.com: ntfy://, gotify://, slack://,
// discord://, smtp://, generic+https://...). URLs often hold tokens, so
// they can come from the environment (URLEnv) or a file (URLFile)
// instead of the lab file.
type Notify struct {
	URL     string `yaml:"url"`
	URLEnv  string `yaml:"url_env"`
	URLFile string `yaml:"url_file"`
	// On lists the events sent (NotifyEvents); empty means all.
	On []string `yaml:"on"`
	// Title and Body are optional text/template texts over notify.Event.
	Title string `yaml:"title"`
	Body  string `yaml:"body"`
}

// Serve configures the daemon.
type Serve struct {
	// Listen is the HTTP address of the status page, API and metrics.
	// Default 127.0.0.1:8470. A non-loopback address needs a token.
	Listen string `yaml:"listen"`
	// TokenEnv or TokenFile give the bearer token that HTTP clients must
	// send (Authorization: Bearer, or Basic with the token as password).
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// Concurrency is how many repositories may have a job running at once
	// (jobs on one repository always run one at a time). Default 2.
	Concurrency int `yaml:"concurrency"`
	// StaleLockAge is the age after which a restic lock whose holder is
	// gone is removed (restic refreshes live locks every 5 minutes).
	// Default 30m, the age restic itself calls stale.
	StaleLockAge time.Duration `yaml:"stale_lock_age"`
	// ShutdownTimeout bounds how long SIGTERM waits for running jobs to
	// stop after interrupting them. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// PruneTimeout bounds the prune that follows a scheduled backup.
	// Default 1h.
	PruneTimeout time.Duration `yaml:"prune_timeout"`
	// Refresh is how often the status page reloads itself. Default 30s.
	Refresh time.Duration `yaml:"refresh"`
}

// Repository is a restic repository.
type Repository struct {
	Name string `yaml:"-"`
	// URL is any restic repository URL (a local path, s3:, sftp:, rest:, ...).
	// A relative local path is resolved against the lab file's directory.
	URL string `yaml:"url"`
	// PasswordFile is passed to restic as RESTIC_PASSWORD_FILE. Relative
	// paths resolve against the lab file's directory.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable of homelab's own process
	// whose value is passed to restic as RESTIC_PASSWORD.
	PasswordEnv string `yaml:"password_env"`
	// Password is never allowed: present only so validation can name it.
	Password string `yaml:"password"`
	// Env holds extra non-secret environment for restic (for example
	// AWS_DEFAULT_REGION). Values naming secrets must use EnvFrom.
	Env map[string]string `yaml:"env"`
	// Check schedules `restic check` of the repository under serve.
	Check RepoCheck `yaml:"check"`
	// EnvFrom maps a variable restic needs to the variable of homelab's
	// own environment that holds it (AWS_SECRET_ACCESS_KEY: MY_S3_SECRET).
	EnvFrom map[string]string `yaml:"env_from"`
	// S3Credentials are the keys of a repository on S3 (url: s3:...),
	// inlined: access_key_id_env/_file, secret_access_key_env/_file and
	// region. They reach restic as AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION in its environment
	// (app.Repo). Only on s3: URLs; both keys or neither.
	S3Credentials `yaml:",inline"`
}

// IsS3 reports whether the repository is on S3 (restic's s3: URLs).
func (r *Repository) IsS3() bool { return strings.HasPrefix(r.URL, "s3:") }

// RepoCheck is a repository's scheduled integrity check.
type RepoCheck struct {
	// Schedule is a cron expression (see ParseSchedule); empty: never.
	Schedule string `yaml:"schedule"`
	// ReadDataSubset is restic check's --read-data-subset (e.g. "5%",
	// "1/10", "500M"); empty checks the structure only.
	ReadDataSubset string `yaml:"read_data_subset"`
	// Timeout bounds a check. Default 6h.
	Timeout time.Duration `yaml:"timeout"`
	// Jitter delays each scheduled check by up to this much. Default 0.
	Jitter time.Duration `yaml:"jitter"`
}

// Provider names a backup provider.
const (
	ProviderRestic   = "restic"
	ProviderPostgres = "postgres"
	// ProviderS3Mirror copies a bucket into timestamped prefixes of
	// another (internal/backup/s3mirror); it uses no restic repository.
	ProviderS3Mirror = "s3-mirror"
)

// Backup is one backup target.
type Backup struct {
	Name     string `yaml:"-"`
	Provider string `yaml:"provider"`
	// Repository names the restic repository of restic and postgres
	// targets; s3-mirror targets have none (they store into Destination).
	Repository string `yaml:"repository"`
	Source     Source `yaml:"source"`
	// Destination is where an s3-mirror target's snapshots go:
	// <destination.prefix>/<target>/<UTC timestamp>/ in its bucket.
	Destination S3Location `yaml:"destination"`
	Schedule    string     `yaml:"schedule"`
	Retention   Retention  `yaml:"retention"`
	Drill       Drill      `yaml:"drill"`
	Hooks       Hooks      `yaml:"hooks"`
	// Stop names services stopped for a consistent copy: stopped in
	// order before the before hooks, and started again in reverse order
	// after the backup, whatever its outcome, except those that were not
	// running when the backup began.
	Stop []string `yaml:"stop"`
	// Tags are extra restic tags added to every snapshot of the target.
	Tags []string `yaml:"tags"`
	// Timeout bounds a scheduled backup run (homelab serve). Default 6h.
	Timeout time.Duration `yaml:"timeout"`
	// Jitter delays each scheduled backup by up to this much, so targets
	// on one slot do not all start at once. Default 0.
	Jitter time.Duration `yaml:"jitter"`
	// Heartbeat is pinged (HTTP GET) after every successful backup: a
	// dead-man's switch such as healthchecks.io.
	Heartbeat Heartbeat `yaml:"heartbeat"`
	// PgBackRest is a pgbackrest target's stanza, cluster and repository.
	PgBackRest *PgBackRest `yaml:"pgbackrest"`
}

// Heartbeat is a ping URL, given inline or by an environment variable.
type Heartbeat struct {
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
}

// Source is the provider-specific source. restic uses Paths and Exclude;
// postgres uses the connection fields; s3-mirror the S3Location fields
// (endpoint, bucket, prefix, ca_file and the keys).
type Source struct {
	S3Location `yaml:",inline"`

	Paths   []string `yaml:"paths"`
	Exclude []string `yaml:"exclude"`

	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	Database     string `yaml:"database"`
	User         string `yaml:"user"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"password"` // never allowed: Load rejects it
	// SSLMode is libpq's sslmode (disable, prefer, require, verify-full...).
	SSLMode string `yaml:"sslmode"`
}

// Retention is restic's forget policy (restic forget --keep-*).
type Retention struct {
	KeepLast    int    `yaml:"keep_last"`
	KeepHourly  int    `yaml:"keep_hourly"`
	KeepDaily   int    `yaml:"keep_daily"`
	KeepWeekly  int    `yaml:"keep_weekly"`
	KeepMonthly int    `yaml:"keep_monthly"`
	KeepYearly  int    `yaml:"keep_yearly"`
	KeepWithin  string `yaml:"keep_within"` // restic duration, e.g. 7d, 1y2m
}

// Empty reports whether no keep rule is set (prune then refuses to act).
func (r Retention) Empty() bool {
	return r.KeepLast == 0 && r.KeepHourly == 0 && r.KeepDaily == 0 &&
		r.KeepWeekly == 0 && r.KeepMonthly == 0 && r.KeepYearly == 0 && r.KeepWithin == ""
}

// Drill is a target's restore drill.
type Drill struct {
	Schedule string  `yaml:"schedule"`
	Checks   []Check `yaml:"checks"`
	// Instance is where a postgres target's drill restores: "" (a
	// throwaway database on the source's server) or DrillThrowaway (a
	// throwaway cluster of the source's major version, initdb'd on a free
	// loopback port and removed afterwards; the live server is not touched
	// and the source role needs no CREATEDB).
	Instance string `yaml:"instance"`
	// App starts the application against the drill's throwaway instance
	// and probes it (drillapp.go); nil: no application check.
	App *DrillApp `yaml:"app"`
	// Timeout bounds the whole drill. Default 1h.
	Timeout time.Duration `yaml:"timeout"`
	// Jitter delays each scheduled drill by up to this much. Default 0.
	Jitter time.Duration `yaml:"jitter"`
}

// Check is one drill check. For postgres targets SQL must be set: a query
// whose single value must be true. For restic targets Path must be set: a
// path relative to the snapshot root ("/srv/data/x" is found at
// <restore>/srv/data/x) that must exist, and when SHA256 is set, hash to it.
// Load makes a relative Path absolute against the lab file's directory,
// like the source paths, and lowercases SHA256.
//
// For s3-mirror targets exactly one of Object (a key, relative to the
// source prefix, that must be in the restored snapshot) and MinObjects
// (the restored snapshot must hold at least this many objects) is set.
type Check struct {
	SQL        string `yaml:"sql"`
	Path       string `yaml:"path"`
	SHA256     string `yaml:"sha256"`
	Object     string `yaml:"object"`
	MinObjects int    `yaml:"min_objects"`
}

// Hooks are shell commands (run with /bin/sh -c) around a backup.
type Hooks struct {
	Before []string `yaml:"before"`
	After  []string `yaml:"after"`
	// Timeout bounds each hook command. Default 5m.
	Timeout time.Duration `yaml:"timeout"`
}
