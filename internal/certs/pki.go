package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Backdate is how far before "now" a new certificate's NotBefore is set,
// so that a peer whose clock is a little behind accepts it.
const Backdate = 5 * time.Minute

// ErrKeyMismatch is matched (errors.Is) when a private key does not belong
// to the certificate it is paired with.
var ErrKeyMismatch = errors.New("private key does not match the certificate")

// Pair is a certificate and its private key, parsed and as PEM.
type Pair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // one CERTIFICATE block
	KeyPEM  []byte // one PRIVATE KEY block (PKCS #8)
}

// Bundle returns the certificate followed by the key: the single PEM file
// HAProxy's `crt` loads.
func (p *Pair) Bundle() []byte {
	return append(append([]byte(nil), p.CertPEM...), p.KeyPEM...)
}

// Fingerprint returns the lowercase hex SHA-256 of the certificate's DER
// encoding (what `openssl x509 -fingerprint -sha256` shows, without colons).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// NewCA creates a self-signed CA: an ECDSA P-256 key, subject CN
// commonName, valid from now-Backdate until now+validity, allowed to sign
// leaf certificates only (path length 0).
func NewCA(commonName string, validity time.Duration, now time.Time) (*Pair, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("new CA: validity must be positive, got %s", validity)
	}
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"homelab"}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, tmpl, key, key)
}

// SplitSANs splits subject alternative names into DNS names and IP
// addresses.
func SplitSANs(sans []string) (dns []string, ips []net.IP) {
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, s)
		}
	}
	return dns, ips
}

// IssueLeaf creates a server certificate for sans (DNS names, wildcards
// and IPs) signed by ca: an ECDSA P-256 key, valid from now-Backdate for
// validity, key usage digitalSignature, extended key usage serverAuth, CN
// the first SAN. It fails when ca is not valid at now, or when the leaf
// would outlive it. The result has been checked: its key matches its
// certificate (tls.X509KeyPair) and it verifies against ca.
func IssueLeaf(ca *Pair, sans []string, validity time.Duration, now time.Time) (*Pair, error) {
	switch {
	case len(sans) == 0:
		return nil, errors.New("issue: no SANs")
	case validity <= 0:
		return nil, fmt.Errorf("issue: validity must be positive, got %s", validity)
	case !now.Before(ca.Cert.NotAfter):
		return nil, fmt.Errorf("issue: the CA expired on %s: run homelab cert rotate-ca", ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	case now.Add(validity).After(ca.Cert.NotAfter):
		return nil, fmt.Errorf("issue: a %s leaf would outlive the CA (it expires %s): shorten the validity or run homelab cert rotate-ca",
			validity, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	dns, ips := SplitSANs(sans)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: sans[0]},
		DNSNames:              dns,
		IPAddresses:           ips,
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	p, err := sign(tmpl, ca.Cert, key, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	if _, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		return nil, fmt.Errorf("issue: the new pair does not load: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := p.Cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("issue: the new certificate does not verify against the CA: %w", err)
	}
	return p, nil
}

func newKeyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	return key, serial.Add(serial, big.NewInt(1)), nil
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, parentKey crypto.Signer) (*Pair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Pair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}, nil
}

// ParseCert returns the first certificate in PEM data.
func ParseCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ParseKey returns the first private key in PEM data (PKCS #8, SEC 1 EC
// or PKCS #1 RSA).
func ParseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key block")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		var k any
		var err error
		switch b.Type {
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
}

// ParsePair parses a certificate and a key (PEM) and checks that they
// belong together; a mismatch is an error matching ErrKeyMismatch.
func ParsePair(certPEM, keyPEM []byte) (*Pair, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, ErrKeyMismatch
	}
	return &Pair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// SANs returns a certificate's DNS names and IP addresses as strings, in
// that order.
func SANs(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// sameSANs reports whether c is valid for exactly sans (in any order).
func sameSANs(c *x509.Certificate, sans []string) bool {
	got := SANs(c)
	want := slices.Clone(sans)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// signedBy reports whether c was signed by ca.
func signedBy(c, ca *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, ca.RawSubject) && c.CheckSignatureFrom(ca) == nil
}
