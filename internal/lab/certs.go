package lab

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of the certs section.
const (
	// DefaultCertsDir is where the CA and the leaves live, relative to the
	// lab file's directory.
	DefaultCertsDir = "pki"
	// DefaultCAValidity is the CA's lifetime: 10 years.
	DefaultCAValidity = 87600 * time.Hour
	// DefaultLeafValidity is a leaf's lifetime: 90 days.
	DefaultLeafValidity = 2160 * time.Hour
	// DefaultRotationWindow is the part of a certificate's lifetime, at its
	// end, in which it is due for rotation: the last third.
	DefaultRotationWindow = Fraction(1.0 / 3)
	// DefaultReloadSignal is sent by pid_file and container reloads.
	DefaultReloadSignal = "HUP"
	// DefaultReloadTimeout bounds one reload (a command, docker kill).
	DefaultReloadTimeout = time.Minute
	// DefaultVerifyTimeout is how long the TLS check after a reload keeps
	// retrying until the new certificate is served (reloads are
	// asynchronous).
	DefaultVerifyTimeout = 10 * time.Second
)

// File names of the CA under Certs.Dir.
const (
	CACertName   = "ca.pem"        // the CA certificate
	CAKeyName    = "ca.key"        // its private key (0600)
	CABundleName = "ca-bundle.pem" // what clients trust: the CA, plus the previous one after rotate-ca
)

// ReloadSignals are the signals a pid_file or container reload may send
// (written without the SIG prefix).
var ReloadSignals = []string{"HUP", "USR1", "USR2"}

// ReloadKinds are the ways to tell a leaf's consumer about a new pair; a
// leaf has at most one.
var ReloadKinds = []string{"pid_file", "container", "command", "traefik_file"}

// Certs configures `homelab cert`: a local CA (ECDSA P-256) and the leaf
// certificates it signs, rotated before they expire.
//
//	certs:
//	  dir: ./pki                  # ca.pem, ca.key, ca-bundle.pem and the leaves
//	  ca: {common_name: "devlab CA", validity: 87600h}
//	  rotation_window: 0.33       # due in the last third of the lifetime
//	  leaves:
//	    gitlab:
//	      sans: ["gitlab.lab", "*.gitlab.lab", "127.0.0.1"]
//	      validity: 2160h
//	      bundle_file: ./pki/gitlab.bundle.pem   # cert + key, for HAProxy's crt
//	      reload: {pid_file: /run/haproxy.pid, signal: USR2}
//	      verify: {address: 127.0.0.1:443, server_name: gitlab.lab}
type Certs struct {
	// Dir holds ca.pem, ca.key (0600), ca-bundle.pem and, by default, the
	// leaves. Relative to the lab file's directory. Default ./pki.
	Dir string `yaml:"dir"`
	// CA describes the certificate authority that `cert init` creates.
	CA CertsCA `yaml:"ca"`
	// RotationWindow is the final part of a certificate's lifetime, as a
	// fraction between 0 and 1 exclusive, in which it is due for rotation:
	// 0.33 rotates a 90-day leaf once fewer than ~30 days are left, and
	// makes the 10-year CA due in its last ~3.3 years. Default 1/3.
	RotationWindow Fraction `yaml:"rotation_window"`
	// Leaves are the server certificates, by name (a file name).
	Leaves map[string]*Leaf `yaml:"leaves"`
}

// CertsCA is the local certificate authority.
type CertsCA struct {
	// CommonName is the CA's subject CN. Default "<lab name> CA".
	CommonName string `yaml:"common_name"`
	// Validity is the CA's lifetime. Default 87600h (10 years).
	Validity time.Duration `yaml:"validity"`
}

// Leaf is one server certificate signed by the CA.
type Leaf struct {
	Name string `yaml:"-"`
	// SANs are the DNS names (a wildcard "*.example.lab" is allowed as the
	// whole first label) and IP addresses the certificate is valid for.
	// Required. Load lowercases DNS names.
	SANs []string `yaml:"sans"`
	// Validity is the leaf's lifetime. Default 2160h (90 days).
	Validity time.Duration `yaml:"validity"`
	// CertFile is the PEM certificate. Default <dir>/<name>.pem.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM (PKCS #8) private key, written 0600. Default
	// <dir>/<name>.key.
	KeyFile string `yaml:"key_file"`
	// BundleFile, when set, is also written: the certificate followed by
	// the key in one PEM file (0600), which is what HAProxy's `crt` loads.
	BundleFile string `yaml:"bundle_file"`
	// Reload tells the leaf's consumer about a new pair.
	Reload Reload `yaml:"reload"`
	// Verify is the TLS endpoint that must serve the new leaf after a
	// reload; rotation is rolled back when it does not.
	Verify Verify `yaml:"verify"`
}

// Reload is how a leaf's consumer picks up a new pair: at most one of
// PIDFile, Container, Command and TraefikFile. With none, rotation only
// swaps the files (for consumers that watch them). Signal reloads
// (PIDFile, Container) are repeated every second while the TLS check
// still sees the old certificate, because a consumer busy with a reload
// may drop a signal (HAProxy's master ignores SIGUSR2 for about 100 ms
// after each load); a pid_file signal is not repeated while the process
// blocks it or has it pending (HAProxy's master blocks SIGUSR2 while it
// reloads, and a second reload queued behind the first cannot take over
// the still-starting worker's listening sockets).
type Reload struct {
	// PIDFile: Signal is sent to the process whose pid the file holds
	// (HAProxy in master-worker mode reloads on USR2 to the master).
	PIDFile string `yaml:"pid_file"`
	// Container: `docker kill --signal Signal CONTAINER`.
	Container string `yaml:"container"`
	// Command is run with /bin/sh -c in the lab file's directory
	// ("systemctl reload haproxy"); a non-zero exit is a failed reload.
	Command string `yaml:"command"`
	// TraefikFile is a Traefik dynamic configuration file (file provider,
	// watch on) that homelab rewrites atomically with a tls.certificates
	// entry per leaf using it; Traefik reloads when it changes.
	TraefikFile string `yaml:"traefik_file"`
	// Signal for PIDFile and Container: HUP, USR1 or USR2 (a SIG prefix is
	// accepted). Default HUP.
	Signal string `yaml:"signal"`
	// Timeout bounds the command or docker kill. Default 1m.
	Timeout time.Duration `yaml:"timeout"`
}

// Kind returns which of ReloadKinds is set, or "" for none.
func (r Reload) Kind() string {
	for i, set := range []bool{r.PIDFile != "", r.Container != "", r.Command != "", r.TraefikFile != ""} {
		if set {
			return ReloadKinds[i]
		}
	}
	return ""
}

// Verify is a TLS endpoint serving a leaf.
type Verify struct {
	// Address is host:port to connect to.
	Address string `yaml:"address"`
	// ServerName is sent as SNI. Default: the first DNS SAN that is not a
	// wildcard (none when the leaf has only IPs and wildcards).
	ServerName string `yaml:"server_name"`
	// Timeout is how long to retry until the expected certificate is
	// served. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Fraction is a number between 0 and 1 (exclusive) in the lab file.
type Fraction float64

// UnmarshalYAML accepts a YAML number only, so that a duration such as
// "720h" gets a clear message.
func (f *Fraction) UnmarshalYAML(n *yaml.Node) error {
	var v float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&v) != nil {
		return fmt.Errorf("expected a fraction of the lifetime between 0 and 1 such as 0.33, got %s", describe(n))
	}
	*f = Fraction(v)
	return nil
}

// CACert returns the CA certificate's path.
func (c *Certs) CACert() string { return filepath.Join(c.Dir, CACertName) }

// CAKey returns the CA key's path.
func (c *Certs) CAKey() string { return filepath.Join(c.Dir, CAKeyName) }

// CABundle returns the path of the bundle clients should trust.
func (c *Certs) CABundle() string { return filepath.Join(c.Dir, CABundleName) }

// LeafNames returns the names of the leaves, sorted.
func (c *Certs) LeafNames() []string {
	return slices.Sorted(maps.Keys(c.Leaves))
}

// Leaf returns the named leaf or an error listing the known ones.
func (c *Certs) Leaf(name string) (*Leaf, error) {
	if lf, ok := c.Leaves[name]; ok {
		return lf, nil
	}
	if len(c.Leaves) == 0 {
		return nil, fmt.Errorf("unknown certificate %q: the lab file has no certs.leaves", name)
	}
	return nil, fmt.Errorf("unknown certificate %q (known: %s)", name, strings.Join(c.LeafNames(), ", "))
}

// ServerName returns the SNI for the verification of l: Verify.ServerName
// or the first DNS SAN that is not a wildcard, or "".
func (l *Leaf) ServerName() string {
	if l.Verify.ServerName != "" {
		return l.Verify.ServerName
	}
	for _, s := range l.SANs {
		if net.ParseIP(s) == nil && !strings.HasPrefix(s, "*.") {
			return s
		}
	}
	return ""
}

var (
	dnsLabel            = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	reloadContainerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	allDigits           = regexp.MustCompile(`^[0-9]+$`)
)

// checkDNSName returns why name is not a DNS name ("" when it is). With
// wildcard, "*." may be the whole first label.
func checkDNSName(name string, wildcard bool) string {
	rest := strings.ToLower(name)
	if wildcard {
		rest = strings.TrimPrefix(rest, "*.")
	}
	if len(rest) > 253 {
		return "longer than 253 characters"
	}
	labels := strings.Split(strings.TrimSuffix(rest, "."), ".")
	if allDigits.MatchString(labels[len(labels)-1]) {
		return "not an IP address, and a DNS name cannot end in a numeric label"
	}
	for _, label := range labels {
		switch {
		case strings.Contains(label, "*"):
			if wildcard {
				return `a wildcard must be the whole first label, as in "*.example.lab"`
			}
			return "no wildcard allowed here"
		case !dnsLabel.MatchString(label):
			return "not a DNS name or IP address (labels of letters, digits and inner hyphens, up to 63 each)"
		}
	}
	return ""
}

// validateCerts checks the certs section.
func (d *decoder) validateCerts(p string, c *Certs) {
	d.nonNegative(p+".ca.validity", c.CA.Validity)
	if d.present(p+".rotation_window") && !d.bad[p+".rotation_window"] && (c.RotationWindow <= 0 || c.RotationWindow >= 1) {
		d.at(p+".rotation_window", "must be between 0 and 1 exclusive (the last part of a lifetime in which rotation is due, such as 0.33), got %v", float64(c.RotationWindow))
	}
	caValidity := c.CA.Validity
	if caValidity <= 0 {
		caValidity = DefaultCAValidity
	}
	validateEntries(d, p+".leaves", c.Leaves, func(lp string, l *Leaf) { d.validateLeaf(lp, l, caValidity) })

	// No two files may be the same: one leaf would overwrite another, or
	// the CA. Paths are compared resolved as Load resolves them.
	base := filepath.Dir(d.file)
	dir := c.Dir
	if dir == "" {
		dir = DefaultCertsDir
	}
	dir = absPath(base, dir)
	owner := map[string]string{
		filepath.Join(dir, CACertName):   "the CA certificate",
		filepath.Join(dir, CAKeyName):    "the CA key",
		filepath.Join(dir, CABundleName): "the CA bundle",
	}
	for _, name := range c.LeafNames() {
		l := c.Leaves[name]
		lp := p + ".leaves." + name
		for _, f := range []struct{ field, path, def string }{
			{"cert_file", l.CertFile, name + ".pem"},
			{"key_file", l.KeyFile, name + ".key"},
			{"bundle_file", l.BundleFile, ""},
		} {
			path := f.path
			switch {
			case path == "" && f.def == "":
				continue
			case path == "":
				path = filepath.Join(dir, f.def)
			default:
				path = absPath(base, path)
			}
			if other, ok := owner[path]; ok {
				d.at(lp+"."+f.field, "same file as %s (%s)", other, path)
				continue
			}
			owner[path] = lp + "." + f.field
		}
	}
}

func (d *decoder) validateLeaf(p string, l *Leaf, caValidity time.Duration) {
	if len(l.SANs) == 0 && !d.bad[p+".sans"] {
		d.at(p+".sans", "required: at least one DNS name or IP address")
	}
	seen := map[string]int{}
	for i, san := range l.SANs {
		sp := fmt.Sprintf("%s.sans[%d]", p, i)
		key := strings.ToLower(san)
		if net.ParseIP(san) == nil {
			if why := checkDNSName(san, true); why != "" {
				d.at(sp, "bad SAN %q: %s", san, why)
				continue
			}
		} else {
			key = net.ParseIP(san).String()
		}
		if j, dup := seen[key]; dup {
			d.at(sp, "duplicate SAN %q (also sans[%d])", san, j)
		}
		seen[key] = i
	}
	d.nonNegative(p+".validity", l.Validity)
	if l.Validity > caValidity {
		d.at(p+".validity", "%s is longer than the CA's validity (%s): a leaf cannot outlive its CA", l.Validity, caValidity)
	}
	for _, f := range []struct{ field, v string }{{"cert_file", l.CertFile}, {"key_file", l.KeyFile}, {"bundle_file", l.BundleFile}} {
		if d.present(p+"."+f.field) && strings.TrimSpace(f.v) == "" {
			d.at(p+"."+f.field, "empty path: leave the field out for the default")
		}
	}
	d.validateReload(p+".reload", l.Reload)
	d.validateVerify(p+".verify", l.Verify)
}

func (d *decoder) validateReload(p string, r Reload) {
	if d.bad[p] {
		return
	}
	for i, e := range d.errs { // the decoder's "unknown field" gets the list of kinds
		if parent(e.Field) == p && strings.HasPrefix(e.Msg, "unknown field") {
			d.errs[i].Msg += fmt.Sprintf(" (reload kinds: %s)", strings.Join(ReloadKinds, ", "))
		}
	}
	d.exclusive(p, false, ReloadKinds, r.PIDFile != "", r.Container != "", r.Command != "", r.TraefikFile != "")
	for _, k := range ReloadKinds {
		if d.present(p+"."+k) && d.vals[p+"."+k].Value == "" {
			d.at(p+"."+k, "must not be empty")
		}
	}
	if r.Signal != "" {
		sig := strings.TrimPrefix(strings.ToUpper(r.Signal), "SIG")
		switch {
		case r.PIDFile == "" && r.Container == "":
			d.at(p+".signal", "only used with pid_file or container")
		case !slices.Contains(ReloadSignals, sig):
			d.at(p+".signal", "unknown reload signal %q (known: %s)", r.Signal, strings.Join(ReloadSignals, ", "))
		}
	}
	if r.Container != "" && !reloadContainerName.MatchString(r.Container) {
		d.at(p+".container", "bad container name %q", r.Container)
	}
	if r.Timeout != 0 && r.Command == "" && r.Container == "" {
		d.at(p+".timeout", "only used with command or container")
	}
	d.nonNegative(p+".timeout", r.Timeout)
}

func (d *decoder) validateVerify(p string, v Verify) {
	if d.bad[p] {
		return
	}
	if v.Address == "" {
		if v.ServerName != "" || v.Timeout != 0 {
			d.at(p+".address", "required when verify is set: the host:port serving the certificate")
		}
	} else if host, port, err := net.SplitHostPort(v.Address); err != nil || host == "" || port == "" {
		d.at(p+".address", "bad address %q: expected host:port such as 127.0.0.1:443", v.Address)
	}
	if v.ServerName != "" && net.ParseIP(v.ServerName) == nil {
		if why := checkDNSName(v.ServerName, false); why != "" {
			d.at(p+".server_name", "bad server name %q: %s", v.ServerName, why)
		}
	}
	d.nonNegative(p+".timeout", v.Timeout)
}

// setDefaults fills in the certs section's defaults; dir is the lab file's
// directory and labName the lab's name.
func (c *Certs) setDefaults(dir, labName string) {
	if c.Dir == "" {
		c.Dir = DefaultCertsDir
	}
	c.Dir = absPath(dir, c.Dir)
	if c.CA.CommonName == "" {
		c.CA.CommonName = labName + " CA"
	}
	if c.CA.Validity == 0 {
		c.CA.Validity = DefaultCAValidity
	}
	if c.RotationWindow == 0 {
		c.RotationWindow = DefaultRotationWindow
	}
	for name, l := range c.Leaves {
		l.Name = name
		for i, s := range l.SANs {
			if ip := net.ParseIP(s); ip != nil {
				l.SANs[i] = ip.String()
			} else {
				l.SANs[i] = strings.TrimSuffix(strings.ToLower(s), ".")
			}
		}
		if l.Validity == 0 {
			l.Validity = DefaultLeafValidity
		}
		if l.CertFile == "" {
			l.CertFile = filepath.Join(c.Dir, name+".pem")
		}
		l.CertFile = absPath(dir, l.CertFile)
		if l.KeyFile == "" {
			l.KeyFile = filepath.Join(c.Dir, name+".key")
		}
		l.KeyFile = absPath(dir, l.KeyFile)
		if l.BundleFile != "" {
			l.BundleFile = absPath(dir, l.BundleFile)
		}
		r := &l.Reload
		if r.PIDFile != "" {
			r.PIDFile = absPath(dir, r.PIDFile)
		}
		if r.TraefikFile != "" {
			r.TraefikFile = absPath(dir, r.TraefikFile)
		}
		if r.Signal == "" && (r.PIDFile != "" || r.Container != "") {
			r.Signal = DefaultReloadSignal
		}
		r.Signal = strings.TrimPrefix(strings.ToUpper(r.Signal), "SIG")
		if r.Timeout == 0 {
			r.Timeout = DefaultReloadTimeout
		}
		if l.Verify.Timeout == 0 {
			l.Verify.Timeout = DefaultVerifyTimeout
		}
	}
}
