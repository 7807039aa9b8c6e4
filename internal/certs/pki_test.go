package certs

import (
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// epoch is the tests' fixed clock, in an explicit non-UTC zone.
var epoch = time.Date(2026, time.March, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600))

func mustCA(t *testing.T, now time.Time) *Pair {
	t.Helper()
	ca, err := NewCA("test CA", 87600*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestNewCA(t *testing.T) {
	ca := mustCA(t, epoch)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero || c.MaxPathLen != 0 {
		t.Errorf("CA constraints: IsCA=%v valid=%v maxPathLenZero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("KeyUsage %v lacks CertSign", c.KeyUsage)
	}
	if c.Subject.CommonName != "test CA" || !signedBy(c, c) {
		t.Errorf("subject %q, self-signed %v", c.Subject, signedBy(c, c))
	}
	if !c.NotBefore.Equal(epoch.Add(-Backdate)) || !c.NotAfter.Equal(epoch.Add(87600*time.Hour)) {
		t.Errorf("validity %s .. %s", c.NotBefore, c.NotAfter)
	}
	if _, err := ParsePair(ca.CertPEM, ca.KeyPEM); err != nil {
		t.Errorf("ParsePair: %v", err)
	}
	if !strings.Contains(string(ca.KeyPEM), "BEGIN PRIVATE KEY") {
		t.Errorf("key is not PKCS #8 PEM:\n%s", ca.KeyPEM)
	}
}

func TestIssueLeaf(t *testing.T) {
	ca := mustCA(t, epoch)
	sans := []string{"gitlab.lab", "*.gitlab.lab", "127.0.0.1", "::1"}
	p, err := IssueLeaf(ca, sans, 2160*time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Cert
	if !slices.Equal(c.DNSNames, []string{"gitlab.lab", "*.gitlab.lab"}) {
		t.Errorf("DNSNames = %v", c.DNSNames)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !c.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IPAddresses = %v", c.IPAddresses)
	}
	if !slices.Equal(SANs(c), sans) {
		t.Errorf("SANs = %v, want %v", SANs(c), sans)
	}
	if c.Subject.CommonName != "gitlab.lab" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if !c.NotBefore.Equal(epoch.Add(-Backdate)) || !c.NotAfter.Equal(epoch.Add(2160*time.Hour)) {
		t.Errorf("validity %s .. %s", c.NotBefore, c.NotAfter)
	}
	if c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("usage: IsCA=%v KeyUsage=%v ExtKeyUsage=%v", c.IsCA, c.KeyUsage, c.ExtKeyUsage)
	}
	if _, err := ParsePair(p.CertPEM, p.KeyPEM); err != nil {
		t.Errorf("ParsePair: %v", err)
	}
	if b, err := ParsePair(p.Bundle(), p.Bundle()); err != nil || !b.Cert.Equal(c) {
		t.Errorf("bundle does not hold the pair: %v", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"gitlab.lab", true}, {"registry.gitlab.lab", true}, {"127.0.0.1", true}, {"::1", true},
		{"a.b.gitlab.lab", false}, {"other.lab", false}, {"10.0.0.1", false},
	} {
		_, err := c.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: roots, CurrentTime: epoch.Add(time.Hour),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != tc.ok {
			t.Errorf("verify for %s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	other := mustCA(t, epoch)
	if signedBy(c, other.Cert) || !signedBy(c, ca.Cert) {
		t.Error("signedBy does not tell CAs apart")
	}
}

func TestIssueLeafRefuses(t *testing.T) {
	ca, err := NewCA("short CA", 1000*time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		validity time.Duration
		now      time.Time
		want     string
	}{
		{"outlives the CA", 2000 * time.Hour, epoch, "would outlive the CA"},
		{"CA expired", time.Hour, epoch.Add(1001 * time.Hour), "the CA expired on"},
		{"zero validity", 0, epoch, "validity must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := IssueLeaf(ca, []string{"a.lab"}, tc.validity, tc.now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParsePairMismatch(t *testing.T) {
	ca := mustCA(t, epoch)
	a, _ := IssueLeaf(ca, []string{"a.lab"}, time.Hour, epoch)
	b, _ := IssueLeaf(ca, []string{"b.lab"}, time.Hour, epoch)
	if _, err := ParsePair(a.CertPEM, b.KeyPEM); err != ErrKeyMismatch {
		t.Errorf("err = %v, want ErrKeyMismatch", err)
	}
	if _, err := ParsePair(a.CertPEM, []byte("junk")); err == nil || err == ErrKeyMismatch {
		t.Errorf("junk key: err = %v", err)
	}
}

func TestWindowAndDaysLeft(t *testing.T) {
	// A 90-day leaf issued at epoch (NotBefore is backdated by 5 minutes).
	notBefore, notAfter := epoch.Add(-Backdate), epoch.Add(90*24*time.Hour)
	start := WindowStart(notBefore, notAfter, 1.0/3)
	if want := notAfter.Add(-(90*24*time.Hour + Backdate) / 3); !start.Equal(want) {
		t.Fatalf("WindowStart = %s, want %s", start, want)
	}
	for _, tc := range []struct {
		name     string
		now      time.Time
		daysLeft int
		inWindow bool
	}{
		{"fresh", epoch, 90, false},
		{"day 59", epoch.Add(59 * 24 * time.Hour), 31, false},
		{"a minute before the window", start.Add(-time.Minute), 30, false},
		{"window opens", start, 30, true},
		{"day 61", epoch.Add(61 * 24 * time.Hour), 29, true},
		{"23h left", notAfter.Add(-23 * time.Hour), 0, true},
		{"just expired", notAfter.Add(time.Hour), -1, true},
		{"expired 3 days", notAfter.Add(72 * time.Hour), -3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DaysLeft(notAfter, tc.now); got != tc.daysLeft {
				t.Errorf("DaysLeft = %d, want %d", got, tc.daysLeft)
			}
			if got := !tc.now.Before(start); got != tc.inWindow {
				t.Errorf("in window = %v, want %v", got, tc.inWindow)
			}
		})
	}
	// A fraction of the lifetime: 0.25 of a 10-year CA is its last 2.5 years.
	caStart := WindowStart(epoch, epoch.Add(87600*time.Hour), 0.25)
	if want := epoch.Add(87600 * time.Hour * 3 / 4); !caStart.Equal(want) {
		t.Errorf("CA WindowStart = %s, want %s", caStart, want)
	}
}
