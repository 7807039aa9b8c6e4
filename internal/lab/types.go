package lab

import "time"

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
	// EnvFrom maps a variable restic needs to the variable of homelab's
	// own environment that holds it (AWS_SECRET_ACCESS_KEY: MY_S3_SECRET).
	EnvFrom map[string]string `yaml:"env_from"`
}

// Service is a minimal service description (runtimes and health probes
// are built on it later).
type Service struct {
	Name    string         `yaml:"-"`
	Runtime map[string]any `yaml:"runtime"`
	Health  map[string]any `yaml:"health"`
}

// Provider names a backup provider.
const (
	ProviderRestic   = "restic"
	ProviderPostgres = "postgres"
)

// Backup is one backup target.
type Backup struct {
	Name       string    `yaml:"-"`
	Provider   string    `yaml:"provider"`
	Repository string    `yaml:"repository"`
	Source     Source    `yaml:"source"`
	Schedule   string    `yaml:"schedule"`
	Retention  Retention `yaml:"retention"`
	Drill      Drill     `yaml:"drill"`
	Hooks      Hooks     `yaml:"hooks"`
	// Tags are extra restic tags added to every snapshot of the target.
	Tags []string `yaml:"tags"`
}

// Source is the provider-specific source. restic uses Paths and Exclude;
// postgres uses the connection fields.
type Source struct {
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
	// Timeout bounds the whole drill. Default 1h.
	Timeout time.Duration `yaml:"timeout"`
}

// Check is one drill check. For postgres targets SQL must be set: a query
// whose single value must be true. For restic targets Path must be set: a
// path relative to the snapshot root ("/srv/data/x" is found at
// <restore>/srv/data/x) that must exist, and when SHA256 is set, hash to it.
// Load makes a relative Path absolute against the lab file's directory,
// like the source paths, and lowercases SHA256.
type Check struct {
	SQL    string `yaml:"sql"`
	Path   string `yaml:"path"`
	SHA256 string `yaml:"sha256"`
}

// Hooks are shell commands (run with /bin/sh -c) around a backup.
type Hooks struct {
	Before []string `yaml:"before"`
	After  []string `yaml:"after"`
	// Timeout bounds each hook command. Default 5m.
	Timeout time.Duration `yaml:"timeout"`
}
