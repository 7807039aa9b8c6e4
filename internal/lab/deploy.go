package lab

import (
	"net/url"
	"strings"
	"time"
)

// StrategyBlueGreen is the one deploy strategy: two colors behind HAProxy.
const StrategyBlueGreen = "blue-green"

// The two colors of a blue/green service.
const (
	Blue  = "blue"
	Green = "green"
)

// Colors are the color names, blue first.
var Colors = []string{Blue, Green}

const (
	// DefaultDeployHealthyWithin is how long a started color has to pass
	// its health probe, and the public URL to answer from the new version
	// after the flip, when the deploy section does not say.
	DefaultDeployHealthyWithin = 2 * time.Minute
	// DefaultHAProxyTimeout bounds `haproxy -c` and a reload command.
	DefaultHAProxyTimeout = 30 * time.Second
)

// Deploy is how `homelab deploy` deploys a service: blue/green, two
// copies of it (colors) behind HAProxy, one serving (active) and one idle;
// a deploy starts the idle color on the new version, gates it on its own
// health probe, and flips HAProxy's backend to it.
type Deploy struct {
	// Strategy is StrategyBlueGreen (the default and only one).
	Strategy string `yaml:"strategy"`
	// Colors are the two copies, blue and green, both required.
	Colors DeployColors `yaml:"colors"`
	// HAProxy is the proxy in front of them.
	HAProxy *HAProxy `yaml:"haproxy"`
	// PublicURL is the http:// or https:// URL behind HAProxy that
	// answers with the serving version in its body (a /version endpoint):
	// after a flip it must answer with the new version.
	PublicURL string `yaml:"public_url"`
	// Insecure skips certificate verification of an https PublicURL.
	Insecure bool `yaml:"insecure"`
	// HealthyWithin bounds the health gate of a started color and the
	// wait for PublicURL after a flip. Default DefaultDeployHealthyWithin.
	HealthyWithin time.Duration `yaml:"healthy_within"`
	// Migrations is the service's SQL migrations directory (relative to
	// the lab file): one subdirectory per release version holding that
	// release's *.sql files (*.down.sql are ignored), checked by
	// `homelab migrations check` and by deploy (expand/contract).
	Migrations string `yaml:"migrations"`
}

// DeployColors are the two colors of a blue/green service.
type DeployColors struct {
	Blue  *Color `yaml:"blue"`
	Green *Color `yaml:"green"`
}

// Color returns the color named name (Blue or Green), nil for another.
func (c DeployColors) Color(name string) *Color {
	switch name {
	case Blue:
		return c.Blue
	case Green:
		return c.Green
	}
	return nil
}

// Color is one copy of a blue/green service: its own runtime (whose
// set_version, or compose image tag, gives it a version), its own
// address (where HAProxy sends traffic) and its own health probe (the
// gate before a flip).
type Color struct {
	Runtime *Runtime `yaml:"runtime"`
	// Address is host:port, HAProxy's server address for this color.
	Address string `yaml:"address"`
	// Health is the color's own probe, on its own address; required.
	Health *Health `yaml:"health"`
}

// Service returns the color as a service of its own, named
// "<service>-<color>", for the runtime and health packages.
func (c *Color) Service(service, color string) *Service {
	return &Service{Name: service + "-" + color, Runtime: c.Runtime, Health: c.Health}
}

// HAProxy is the HAProxy in front of a blue/green service. homelab owns
// the server lines of Backend in Config: it rewrites them, and nothing
// else of the file, to one server line for the active color.
type HAProxy struct {
	// Config is HAProxy's configuration file (relative to the lab file).
	Config string `yaml:"config"`
	// Backend is the name of the backend section whose servers homelab
	// writes; the section must exist in Config.
	Backend string `yaml:"backend"`
	// ServerOptions follow the address on the server line ("check inter
	// 1s"); optional.
	ServerOptions string `yaml:"server_options"`
	// Binary is the haproxy used to check a configuration (haproxy -c -f).
	// Default: haproxy in PATH, else /usr/sbin/haproxy.
	Binary string `yaml:"binary"`
	// Reload is how HAProxy reloads its configuration.
	Reload HAProxyReload `yaml:"reload"`
	// Timeout bounds `haproxy -c` and a reload command. Default
	// DefaultHAProxyTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// HAProxyReload is how HAProxy, run in master-worker mode (-W or
// master-worker in its global section), reloads: exactly one of the
// fields. A master-worker reload starts new workers on the new
// configuration that take over the listening sockets while the old ones
// finish their connections: no connection is dropped.
type HAProxyReload struct {
	// MasterSocket is the master CLI socket (haproxy -S PATH): homelab
	// sends it "reload".
	MasterSocket string `yaml:"master_socket"`
	// PIDFile holds the master's pid (haproxy -p PATH): homelab sends it
	// SIGUSR2.
	PIDFile string `yaml:"pid_file"`
	// Command is a shell command that reloads HAProxy ("systemctl reload
	// haproxy", whose unit sends SIGUSR2 to the master).
	Command string `yaml:"command"`
}

// HAProxyReloadKinds are the fields of HAProxyReload.
var HAProxyReloadKinds = []string{"master_socket", "pid_file", "command"}

// validateDeploy checks a service's deploy section and fills in its
// defaults.
func (d *decoder) validateDeploy(p string, s *Service) {
	dp := s.Deploy
	if dp == nil || d.bad[p] {
		return
	}
	switch dp.Strategy {
	case "":
		dp.Strategy = StrategyBlueGreen
	case StrategyBlueGreen:
	default:
		d.at(p+".strategy", "unknown strategy %q (known: %s)", dp.Strategy, StrategyBlueGreen)
	}
	if s.Runtime != nil {
		d.at(p, "a blue/green service has its runtimes in deploy.colors: leave the service's own runtime out")
	}
	dir := d.labDir()
	for _, name := range Colors {
		q := p + ".colors." + name
		c := dp.Colors.Color(name)
		if c == nil {
			if !d.bad[p+".colors"] {
				d.at(q, "required: the %s color (runtime, address, health)", name)
			}
			continue
		}
		cs := c.Service(s.Name, name)
		if c.Runtime == nil {
			d.at(q+".runtime", "required: how the %s color runs (compose, exec or systemd)", name)
		} else {
			d.validateRuntime(q+".runtime", cs)
			d.checkVersioning(q+".runtime", c.Runtime, "deploys")
		}
		switch {
		case c.Address == "":
			d.at(q+".address", "required: host:port where HAProxy reaches the %s color", name)
		case !validHostPort(c.Address):
			d.at(q+".address", "bad address %q: expected host:port such as 127.0.0.1:8081", c.Address)
		}
		if c.Health == nil {
			d.at(q+".health", "required: the probe that gates a flip to the %s color", name)
		} else {
			d.validateHealth(q+".health", cs)
			c.Health.setDefaults(dir)
		}
	}
	if b, g := dp.Colors.Blue, dp.Colors.Green; b != nil && g != nil && b.Address != "" && b.Address == g.Address {
		d.at(p+".colors.green.address", "the same address as blue: each color needs its own")
	}
	h := dp.HAProxy
	if h == nil {
		d.at(p+".haproxy", "required: the HAProxy configuration, backend and reload")
	} else {
		q := p + ".haproxy"
		if h.Config == "" {
			d.at(q+".config", "required: HAProxy's configuration file")
		}
		switch {
		case h.Backend == "":
			d.at(q+".backend", "required: the backend section whose servers homelab writes")
		case strings.ContainsAny(h.Backend, " \t\n#"):
			d.at(q+".backend", "bad backend name %q", h.Backend)
		}
		if strings.ContainsAny(h.ServerOptions, "\n#") {
			d.at(q+".server_options", "must be one line, without comments")
		}
		r := h.Reload
		d.exclusive(q+".reload", true, HAProxyReloadKinds, r.MasterSocket != "", r.PIDFile != "", strings.TrimSpace(r.Command) != "")
		d.nonNegative(q+".timeout", h.Timeout)
		h.Config = absIn(dir, h.Config)
		h.Reload.MasterSocket = absIn(dir, h.Reload.MasterSocket)
		h.Reload.PIDFile = absIn(dir, h.Reload.PIDFile)
		h.Timeout = orDefault(h.Timeout, DefaultHAProxyTimeout)
	}
	if dp.PublicURL == "" {
		d.at(p+".public_url", "required: the URL behind HAProxy that answers with the serving version")
	} else if u, err := url.Parse(dp.PublicURL); err == nil && u.User != nil {
		// Not quoted back: the credentials are a secret.
		d.at(p+".public_url", "credentials in the URL are not allowed: the public URL must answer without them")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.at(p+".public_url", "bad URL %q: expected http:// or https://host/path", dp.PublicURL)
	}
	d.nonNegative(p+".healthy_within", dp.HealthyWithin)
	dp.HealthyWithin = orDefault(dp.HealthyWithin, DefaultDeployHealthyWithin)
	dp.Migrations = absIn(dir, dp.Migrations)
}
