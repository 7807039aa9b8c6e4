package lab

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Health probe kinds (the keys of a service's health section).
const (
	ProbeCommand   = "command"
	ProbeContainer = "container"
	ProbeHTTP      = "http"
	ProbePostgres  = "postgres"
	ProbeTCP       = "tcp"
)

const (
	// DefaultProbeTimeout bounds a health probe without a timeout.
	DefaultProbeTimeout = 5 * time.Second
	// DefaultProbeQuery is the query of a postgres probe without one.
	DefaultProbeQuery = "select 1"
)

// containerName is what Docker accepts as a container name or ID; it
// cannot start with "-", so it is never taken for a flag.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Service is a service of the lab: how it runs and how to tell that it is
// healthy.
type Service struct {
	Name string `yaml:"-"`
	// Runtime says how the service runs (runtime.go); nil when homelab
	// does not drive it.
	Runtime *Runtime `yaml:"runtime"`
	// Health is the service's health probe; nil when it has none.
	Health *Health `yaml:"health"`
	// Logs says where the service's logs are when its runtime does not
	// keep them (an exec service writing a file); nil when it has none.
	Logs *Logs `yaml:"logs"`
	// Upgrade configures `homelab upgrade` for the service (upgrade.go);
	// nil when it is not upgraded by homelab.
	Upgrade *Upgrade `yaml:"upgrade"`
	// Deploy makes the service blue/green (deploy.go): two colors behind
	// HAProxy; nil for a service that is upgraded in place.
	Deploy *Deploy `yaml:"deploy"`
	// Migrations says how to ask whether the application's database
	// migrations are pending (migrations.go); nil when it does not say.
	Migrations *Migrations `yaml:"migrations"`
}

// RuntimeKind is the kind of the service's runtime (compose, systemd or
// exec), or "" when it has none.
func (s *Service) RuntimeKind() string {
	if s == nil {
		return ""
	}
	return s.Runtime.Kind()
}

// Logs is where a service's logs are, besides its runtime.
type Logs struct {
	// File is a log file (relative to the lab file's directory), followed
	// across rotation by rename (logrotate's default) or truncation
	// (copytruncate).
	File string `yaml:"file"`
}

// Health is a service's health probe: exactly one of its fields is set.
// Every probe has a timeout (default DefaultProbeTimeout) and, like the
// rest of the lab file, takes secrets only by reference (*_env, *_file).
type Health struct {
	HTTP      *HTTPProbe      `yaml:"http"`
	TCP       *TCPProbe       `yaml:"tcp"`
	Postgres  *PostgresProbe  `yaml:"postgres"`
	Command   *CommandProbe   `yaml:"command"`
	Container *ContainerProbe `yaml:"container"`
}

// Kind is the kind of the probe that is set (ProbeHTTP, ...), or "" when
// none is (h may be nil).
func (h *Health) Kind() string {
	switch {
	case h == nil:
		return ""
	case h.HTTP != nil:
		return ProbeHTTP
	case h.TCP != nil:
		return ProbeTCP
	case h.Postgres != nil:
		return ProbePostgres
	case h.Command != nil:
		return ProbeCommand
	case h.Container != nil:
		return ProbeContainer
	}
	return ""
}

// Timeout is the timeout of the probe that is set, or 0 when none is.
func (h *Health) Timeout() time.Duration {
	switch h.Kind() {
	case ProbeHTTP:
		return h.HTTP.Timeout
	case ProbeTCP:
		return h.TCP.Timeout
	case ProbePostgres:
		return h.Postgres.Timeout
	case ProbeCommand:
		return h.Command.Timeout
	case ProbeContainer:
		return h.Container.Timeout
	}
	return 0
}

// HTTPProbe is healthy when a GET of URL answers with the expected
// status (redirects are not followed) and, when Body is set, a body
// whose first MiB contains Body.
type HTTPProbe struct {
	// URL is an http:// or https:// URL, without credentials in it.
	URL string `yaml:"url"`
	// Expect is the status code wanted; 0 accepts 200 to 399.
	Expect int `yaml:"expect"`
	// Body is a substring the response body must contain.
	Body    string        `yaml:"body"`
	Timeout time.Duration `yaml:"timeout"`
	// CAFile is a PEM file of the CA certificates to trust for https
	// instead of the system's (a lab's own CA). Relative paths resolve
	// against the lab file's directory.
	CAFile string `yaml:"ca_file"`
	// Insecure skips certificate verification (https only).
	Insecure bool `yaml:"insecure"`
}

// TCPProbe is healthy when a TCP connection to Address can be opened.
type TCPProbe struct {
	Address string        `yaml:"address"` // host:port
	Timeout time.Duration `yaml:"timeout"`
}

// PostgresProbe is healthy when it can connect and Query returns true or
// 1. The connection comes from the fields (password by PasswordEnv or
// PasswordFile, else libpq's PGPASSWORD or ~/.pgpass) or, whole, from a
// connection string in the environment variable DSNEnv or the file
// DSNFile.
type PostgresProbe struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"` // default 5432 (not with a DSN)
	Database     string `yaml:"database"`
	User         string `yaml:"user"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// SSLMode is libpq's sslmode.
	SSLMode string `yaml:"sslmode"`
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
	// Query must return one value, true or 1. Default DefaultProbeQuery.
	Query   string        `yaml:"query"`
	Timeout time.Duration `yaml:"timeout"`

	// Password and DSN are never allowed: present only so validation can
	// name them.
	Password string `yaml:"password"`
	DSN      string `yaml:"dsn"`
}

// CommandProbe is healthy when Run, run with /bin/sh -c in Dir, exits 0.
type CommandProbe struct {
	Run string `yaml:"run"`
	// Dir is the working directory; default the lab file's directory.
	Dir     string        `yaml:"dir"`
	Timeout time.Duration `yaml:"timeout"`
}

// ContainerProbe is healthy when the Docker container Name is running
// and, if its image has a HEALTHCHECK, Docker reports it healthy.
type ContainerProbe struct {
	Name    string        `yaml:"name"` // container name or ID
	Timeout time.Duration `yaml:"timeout"`
}

// validateHealth checks a service's health section: at most one probe,
// well-formed, with secrets only by reference.
func (d *decoder) validateHealth(p string, s *Service) {
	d.renameUnknown(p, "health probe", healthKinds)
	h := s.Health
	if h == nil || d.bad[p] {
		return // no probe (health is optional), or not a mapping
	}
	// A kind given with an empty value (http:) is a probe with every field
	// missing, so that the required ones are reported. A malformed one
	// (http: yes) was reported by the decoder and is left out.
	given := func(kind string) bool { return d.present(p+"."+kind) && !d.bad[p+"."+kind] }
	var got []string
	for _, k := range healthKinds {
		if given(k) {
			got = append(got, k)
		}
	}
	switch {
	case len(got) == 0 && !d.hasErrorsUnder(p):
		d.at(p, "one probe required: one of %s (or leave health out)", strings.Join(healthKinds, ", "))
	case len(got) > 1:
		d.at(p, "only one health probe allowed, got %s", strings.Join(got, ", "))
	}
	if given(ProbeHTTP) {
		h.HTTP = ensure(h.HTTP)
		d.validateHTTPProbe(p+".http", h.HTTP)
	}
	if given(ProbeTCP) {
		h.TCP = ensure(h.TCP)
		d.validateTCPProbe(p+".tcp", h.TCP)
	}
	if given(ProbePostgres) {
		h.Postgres = ensure(h.Postgres)
		d.validatePostgresProbe(p+".postgres", h.Postgres)
	}
	if given(ProbeCommand) {
		c := ensure(h.Command)
		h.Command = c
		if strings.TrimSpace(c.Run) == "" {
			d.at(p+".command.run", "required: a shell command that exits 0 when the service is healthy")
		}
		d.nonNegative(p+".command.timeout", c.Timeout)
	}
	if given(ProbeContainer) {
		c := ensure(h.Container)
		h.Container = c
		switch {
		case c.Name == "":
			d.at(p+".container.name", "required: the Docker container's name or ID")
		case !containerName.MatchString(c.Name):
			d.at(p+".container.name", "invalid container name %q: must match %s", c.Name, containerName)
		}
		d.nonNegative(p+".container.timeout", c.Timeout)
	}
}

func ensure[T any](v *T) *T {
	if v == nil {
		return new(T)
	}
	return v
}

func (d *decoder) validateHTTPProbe(p string, h *HTTPProbe) {
	d.nonNegative(p+".timeout", h.Timeout)
	if h.Expect != 0 && (h.Expect < 100 || h.Expect > 599) {
		d.at(p+".expect", "bad status code %d: expected 100 to 599 (or leave it out for 200-399)", h.Expect)
	}
	d.rewordBool(p + ".insecure")
	d.exclusive(p, false, []string{"ca_file", "insecure"}, h.CAFile != "", h.Insecure)
	if h.URL == "" {
		d.at(p+".url", "required: an http:// or https:// URL")
		return
	}
	u, err := url.Parse(h.URL)
	switch {
	case err != nil:
		d.at(p+".url", "bad URL: %v", stripURLErr(err))
		return
	case u.Scheme != "http" && u.Scheme != "https":
		d.at(p+".url", "bad URL %q: expected an http:// or https:// URL", u.Redacted())
		return
	case u.Host == "":
		d.at(p+".url", "bad URL %q: no host", u.Redacted())
		return
	}
	if _, ok := u.User.Password(); ok {
		// The URL is shown on status and in errors: no password in it.
		d.at(p+".url", "inline secret not allowed: no password in the URL")
	}
	if u.Scheme == "http" {
		for _, f := range []struct {
			field string
			set   bool
		}{{"ca_file", h.CAFile != ""}, {"insecure", h.Insecure}} {
			if f.set {
				d.at(p+"."+f.field, "only for https:// URLs")
			}
		}
	}
}

// stripURLErr drops the URL that url.Parse repeats in its errors.
func stripURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func (d *decoder) validateTCPProbe(p string, t *TCPProbe) {
	d.nonNegative(p+".timeout", t.Timeout)
	if t.Address == "" {
		d.at(p+".address", "required: host:port such as 127.0.0.1:6379")
		return
	}
	if !validHostPort(t.Address) {
		d.at(p+".address", "bad address %q: expected host:port such as 127.0.0.1:6379", t.Address)
	}
}

// validHostPort reports whether addr is host:port with a host and a port
// from 1 to 65535 (or a service name such as "redis").
func validHostPort(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return false
	}
	if n, err := strconv.Atoi(port); err == nil {
		return n >= 1 && n <= 65535
	}
	return true
}

func (d *decoder) validatePostgresProbe(p string, pg *PostgresProbe) {
	d.nonNegative(p+".timeout", pg.Timeout)
	if d.present(p + ".password") {
		d.at(p+".password", inlineSecret)
	}
	if d.present(p + ".dsn") {
		d.at(p+".dsn", "inline secret not allowed: use dsn_env or dsn_file (a connection string may hold a password)")
	}
	d.exclusive(p, false, []string{"dsn_env", "dsn_file"}, pg.DSNEnv != "", pg.DSNFile != "")
	d.exclusive(p, false, []string{"password_env", "password_file"}, pg.PasswordEnv != "", pg.PasswordFile != "")
	if d.present(p+".query") && strings.TrimSpace(pg.Query) == "" {
		d.at(p+".query", "must not be empty: a query returning one value, true or 1 (default %q)", DefaultProbeQuery)
	}
	if pg.DSNEnv != "" || pg.DSNFile != "" {
		with := "dsn_env"
		if pg.DSNEnv == "" {
			with = "dsn_file"
		}
		for _, f := range []struct {
			field string
			set   bool
		}{
			{"host", pg.Host != ""}, {"port", pg.Port != 0}, {"database", pg.Database != ""}, {"user", pg.User != ""},
			{"password_env", pg.PasswordEnv != ""}, {"password_file", pg.PasswordFile != ""}, {"sslmode", pg.SSLMode != ""},
		} {
			if f.set {
				d.at(p+"."+f.field, "not allowed with %s: the connection string gives it", with)
			}
		}
		return
	}
	if pg.Database == "" && !d.present(p+".dsn") {
		d.at(p+".database", "required: the database to connect to (or dsn_env or dsn_file)")
	}
	if pg.Port < 0 || pg.Port > 65535 {
		d.at(p+".port", "must be between 1 and 65535, got %d", pg.Port)
	}
	if pg.SSLMode != "" && !slices.Contains(sslModes, pg.SSLMode) {
		d.at(p+".sslmode", "unknown sslmode %q (known: %s)", pg.SSLMode, strings.Join(sslModes, ", "))
	}
}

// renameUnknown rewords the decoder's "unknown field" errors for the keys
// of the mapping at path into "unknown <what> (known: ...)", which says
// what the keys are for.
func (d *decoder) renameUnknown(path, what string, known []string) {
	for i, e := range d.errs {
		k, ok := strings.CutPrefix(e.Field, path+".")
		if !ok || strings.ContainsAny(k, ".[") || !strings.HasPrefix(e.Msg, "unknown field ") {
			continue
		}
		msg := fmt.Sprintf("unknown %s %q (known: %s)", what, k, strings.Join(known, ", "))
		if _, hint, ok := strings.Cut(e.Msg, "; "); ok {
			msg += "; " + hint
		}
		d.errs[i].Msg = msg
	}
}

// rewordBool replaces yaml.v3's multi-line message for a value at path
// that is not a boolean with one line saying what is expected.
func (d *decoder) rewordBool(path string) {
	n := d.vals[path]
	if !d.bad[path] || n == nil {
		return
	}
	for i, e := range d.errs {
		if e.Field == path && strings.Contains(e.Msg, "into bool") {
			d.errs[i].Msg = fmt.Sprintf("expected true or false, got %s", describe(n))
		}
	}
}

// hasErrorsUnder reports whether a problem was already recorded at path
// or below it.
func (d *decoder) hasErrorsUnder(path string) bool {
	for _, e := range d.errs {
		if e.Field == path || strings.HasPrefix(e.Field, path+".") {
			return true
		}
	}
	return false
}

// labDir is the lab file's absolute directory, which relative paths in
// the file are resolved against.
func (d *decoder) labDir() string {
	abs, err := filepath.Abs(d.file)
	if err != nil {
		return filepath.Dir(d.file) // Parse reports the error
	}
	return filepath.Dir(abs)
}

// setDefaults fills in the probe's timeout and defaults and makes its
// paths absolute against dir, the lab file's directory.
//
// It is called by validateService rather than by Lab.setDefaults (load.go)
// only to keep the service section in one file; the result is the same,
// as a lab with problems is never returned.
func (h *Health) setDefaults(dir string) {
	timeout := func(t *time.Duration) {
		if *t == 0 {
			*t = DefaultProbeTimeout
		}
	}
	if c := h.HTTP; c != nil {
		timeout(&c.Timeout)
		if c.CAFile != "" {
			c.CAFile = absPath(dir, c.CAFile)
		}
	}
	if c := h.TCP; c != nil {
		timeout(&c.Timeout)
	}
	if c := h.Postgres; c != nil {
		timeout(&c.Timeout)
		if c.Query == "" {
			c.Query = DefaultProbeQuery
		}
		if c.DSNEnv == "" && c.DSNFile == "" && c.Port == 0 {
			c.Port = DefaultPostgresPort
		}
		if c.PasswordFile != "" {
			c.PasswordFile = absPath(dir, c.PasswordFile)
		}
		if c.DSNFile != "" {
			c.DSNFile = absPath(dir, c.DSNFile)
		}
	}
	if c := h.Command; c != nil {
		timeout(&c.Timeout)
		c.Dir = absPath(dir, c.Dir)
	}
	if c := h.Container; c != nil {
		timeout(&c.Timeout)
	}
}
