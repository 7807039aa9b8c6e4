package lab

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Runtime kinds (the keys of a service's runtime section).
const (
	RuntimeCompose = "compose"
	RuntimeExec    = "exec"
	RuntimeSystemd = "systemd"
)

const (
	// DefaultRuntimeTimeout bounds one runtime command (a status, start or
	// stop) without a timeout of its own.
	DefaultRuntimeTimeout = 2 * time.Minute
)

// composeName is what Compose accepts as a project name (lower case
// letters, digits, dashes and underscores, starting with a letter or
// digit: the Compose specification's "name" rule) and, more loosely, as a
// service name.
var (
	composeProject = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	composeService = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	// systemdUnit is a unit name with its type suffix (systemd.unit(5)).
	systemdUnit = regexp.MustCompile(`^[a-zA-Z0-9:_.\\@-]+\.(service|socket|target|timer|mount|path|scope|slice)$`)
	// envName is a portable environment variable name (POSIX.1-2017,
	// 8.1: letters, digits and underscores, not starting with a digit).
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// reservedEnvPrefix starts the names homelab sets for a command itself
// (HOMELAB_SERVICE, HOMELAB_ACTION, an upgrade's HOMELAB_SAGA): env and
// env_from may not set them.
const reservedEnvPrefix = "HOMELAB_"

// Runtime says how a service runs: at most one field is set; none means
// homelab neither reports its state nor stops it (it can still be
// probed).
type Runtime struct {
	Compose *ComposeRuntime `yaml:"compose"`
	Systemd *SystemdRuntime `yaml:"systemd"`
	Exec    *ExecRuntime    `yaml:"exec"`
}

// Kind is RuntimeCompose, RuntimeSystemd or RuntimeExec, or "" when no
// runtime is set (r may be nil).
func (r *Runtime) Kind() string {
	switch {
	case r == nil:
		return ""
	case r.Compose != nil:
		return RuntimeCompose
	case r.Systemd != nil:
		return RuntimeSystemd
	case r.Exec != nil:
		return RuntimeExec
	}
	return ""
}

// ComposeRuntime is one service of a Docker Compose project, driven by
// the `docker compose` v2 CLI.
type ComposeRuntime struct {
	// Project is the Compose project name (`docker compose -p`).
	Project string `yaml:"project"`
	// Service is the service name in the project.
	Service string `yaml:"service"`
	// File is the compose file (relative to the lab file's directory).
	// Optional for state, stop and start, which Compose does from the
	// containers' labels; upgrades need it to change the image tag.
	File string `yaml:"file"`
	// StopTimeout is the grace Docker gives the container between SIGTERM
	// and SIGKILL on stop (`docker compose stop -t`). Default: Compose's
	// (10s, or the service's stop_grace_period).
	StopTimeout time.Duration `yaml:"stop_timeout"`
	// Timeout bounds one docker compose command. Default
	// DefaultRuntimeTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// SystemdRuntime is a systemd unit, driven by systemctl.
type SystemdRuntime struct {
	// Unit is the unit name with its suffix, such as "redis.service".
	Unit string `yaml:"unit"`
	// User drives the calling user's manager (systemctl --user).
	User bool `yaml:"user"`
	// Timeout bounds one systemctl command. Default DefaultRuntimeTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// Version and SetVersion run with /bin/sh -c in Dir.
	VersionCommands `yaml:",inline"`
	// Dir is the lab file's directory (set by Load).
	Dir string `yaml:"-"`
}

// ExecRuntime drives a service with shell commands (/bin/sh -c, in Dir):
// for a process that is neither a container nor a unit. Start must
// return once the service is started (a long-running process is
// backgrounded by the command itself, with its output sent to a file).
type ExecRuntime struct {
	// Start and Stop start and stop the service; both are required.
	Start string `yaml:"start"`
	Stop  string `yaml:"stop"`
	// Status tells the state by its exit status, as an LSB init script's
	// "status" action does: 0 running, 1 to 3 stopped, anything else
	// unknown. Optional when PIDFile is set.
	Status string `yaml:"status"`
	// PIDFile is a file holding the service's process id: the process
	// alive means running (when Status is not set), and its start time
	// gives the uptime. A relative path is in Dir, where the commands run.
	PIDFile string `yaml:"pid_file"`
	// Dir is the working directory; default the lab file's directory.
	Dir string `yaml:"dir"`
	// Timeout bounds one command. Default DefaultRuntimeTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// Env is environment given to every command (start, stop, status,
	// version, set_version) on top of homelab's base environment, as
	// NAME: value. Values are not secret: a name that looks like one
	// (holding PASSWORD, SECRET, TOKEN or KEY) is refused here, as in a
	// repository's env, and goes in EnvFrom.
	Env map[string]string `yaml:"env"`
	// EnvFrom gives the commands secrets by reference: NAME:
	// HOMELAB_VARIABLE sets NAME to the value of homelab's own variable,
	// read when a command runs (EnvFromSecrets, by lab.Secret's rule).
	EnvFrom         map[string]string `yaml:"env_from"`
	VersionCommands `yaml:",inline"`
}

// VersionCommands read and set the version of a service that is not a
// container (exec and systemd runtimes), for upgrades. Both are shell
// commands; SetVersion is a text/template with .Version (the version to
// install) and .Service, such as "apt-get install -y app={{.Version}}".
type VersionCommands struct {
	// Version prints the installed version: the first token of its first
	// line that reads as a version, such as "app 1.2.3" -> 1.2.3.
	Version    string `yaml:"version"`
	SetVersion string `yaml:"set_version"`
}

// validateRuntime checks a service's runtime section: at most one kind,
// each with its required fields, and fills in the defaults.
func (d *decoder) validateRuntime(p string, s *Service) {
	d.renameUnknown(p, "runtime", runtimeKinds)
	r := s.Runtime
	if r == nil || d.bad[p] {
		return
	}
	given := func(kind string) bool { return d.present(p+"."+kind) && !d.bad[p+"."+kind] }
	var got []string
	for _, k := range runtimeKinds {
		if given(k) {
			got = append(got, k)
		}
	}
	switch {
	case len(got) == 0 && !d.hasErrorsUnder(p):
		d.at(p, "one runtime required: one of %s (or leave runtime out)", strings.Join(runtimeKinds, ", "))
	case len(got) > 1:
		d.at(p, "only one runtime allowed, got %s", strings.Join(got, ", "))
	}
	dir := d.labDir()
	if given(RuntimeCompose) {
		c := ensure(r.Compose)
		r.Compose = c
		q := p + ".compose"
		switch {
		case c.Project == "":
			d.at(q+".project", "required: the Compose project name (docker compose -p)")
		case !composeProject.MatchString(c.Project):
			d.at(q+".project", "invalid project name %q: lower case letters, digits, '-' and '_', starting with a letter or digit", c.Project)
		}
		switch {
		case c.Service == "":
			d.at(q+".service", "required: the service's name in the Compose project")
		case !composeService.MatchString(c.Service):
			d.at(q+".service", "invalid service name %q: must match %s", c.Service, composeService)
		}
		d.nonNegative(q+".stop_timeout", c.StopTimeout)
		d.nonNegative(q+".timeout", c.Timeout)
		c.File = absIn(dir, c.File)
		c.Timeout = orDefault(c.Timeout, DefaultRuntimeTimeout)
	}
	if given(RuntimeSystemd) {
		u := ensure(r.Systemd)
		r.Systemd = u
		q := p + ".systemd"
		d.rewordBool(q + ".user")
		switch {
		case u.Unit == "":
			d.at(q+".unit", "required: the unit name, such as redis.service")
		case !systemdUnit.MatchString(u.Unit):
			d.at(q+".unit", "invalid unit name %q: expected a name with its type, such as redis.service", u.Unit)
		}
		d.nonNegative(q+".timeout", u.Timeout)
		u.Timeout = orDefault(u.Timeout, DefaultRuntimeTimeout)
		d.checkVersionCommands(q, u.VersionCommands)
		u.Dir = dir
	}
	if given(RuntimeExec) {
		e := ensure(r.Exec)
		r.Exec = e
		q := p + ".exec"
		for _, f := range []struct{ field, val, what string }{
			{"start", e.Start, "a shell command that starts the service and returns"},
			{"stop", e.Stop, "a shell command that stops the service"},
		} {
			if strings.TrimSpace(f.val) == "" {
				d.at(q+"."+f.field, "required: %s", f.what)
			}
		}
		if strings.TrimSpace(e.Status) == "" && e.PIDFile == "" && !d.hasErrorsUnder(q+".status") {
			d.at(q+".status", "required (or pid_file): a shell command exiting 0 when the service runs, 1 to 3 when it is stopped")
		}
		d.nonNegative(q+".timeout", e.Timeout)
		d.checkCommandEnv(q, e.Env, e.EnvFrom)
		d.checkVersionCommands(q, e.VersionCommands)
		e.Dir = orDefault(absIn(dir, e.Dir), dir)
		e.PIDFile = absIn(e.Dir, e.PIDFile)
		e.Timeout = orDefault(e.Timeout, DefaultRuntimeTimeout)
	}
}

// validateStop checks a backup's stop list: services of the lab, each
// with a runtime that can stop it, named once.
func (d *decoder) validateStop(p string, b *Backup, l *Lab) {
	d.checkStopList(p+".stop", b.Stop, l)
	if b.Provider != ProviderPgBackRest || b.PgBackRest == nil {
		return
	}
	c := b.PgBackRest.Cluster
	if c.Service != "" {
		d.checkStopList(p+".pgbackrest.cluster.service", []string{c.Service}, l)
	}
	d.checkStopList(p+".pgbackrest.cluster.dependents", c.Dependents, l)
	if i := slices.Index(c.Dependents, c.Service); c.Service != "" && i >= 0 {
		d.at(fmt.Sprintf("%s.pgbackrest.cluster.dependents[%d]", p, i), "service %q runs the cluster: it cannot depend on it", c.Service)
	}
}

// checkStopList checks a list of services homelab stops and starts (at
// field p; a one-element list for a single service field): each is in
// the lab, has a runtime, is not blue/green, and is listed once.
func (d *decoder) checkStopList(p string, names []string, l *Lab) {
	single := strings.HasSuffix(p, ".service")
	for i, name := range names {
		q := fmt.Sprintf("%s[%d]", p, i)
		if single {
			q = p
		}
		s := l.Services[name]
		switch {
		case name == "":
			d.at(q, "empty service name")
		case s == nil:
			known := slices.Sorted(maps.Keys(l.Services))
			if len(known) == 0 {
				d.at(q, "unknown service %q: the lab file has no services", name)
			} else {
				d.at(q, "unknown service %q (known: %s)", name, strings.Join(known, ", "))
			}
		case s.Deploy != nil && s.Runtime == nil:
			if strings.HasSuffix(p, ".stop") {
				d.at(q, "service %q is blue/green: a backup does not stop it (HAProxy keeps one color serving); back up its data without stopping it", name)
			} else {
				d.at(q, "service %q is blue/green: homelab does not stop it (HAProxy keeps one color serving)", name)
			}
		case s.Runtime.Kind() == "":
			d.at(q, "service %q has no runtime, so it cannot be stopped: give it one (compose, exec or systemd)", name)
		case slices.Index(names, name) < i:
			d.at(q, "service %q is listed twice", name)
		}
	}
}

// absIn makes path absolute against dir; "" stays "".
func absIn(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// checkVersionCommands checks that set_version is a template that parses
// and that the two commands come together.
func (d *decoder) checkVersionCommands(p string, v VersionCommands) {
	if v.SetVersion != "" {
		if _, err := template.New("set_version").Option("missingkey=error").Parse(v.SetVersion); err != nil {
			d.at(p+".set_version", "bad template: %v", strings.TrimPrefix(err.Error(), "template: set_version:"))
		}
		if !strings.Contains(v.SetVersion, "{{") {
			d.at(p+".set_version", "must use {{.Version}}: the command installs the version it is given")
		}
	}
	switch {
	case v.SetVersion != "" && strings.TrimSpace(v.Version) == "":
		d.at(p+".version", "required with set_version: a command printing the installed version")
	case v.Version != "" && v.SetVersion == "":
		d.at(p+".set_version", "required with version: a command installing {{.Version}}")
	}
}

// checkCommandEnv checks a runtime's env and env_from: variable names
// (POSIX), none of homelab's own HOMELAB_ names, no inline value under a
// name that looks secret (as a repository's env), env_from naming a
// variable of homelab's environment, and no name set by both.
func (d *decoder) checkCommandEnv(p string, env, envFrom map[string]string) {
	name := func(path, k string) bool {
		switch {
		case !envName.MatchString(k):
			d.errorf(d.keys[path], path, "invalid variable name %q: letters, digits and '_', not starting with a digit", k)
		case strings.HasPrefix(k, reservedEnvPrefix):
			d.errorf(d.keys[path], path, "%s is reserved: homelab sets the HOMELAB_ variables of its commands itself (HOMELAB_SERVICE, HOMELAB_ACTION, HOMELAB_SAGA)", k)
		default:
			return true
		}
		return false
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		q := p + ".env." + k
		switch {
		case !name(q, k):
		case looksSecret(k):
			d.errorf(d.keys[q], q, "inline secret not allowed: use env_from (%s: NAME_OF_A_VARIABLE_HOLDING_IT)", k)
		case inEnvFrom(envFrom, k):
			d.errorf(d.keys[q], q, "%s is also in env_from: give it once", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(envFrom)) {
		q := p + ".env_from." + k
		if !name(q, k) {
			continue
		}
		switch from := envFrom[k]; {
		case strings.TrimSpace(from) == "":
			d.at(q, "required: the name of a variable of homelab's environment holding the value")
		case !envName.MatchString(from):
			// The value is not quoted back: it may be a secret pasted inline.
			d.at(q, "not a variable name: env_from takes the name of a variable of homelab's environment holding the value (%s: NAME_OF_A_VARIABLE_HOLDING_IT), never the value", k)
		}
	}
}

// inEnvFrom reports whether env_from has an entry for k (with any value).
func inEnvFrom(envFrom map[string]string, k string) bool { _, ok := envFrom[k]; return ok }
