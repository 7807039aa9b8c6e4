package lab

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"homelab/internal/notify"
)

var (
	namePattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	keepWithinPattern = regexp.MustCompile(`^([0-9]+[ymdh])+$`)
	sha256Pattern     = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	subsetPattern     = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?%|[0-9]+/[0-9]+|[0-9]+[KMGT]?)$`)

	providers    = []string{ProviderPgBackRest, ProviderPostgres, ProviderRestic, ProviderS3Mirror}
	runtimeKinds = []string{"compose", "exec", "systemd"}
	healthKinds  = []string{ProbeCommand, ProbeContainer, ProbeHTTP, ProbePostgres, ProbeTCP}
	sslModes     = []string{"allow", "disable", "prefer", "require", "verify-ca", "verify-full"}
	secretWords  = []string{"PASSWORD", "SECRET", "TOKEN", "KEY"}
)

const inlineSecret = "inline secret not allowed: use password_file or password_env"

// validate checks the rules that span fields: required fields,
// references, provider-specific sources, schedules and secrets. Map
// entries left null in the file are replaced by empty values first.
func (d *decoder) validate(l *Lab) {
	if l.Name != "" {
		d.checkName("name", l.Name)
	}
	if len(l.Repositories) == 0 && slices.ContainsFunc(slices.Collect(maps.Values(l.Backups)), usesRepository) {
		n := d.keys["repositories"]
		if n == nil {
			n = d.keys["backups"]
		}
		d.errorf(n, "repositories", "at least one repository is required when backups are defined")
	}
	validateEntries(d, "repositories", l.Repositories, d.validateRepository)
	validateEntries(d, "services", l.Services, d.validateService)
	validateEntries(d, "s3_locations", l.S3Locations, func(p string, loc *S3Location) {
		if loc.Location != "" {
			d.at(p+".location", "not allowed here: an S3 location cannot name another")
		}
		d.validateS3Location(p, *loc)
	})
	validateEntries(d, "backups", l.Backups, func(p string, b *Backup) { d.validateBackup(p, b, l) })
	for _, name := range slices.Sorted(maps.Keys(l.Services)) { // after backups: upgrades name them
		d.validateUpgrade("services."+name+".upgrade", l.Services[name], l)
		d.validateDeploy("services."+name+".deploy", l.Services[name])
		d.validatePostgres("services."+name+".postgres", l.Services[name], l)
	}
	for i := range l.Notify {
		if l.Notify[i] == nil {
			l.Notify[i] = new(Notify)
		}
		d.validateNotify(fmt.Sprintf("notify[%d]", i), l.Notify[i])
	}
	d.validateServe("serve", &l.Serve)
	d.validateCerts("certs", &l.Certs)
	d.validateHosts("hosts", &l.Hosts)
	d.validateAlerts("alerts", &l.Alerts)
	d.validateEnergy("energy", l.Energy)
}

// nonNegative reports a negative duration at path.
func (d *decoder) nonNegative(path string, v time.Duration) {
	if v < 0 {
		d.at(path, "must not be negative, got %s", v)
	}
}

// exclusive reports when more than one of the named fields (path suffixes
// of p) is set, and, when required, when none is.
func (d *decoder) exclusive(p string, required bool, fields []string, set ...bool) {
	var got []string
	for i, f := range fields {
		if set[i] {
			got = append(got, f)
		}
	}
	switch {
	case len(got) == 0 && required:
		d.at(p+"."+fields[0], "one of %s is required", strings.Join(fields, ", "))
	case len(got) > 1:
		d.at(p+"."+got[1], "%s are mutually exclusive", strings.Join(got, " and "))
	}
}

func (d *decoder) validateNotify(p string, n *Notify) {
	d.exclusive(p, true, []string{"url", "url_env", "url_file"}, n.URL != "", n.URLEnv != "", n.URLFile != "")
	if n.URL != "" {
		if err := notify.CheckURL(n.URL); err != nil {
			d.at(p+".url", "%v", err)
		}
	}
	for i, e := range n.On {
		if !slices.Contains(NotifyEvents, e) {
			d.at(fmt.Sprintf("%s.on[%d]", p, i), "unknown event %q (known: %s)", e, strings.Join(NotifyEvents, ", "))
		}
	}
	for _, f := range []struct{ field, text string }{{"title", n.Title}, {"body", n.Body}} {
		if err := notify.CheckTemplate(f.text); err != nil {
			d.at(p+"."+f.field, "bad template: %v", err)
		}
	}
}

func (d *decoder) validateServe(p string, s *Serve) {
	if s.Listen != "" {
		if _, port, err := net.SplitHostPort(s.Listen); err != nil || port == "" {
			d.at(p+".listen", "bad address %q: expected host:port such as 127.0.0.1:8470", s.Listen)
		} else if s.TokenEnv == "" && s.TokenFile == "" && !LoopbackAddr(s.Listen) {
			d.at(p+".listen", "%q is reachable from other hosts: set token_env or token_file, or listen on 127.0.0.1", s.Listen)
		}
	}
	d.exclusive(p, false, []string{"token_env", "token_file"}, s.TokenEnv != "", s.TokenFile != "")
	if s.Concurrency < 0 {
		d.at(p+".concurrency", "must be at least 1, got %d", s.Concurrency)
	}
	d.nonNegative(p+".stale_lock_age", s.StaleLockAge)
	d.nonNegative(p+".shutdown_timeout", s.ShutdownTimeout)
	d.nonNegative(p+".prune_timeout", s.PruneTimeout)
	d.nonNegative(p+".refresh", s.Refresh)
}

// LoopbackAddr reports whether the host of a host:port address is a
// loopback address or "localhost". An empty host (all interfaces) is not.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *decoder) checkName(path, name string) {
	if !namePattern.MatchString(name) {
		d.at(path, "invalid name %q: must match %s (names become restic tags and file names)", name, namePattern)
	}
}

// checkKey checks a map key used as a name, pointing at the key itself.
func (d *decoder) checkKey(path, name string) {
	if !namePattern.MatchString(name) {
		d.errorf(d.keys[path], path, "invalid name %q: must match %s (names become restic tags and file names)", name, namePattern)
	}
}

func (d *decoder) validateRepository(p string, r *Repository) {
	if r.URL == "" {
		d.at(p+".url", "required: a restic repository URL (a local path, s3:..., sftp:..., rest:...)")
	} else if urlPassword(r.URL) {
		// The URL is printed (repo init, the hand-restore commands): no password in it.
		d.at(p+".url", "%s", urlSecretHint(r.URL))
	}
	if d.present(p + ".password") {
		d.at(p+".password", inlineSecret)
	}
	d.checkSchedule(p+".check.schedule", r.Check.Schedule)
	if r.Check.ReadDataSubset != "" && !subsetPattern.MatchString(r.Check.ReadDataSubset) {
		d.at(p+".check.read_data_subset", "bad subset %q: expected restic's n%%, n/m or a size such as 500M", r.Check.ReadDataSubset)
	}
	d.nonNegative(p+".check.timeout", r.Check.Timeout)
	d.nonNegative(p+".check.jitter", r.Check.Jitter)
	switch {
	case r.PasswordFile == "" && r.PasswordEnv == "":
		d.at(p+".password_file", "one of password_file or password_env is required")
	case r.PasswordFile != "" && r.PasswordEnv != "":
		d.at(p+".password_env", "password_file and password_env are mutually exclusive")
	}
	d.validateRepositoryS3(p, r)
	for _, k := range slices.Sorted(maps.Keys(r.Env)) {
		if looksSecret(k) {
			d.errorf(d.keys[p+".env."+k], p+".env."+k,
				"inline secret not allowed: use env_from (%s: NAME_OF_A_VARIABLE_HOLDING_IT)", k)
		}
	}
}

// validateRepositoryS3 checks a repository's S3 keys: only on an s3: URL
// (restic reads them nowhere else), both or neither, and not given twice
// (the keys and env_from AWS_ACCESS_KEY_ID, region and env
// AWS_DEFAULT_REGION).
func (d *decoder) validateRepositoryS3(p string, r *Repository) {
	c := r.S3Credentials
	if !r.IsS3() {
		for _, s := range []Secret{c.AccessKeyID(), c.SecretAccessKey()} {
			for _, f := range []string{s.Field + "_env", s.Field + "_file"} {
				if d.present(p + "." + f) {
					d.at(p+"."+f, "S3 keys apply only to a repository on S3 (url: s3:...), not %q", r.URL)
				}
			}
		}
		if d.present(p + ".region") {
			d.at(p+".region", "region applies only to a repository on S3 (url: s3:...), not %q", r.URL)
		}
		return
	}
	d.validateS3Credentials(p, c, false)
	for _, k := range []struct{ field, env string }{
		{"access_key_id_env", "AWS_ACCESS_KEY_ID"}, {"secret_access_key_env", "AWS_SECRET_ACCESS_KEY"},
	} {
		if _, twice := r.EnvFrom[k.env]; twice && c.IsSet() {
			d.errorf(d.keys[p+".env_from."+k.env], p+".env_from."+k.env,
				"%s is set by the repository's S3 keys (%s or its _file): remove it from env_from", k.env, k.field)
		}
	}
	if _, twice := r.Env["AWS_DEFAULT_REGION"]; twice && c.Region != "" {
		d.errorf(d.keys[p+".env.AWS_DEFAULT_REGION"], p+".env.AWS_DEFAULT_REGION",
			"AWS_DEFAULT_REGION is set by the repository's region: remove it from env")
	}
}

func looksSecret(name string) bool {
	upper := strings.ToUpper(name)
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(upper, w) })
}

// validateService checks a service: at most one runtime (runtime.go), at
// most one well-formed health probe (services.go), and a log file, and
// fills in their defaults.
func (d *decoder) validateService(p string, s *Service) {
	d.validateRuntime(p+".runtime", s)
	if s.Logs != nil && !d.bad[p+".logs"] {
		if s.Logs.File == "" {
			d.at(p+".logs.file", "required: the service's log file")
		}
		s.Logs.File = absIn(d.labDir(), s.Logs.File)
	}
	d.validateHealth(p+".health", s)
	if s.Health != nil {
		s.Health.setDefaults(d.labDir())
	}
	d.validateMigrations(p+".migrations", s)
}

func (d *decoder) validateBackup(p string, b *Backup, l *Lab) {
	switch {
	case b.Provider == "":
		d.at(p+".provider", "required: one of %s", strings.Join(providers, ", "))
	case !slices.Contains(providers, b.Provider):
		d.at(p+".provider", "unknown provider %q (known: %s)", b.Provider, strings.Join(providers, ", "))
	}
	switch {
	case b.Provider == ProviderS3Mirror:
		if b.Repository != "" {
			d.at(p+".repository", "not allowed for provider s3-mirror: its snapshots go to destination:")
		}
	case b.Provider == ProviderPgBackRest:
		d.validatePgBackRest(p, b, l)
	case b.Repository == "":
		d.at(p+".repository", "required: the name of one of the repositories")
	case len(l.Repositories) > 0 && l.Repositories[b.Repository] == nil:
		d.at(p+".repository", "unknown repository %q (known: %s)",
			b.Repository, strings.Join(slices.Sorted(maps.Keys(l.Repositories)), ", "))
	}
	d.checkSchedule(p+".schedule", b.Schedule)
	d.validateStop(p, b, l)
	d.checkSchedule(p+".drill.schedule", b.Drill.Schedule)
	d.checkRetention(p+".retention", b.Retention)
	if b.Drill.Timeout < 0 {
		d.at(p+".drill.timeout", "must not be negative, got %s", b.Drill.Timeout)
	}
	if b.Hooks.Timeout < 0 {
		d.at(p+".hooks.timeout", "must not be negative, got %s", b.Hooks.Timeout)
	}
	d.nonNegative(p+".timeout", b.Timeout)
	d.nonNegative(p+".jitter", b.Jitter)
	d.nonNegative(p+".drill.jitter", b.Drill.Jitter)
	d.exclusive(p+".heartbeat", false, []string{"url", "url_env"}, b.Heartbeat.URL != "", b.Heartbeat.URLEnv != "")
	if u := b.Heartbeat.URL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		d.at(p+".heartbeat.url", "expected an http:// or https:// URL")
	}
	for i, tag := range b.Tags {
		if tag == "" || strings.Contains(tag, ",") {
			d.at(fmt.Sprintf("%s.tags[%d]", p, i), "bad tag %q: must not be empty or contain a comma", tag)
		}
	}
	if d.present(p + ".source.password") {
		d.at(p+".source.password", inlineSecret)
	}
	switch b.Provider {
	case ProviderRestic:
		d.validateResticSource(p+".source", b.Source)
	case ProviderPostgres:
		d.validatePostgresSource(p+".source", b.Source)
	case ProviderS3Mirror:
		d.validateS3MirrorSource(p, b, l)
	}
	if b.Provider != ProviderS3Mirror {
		if b.Source.S3Location.IsSet() {
			d.at(p+".source", "endpoint, bucket, prefix, ca_file and S3 keys are for provider s3-mirror")
		}
		if b.Destination.IsSet() {
			d.at(p+".destination", "not allowed for provider %s (destination: is for s3-mirror; this target stores into repository:)", b.Provider)
		}
	}
	d.checkChecks(p+".drill.checks", b.Provider, b.Drill.Checks)
	switch {
	case b.Drill.Instance == "":
	case b.Drill.Instance != DrillThrowaway:
		d.at(p+".drill.instance", "unknown instance %q (known: %s)", b.Drill.Instance, DrillThrowaway)
	case b.Provider != ProviderPostgres:
		d.at(p+".drill.instance", "for provider postgres only (a %s drill has its own place)", b.Provider)
	}
	d.validateDrillApp(p, b)
}

func (d *decoder) checkSchedule(path, spec string) {
	if spec == "" {
		return // manual only
	}
	if every, ok, err := everyInterval(spec); ok && err == nil {
		floor, err := minEvery()
		if err != nil {
			d.at(path, "%v", err)
			return
		}
		if every < floor {
			d.at(path, "bad cron expression %q: the interval must be at least %s", spec, shortDuration(floor))
			return
		}
	}
	if _, err := ParseSchedule(spec); err != nil {
		d.at(path, "bad cron expression %q: %v", spec, err)
	}
}

// shortDuration formats d without trailing zero units: 1m, not 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// urlPassword reports whether a restic repository URL holds a password:
// user:password@ after "://" (rest:http://..., s3:https://...,
// sftp://...) or in sftp's short form (sftp:user:password@host:/path).
func urlPassword(repo string) bool {
	backend, rest, ok := strings.Cut(repo, ":")
	if !ok {
		return false
	}
	if _, after, ok := strings.Cut(repo, "://"); ok {
		rest = after
	} else if backend != "sftp" {
		return false
	}
	userinfo, _, ok := strings.Cut(rest, "@")
	return ok && strings.Contains(userinfo, ":") && !strings.Contains(userinfo, "/")
}

// urlSecretHint says how a repository URL's password reaches restic
// instead: the backend's own variable, through env_from.
func urlSecretHint(repo string) string {
	const msg = "inline secret not allowed: no password in the URL; "
	switch {
	case strings.HasPrefix(repo, "rest:"):
		return msg + "use env_from (RESTIC_REST_PASSWORD: NAME_OF_A_VARIABLE_HOLDING_IT, and RESTIC_REST_USERNAME)"
	case strings.HasPrefix(repo, "s3:"):
		return msg + "use access_key_id_env or access_key_id_file, and secret_access_key_env or secret_access_key_file"
	case strings.HasPrefix(repo, "sftp:"):
		return msg + "restic logs in to sftp with an SSH key (see ssh_config)"
	}
	return msg + "use env_from (THE_BACKENDS_VARIABLE: NAME_OF_A_VARIABLE_HOLDING_IT)"
}

func (d *decoder) checkRetention(p string, r Retention) {
	for _, k := range []struct {
		field string
		n     int
	}{
		{"keep_last", r.KeepLast}, {"keep_hourly", r.KeepHourly}, {"keep_daily", r.KeepDaily},
		{"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}, {"keep_yearly", r.KeepYearly},
	} {
		if k.n < 0 {
			d.at(p+"."+k.field, "must not be negative, got %d", k.n)
		}
	}
	if r.KeepWithin != "" && !keepWithinPattern.MatchString(r.KeepWithin) {
		d.at(p+".keep_within", "bad duration %q: expected a restic duration such as 7d, 6m or 1y2m3d4h", r.KeepWithin)
	}
}

func (d *decoder) validateResticSource(p string, s Source) {
	if len(s.Paths) == 0 {
		d.at(p+".paths", "required for provider restic: at least one path")
	}
	for i, path := range s.Paths {
		if strings.TrimSpace(path) == "" {
			d.at(fmt.Sprintf("%s.paths[%d]", p, i), "empty path")
		}
	}
	d.notAllowed(p, ProviderRestic, map[string]bool{
		"host": s.Host != "", "port": s.Port != 0, "database": s.Database != "", "user": s.User != "",
		"password_env": s.PasswordEnv != "", "password_file": s.PasswordFile != "", "sslmode": s.SSLMode != "",
	})
}

// usesRepository reports whether a backup target stores into a restic
// repository (every provider but s3-mirror). A null entry counts: it is
// reported as missing its fields.
func usesRepository(b *Backup) bool {
	return b == nil || (b.Provider != ProviderS3Mirror && b.Provider != ProviderPgBackRest)
}

// validateS3MirrorSource checks an s3-mirror target's source and
// destination buckets.
func (d *decoder) validateS3MirrorSource(p string, b *Backup, l *Lab) {
	s := b.Source
	d.notAllowed(p+".source", ProviderS3Mirror, map[string]bool{
		"paths": len(s.Paths) > 0, "exclude": len(s.Exclude) > 0,
		"host": s.Host != "", "port": s.Port != 0, "database": s.Database != "", "user": s.User != "",
		"password_env": s.PasswordEnv != "", "password_file": s.PasswordFile != "", "sslmode": s.SSLMode != "",
	})
	if !d.useLocation(p+".source", &b.Source.S3Location, l) {
		d.validateS3Location(p+".source", s.S3Location)
	}
	if !d.present(p + ".destination") {
		d.at(p+".destination", "required for provider s3-mirror: the endpoint and bucket the snapshots go to")
		return
	}
	if !d.useLocation(p+".destination", &b.Destination, l) {
		d.validateS3Location(p+".destination", b.Destination)
	}
	src, dst := b.Source.S3Location, b.Destination
	if SameEndpoint(src.Endpoint, dst.Endpoint) && src.Bucket == dst.Bucket && src.Bucket != "" && overlaps(src.Prefix, dst.Prefix) {
		d.at(p+".destination.prefix", "the destination must not lie inside the source (or hold it): bucket %s, prefixes %q and %q", dst.Bucket, src.Prefix, dst.Prefix)
	}
}

// overlaps reports whether one key prefix contains the other.
func overlaps(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }

func (d *decoder) validatePostgresSource(p string, s Source) {
	if s.Database == "" {
		d.at(p+".database", "required for provider postgres")
	}
	if s.Port < 0 || s.Port > 65535 {
		d.at(p+".port", "must be between 1 and 65535, got %d", s.Port)
	}
	if s.PasswordEnv != "" && s.PasswordFile != "" {
		d.at(p+".password_env", "password_file and password_env are mutually exclusive")
	}
	if s.SSLMode != "" && !slices.Contains(sslModes, s.SSLMode) {
		d.at(p+".sslmode", "unknown sslmode %q (known: %s)", s.SSLMode, strings.Join(sslModes, ", "))
	}
	d.notAllowed(p, ProviderPostgres, map[string]bool{"paths": len(s.Paths) > 0, "exclude": len(s.Exclude) > 0})
}

// notAllowed reports the fields set (true in set) that provider does not use.
func (d *decoder) notAllowed(p, provider string, set map[string]bool) {
	for _, f := range slices.Sorted(maps.Keys(set)) {
		if set[f] {
			d.at(p+"."+f, "not allowed for provider %s", provider)
		}
	}
}

func (d *decoder) checkChecks(p, provider string, checks []Check) {
	for i, c := range checks {
		pc := fmt.Sprintf("%s[%d]", p, i)
		switch provider {
		case ProviderPostgres, ProviderPgBackRest:
			if c.SQL == "" {
				d.at(pc+".sql", "required for provider %s: a query returning one true value", provider)
			}
			d.notAllowed(pc, provider, map[string]bool{"path": c.Path != "", "sha256": c.SHA256 != "", "object": c.Object != "", "min_objects": c.MinObjects != 0})
		case ProviderRestic:
			if c.Path == "" {
				d.at(pc+".path", "required for provider restic: a path that must exist in the restored snapshot")
			}
			if c.SHA256 != "" && !sha256Pattern.MatchString(c.SHA256) {
				d.at(pc+".sha256", "bad sha256 %q: expected 64 hex digits", c.SHA256)
			}
			d.notAllowed(pc, provider, map[string]bool{"sql": c.SQL != "", "object": c.Object != "", "min_objects": c.MinObjects != 0})
		case ProviderS3Mirror:
			switch {
			case c.Object == "" && c.MinObjects == 0:
				d.at(pc+".object", "required for provider s3-mirror: object (a key that must be in the restored snapshot) or min_objects")
			case c.Object != "" && c.MinObjects != 0:
				d.at(pc+".min_objects", "object and min_objects are separate checks: give one per check")
			case c.MinObjects < 0:
				d.at(pc+".min_objects", "must not be negative, got %d", c.MinObjects)
			}
			d.notAllowed(pc, provider, map[string]bool{"sql": c.SQL != "", "path": c.Path != "", "sha256": c.SHA256 != ""})
		}
	}
}

// present reports whether path was given in the file, even as null or "".
func (d *decoder) present(path string) bool {
	return d.vals[path] != nil
}

// validateEntries checks the names of a section's entries (in sorted
// order, so errors come out stably) and validates each entry, replacing a
// null entry with an empty one first.
func validateEntries[T any](d *decoder, section string, m map[string]*T, validate func(path string, v *T)) {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if m[name] == nil {
			m[name] = new(T)
		}
		p := section + "." + name
		d.checkKey(p, name)
		validate(p, m[name])
	}
}
