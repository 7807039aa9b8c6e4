package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"

	"homelab/internal/lab"
)

// Kinds of Cert.
const (
	KindCA   = "ca"
	KindLeaf = "leaf"
)

// Cert is the state on disk of the CA or of one leaf, judged at a time.
type Cert struct {
	// Name is "ca" for the CA, else the leaf's name in the lab file.
	Name string `json:"name"`
	// Kind is KindCA or KindLeaf.
	Kind     string `json:"kind"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// Exists is false when the certificate file does not exist (not
	// issued yet); the fields below are then zero.
	Exists  bool     `json:"exists"`
	Subject string   `json:"subject,omitempty"`
	Issuer  string   `json:"issuer,omitempty"`
	SANs    []string `json:"sans,omitempty"`
	Serial  string   `json:"serial,omitempty"`
	// SHA256 is the certificate's fingerprint (hex, see Fingerprint).
	SHA256    string    `json:"sha256,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// DaysLeft is whole days until NotAfter, rounded down; negative once
	// expired.
	DaysLeft int `json:"days_left"`
	// WindowStart is when the rotation window opens: NotAfter minus the
	// rotation_window fraction of the lifetime.
	WindowStart time.Time `json:"window_start"`
	Expired     bool      `json:"expired"`
	// InWindow is true from WindowStart on (expired included).
	InWindow bool `json:"in_window"`
	// KeyMatch is true when the key file holds the certificate's key.
	KeyMatch bool `json:"key_match"`
	// SignedByCA is true when the current CA signed the certificate (for
	// the CA: it is self-signed). False for leaves left behind by
	// rotate-ca.
	SignedByCA bool `json:"signed_by_ca"`
	// SANsMatch is true when a leaf's SANs are those of the lab file.
	SANsMatch bool `json:"sans_match"`
	// BundleFile is the leaf's bundle_file ("" when none); BundleMatch is
	// true when it holds this certificate and key (or there is none).
	BundleFile  string `json:"bundle_file,omitempty"`
	BundleMatch bool   `json:"bundle_match"`
	// Issues says in words what needs attention; empty when all is well.
	Issues []string `json:"issues"`

	pair *Pair // parsed certificate and key, when both are good
}

// OK reports whether nothing about c needs attention.
func (c *Cert) OK() bool { return len(c.Issues) == 0 }

// Report is the state of the CA and of every leaf of a lab.
type Report struct {
	Now time.Time `json:"now"`
	// Configured is false when the lab has no leaves and no CA exists: a
	// lab that does not use homelab's certificates (Healthy is then true).
	Configured     bool    `json:"configured"`
	Dir            string  `json:"dir"`
	RotationWindow float64 `json:"rotation_window"`
	CA             Cert    `json:"ca"`
	// Leaves are sorted by name.
	Leaves []Cert `json:"leaves"`
	// Healthy is true when no certificate has issues: none missing,
	// expired, in its rotation window, with a key that does not match, or
	// out of date with the CA or the lab file.
	Healthy bool `json:"healthy"`
}

// Status reads the CA and every leaf of l from disk and judges them at
// now. Problems with the files (missing, unreadable, mismatched) are
// reported in each Cert's Issues, not as an error; the error is reserved
// for a lab that cannot be judged at all (none today).
func Status(l *lab.Lab, now time.Time) (Report, error) {
	c := &l.Certs
	r := Report{Now: now, Dir: c.Dir, RotationWindow: float64(c.RotationWindow), Leaves: []Cert{}, Healthy: true}
	r.CA = inspectCA(c, now)
	r.Configured = r.CA.Exists || len(c.Leaves) > 0
	for _, name := range c.LeafNames() {
		r.Leaves = append(r.Leaves, inspectLeaf(c, c.Leaves[name], r.CA.pair, now))
	}
	r.CA.Issues = nonNil(r.CA.Issues)
	for i := range r.Leaves {
		r.Leaves[i].Issues = nonNil(r.Leaves[i].Issues)
	}
	if r.Configured {
		r.Healthy = r.CA.OK()
		for _, lc := range r.Leaves {
			r.Healthy = r.Healthy && lc.OK()
		}
	}
	return r, nil
}

// WindowStart returns when a certificate valid from notBefore to notAfter
// enters its rotation window: notAfter minus window (a fraction between 0
// and 1) of its lifetime.
func WindowStart(notBefore, notAfter time.Time, window float64) time.Time {
	life := notAfter.Sub(notBefore)
	return notAfter.Add(-time.Duration(float64(life) * window))
}

// DaysLeft returns the whole days from now until notAfter, rounded down
// (negative once expired: -1 on the first day after).
func DaysLeft(notAfter, now time.Time) int {
	return int(math.Floor(notAfter.Sub(now).Hours() / 24))
}

func inspectCA(c *lab.Certs, now time.Time) Cert {
	ca := Cert{Name: "ca", Kind: KindCA, CertFile: c.CACert(), KeyFile: c.CAKey(), SANsMatch: true, BundleMatch: true}
	cert := inspect(&ca, float64(c.RotationWindow), now)
	if cert == nil {
		if !ca.Exists {
			ca.Issues = []string{"no CA: run homelab cert init"}
		}
		return ca
	}
	ca.SignedByCA = cert.IsCA && signedBy(cert, cert)
	if !ca.SignedByCA {
		ca.Issues = append(ca.Issues, "not a self-signed CA certificate")
	}
	if ca.InWindow && !ca.Expired {
		ca.Issues = append(ca.Issues, fmt.Sprintf("due for rotation: %d days left (window opened %s): run homelab cert rotate-ca", ca.DaysLeft, day(ca.WindowStart)))
	}
	return ca
}

func inspectLeaf(c *lab.Certs, l *lab.Leaf, ca *Pair, now time.Time) Cert {
	lc := Cert{Name: l.Name, Kind: KindLeaf, CertFile: l.CertFile, KeyFile: l.KeyFile, BundleFile: l.BundleFile, BundleMatch: true}
	cert := inspect(&lc, float64(c.RotationWindow), now)
	if cert == nil {
		if !lc.Exists {
			lc.Issues = []string{"not issued: run homelab cert issue " + l.Name}
		}
		return lc
	}
	if ca != nil {
		lc.SignedByCA = signedBy(cert, ca.Cert)
	}
	if !lc.SignedByCA {
		lc.Issues = append(lc.Issues, "not signed by the current CA: run homelab cert rotate "+l.Name)
	}
	lc.SANsMatch = sameSANs(cert, l.SANs)
	if !lc.SANsMatch {
		lc.Issues = append(lc.Issues, "SANs differ from the lab file: run homelab cert rotate "+l.Name)
	}
	if l.BundleFile != "" && lc.pair != nil {
		if why := checkBundle(l.BundleFile, lc.pair); why != "" {
			lc.BundleMatch = false
			lc.Issues = append(lc.Issues, why)
		}
	}
	if lc.InWindow && !lc.Expired {
		lc.Issues = append(lc.Issues, fmt.Sprintf("due for rotation: %d days left (window opened %s)", lc.DaysLeft, day(lc.WindowStart)))
	}
	return lc
}

// inspect fills the fields common to the CA and leaves from c's files and
// returns the certificate, or nil when it could not be read.
func inspect(c *Cert, window float64, now time.Time) *x509.Certificate {
	certPEM, err := os.ReadFile(c.CertFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	c.Exists = true
	if err != nil {
		c.Issues = append(c.Issues, fmt.Sprintf("unreadable certificate: %v", err))
		return nil
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		c.Issues = append(c.Issues, fmt.Sprintf("bad certificate %s: %v", c.CertFile, err))
		return nil
	}
	c.Subject = cert.Subject.String()
	c.Issuer = cert.Issuer.String()
	c.SANs = SANs(cert)
	c.Serial = cert.SerialNumber.Text(16)
	c.SHA256 = Fingerprint(cert)
	c.NotBefore, c.NotAfter = cert.NotBefore, cert.NotAfter
	c.DaysLeft = DaysLeft(cert.NotAfter, now)
	c.WindowStart = WindowStart(cert.NotBefore, cert.NotAfter, window)
	c.Expired = !now.Before(cert.NotAfter)
	c.InWindow = !now.Before(c.WindowStart)
	if c.Expired {
		c.Issues = append(c.Issues, fmt.Sprintf("expired on %s", day(cert.NotAfter)))
	}
	keyPEM, err := os.ReadFile(c.KeyFile)
	if err != nil {
		c.Issues = append(c.Issues, fmt.Sprintf("key: %v", err))
		return cert
	}
	p, err := ParsePair(certPEM, keyPEM)
	switch {
	case errors.Is(err, ErrKeyMismatch):
		c.Issues = append(c.Issues, fmt.Sprintf("key %s does not match the certificate", c.KeyFile))
	case err != nil:
		c.Issues = append(c.Issues, fmt.Sprintf("bad key %s: %v", c.KeyFile, err))
	default:
		c.KeyMatch = true
		c.pair = p
	}
	return cert
}

// checkBundle returns why the bundle file does not hold p ("" when it does).
func checkBundle(path string, p *Pair) string {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "bundle_file missing: run homelab cert rotate"
	}
	if err != nil {
		return fmt.Sprintf("bundle_file: %v", err)
	}
	bp, err := ParsePair(data, data)
	if err != nil || !bp.Cert.Equal(p.Cert) {
		return "bundle_file does not hold the certificate and key: run homelab cert rotate"
	}
	return ""
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// nonNil makes an empty list render as [] in JSON.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
