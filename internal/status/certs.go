package status

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"homelab/internal/certs"
)

// Certificate states (CertStatus.State), most urgent first.
const (
	// CertExpired: past its NotAfter.
	CertExpired = "expired"
	// CertMissing: configured but its certificate file does not exist
	// (a leaf not issued yet, or no CA).
	CertMissing = "missing"
	// CertProblem: the certificate has issues other than its dates: it
	// cannot be read, its key does not match, a previous CA signed it, its
	// SANs or bundle are out of date with the lab file.
	CertProblem = "problem"
	// CertRotate: inside its rotation window (and not expired): expiring,
	// due for `homelab cert rotate` (or rotate-ca).
	CertRotate = "rotate"
	// CertOK: nothing needs attention.
	CertOK = "ok"
)

// CertStatus is the CA or a leaf certificate as status shows it: what
// certs.Status found on disk, without paths, keys or fingerprints.
type CertStatus struct {
	// Name is "ca" for the CA, else the leaf's name in the lab file.
	Name string
	// Kind is certs.KindCA or certs.KindLeaf.
	Kind string
	// Subject is the certificate's subject; "" when it was not read.
	Subject string
	// NotAfter and WindowStart (when the rotation window opens) are zero
	// when the certificate was not read (missing or unreadable); DaysLeft
	// is then 0.
	NotAfter, WindowStart time.Time
	// DaysLeft is whole days until NotAfter, rounded down; negative once
	// expired.
	DaysLeft int
	// InWindow is true from WindowStart on (expired included).
	InWindow bool
	Expired  bool
	// Issues say in words what needs attention (certs.Cert.Issues).
	Issues []string
	// State is one of CertOK, CertRotate, CertProblem, CertMissing and
	// CertExpired.
	State string
}

// Read reports whether the certificate was read: its subject and dates
// are known.
func (c CertStatus) Read() bool { return !c.NotAfter.IsZero() }

// AddCerts lists the lab's certificates in r, from certs.Status: the CA
// first, then the leaves sorted by name. When the lab uses no
// certificates (cr.Configured is false) r.Certs stays nil and nothing
// changes.
//
// Every certificate that is not CertOK makes r unhealthy, so `homelab
// status` exits 1: missing, expired, with an issue, and also one merely
// inside its rotation window. That last one still works, but it is
// expiring: the point of the window is that someone (or the daemon's
// rotation) acts before the expiry date, and status is what cron and
// monitoring watch.
//
// It is separate from Build, which only reads the catalog, because the
// certificates are read from disk: the CLI and the daemon call
// certs.Status themselves.
func (r *Report) AddCerts(cr certs.Report) {
	r.Certs = nil
	if !cr.Configured {
		return
	}
	leaves := slices.SortedFunc(slices.Values(cr.Leaves), func(a, b certs.Cert) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range append([]certs.Cert{cr.CA}, leaves...) {
		cs := CertStatus{
			Name: c.Name, Kind: c.Kind, Subject: c.Subject,
			NotAfter: c.NotAfter, WindowStart: c.WindowStart, DaysLeft: c.DaysLeft,
			InWindow: c.InWindow, Expired: c.Expired,
			Issues: slices.Clone(c.Issues),
		}
		cs.State = certState(c)
		if cs.State != CertOK {
			r.Healthy = false
		}
		r.Certs = append(r.Certs, cs)
	}
}

// certState judges c, the most urgent state first. The dates are checked
// here, not only through c.Issues, so that a certificate inside its
// window is never OK whatever certs words its issues.
func certState(c certs.Cert) string {
	switch {
	case !c.Exists:
		return CertMissing
	case c.Expired:
		return CertExpired
	case c.InWindow:
		return CertRotate
	case len(c.Issues) > 0:
		return CertProblem
	}
	return CertOK
}

// CertProblems lists the certificates' problems as counted phrases, in a
// fixed order (most urgent first): "1 cert expired", "2 certs missing",
// "1 cert with issues", "1 cert expiring" (inside its rotation window).
// Empty when every certificate is OK or the lab has none.
func (r Report) CertProblems() []string {
	n := map[string]int{}
	for _, c := range r.Certs {
		n[c.State]++
	}
	var parts []string
	for _, p := range []struct{ state, what string }{
		{CertExpired, "expired"}, {CertMissing, "missing"}, {CertProblem, "with issues"}, {CertRotate, "expiring"},
	} {
		if k := n[p.state]; k > 0 {
			parts = append(parts, fmt.Sprintf("%d cert%s %s", k, plural(k), p.what))
		}
	}
	return parts
}

// Mark is how a certificate's state is shown, in capitals when it
// needs attention: "ok", "ROTATE", "EXPIRED", "MISSING", or for
// CertProblem its first issue in words.
func (c CertStatus) Mark() string {
	switch c.State {
	case CertRotate:
		return "ROTATE"
	case CertExpired:
		return "EXPIRED"
	case CertMissing:
		return "MISSING"
	case CertProblem:
		if len(c.Issues) > 0 {
			return c.Issues[0]
		}
		return "PROBLEM"
	}
	return c.State
}
