package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"homelab/internal/lab"
)

// DescribeVerify says in words how l's rotation is checked ("" when it is
// not).
func DescribeVerify(l *lab.Leaf) string {
	if l.Verify.Address == "" {
		return ""
	}
	s := "TLS handshake with " + l.Verify.Address
	if sni := l.ServerName(); sni != "" {
		s += " (SNI " + sni + ")"
	}
	return s
}

// Served connects to addr (host:port), does a TLS handshake sending
// serverName as SNI (none when empty) and returns the leaf certificate the
// server presented. The chain is not verified: callers compare the exact
// certificate (Fingerprint), which is stricter.
func Served(ctx context.Context, addr, serverName string) (*x509.Certificate, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 3 * time.Second},
		Config:    &tls.Config{ServerName: serverName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate presented")
	}
	return certs[0], nil
}

// ResendInterval is how often a signal reload (pid_file, container) is
// repeated while the TLS check still sees the old certificate: a consumer
// busy with a reload may drop a signal (HAProxy's master ignores SIGUSR2
// for about 100 ms after each load, so the second of two quick reloads is
// lost).
const ResendInterval = time.Second

// waitServed retries a handshake with l's verify address every interval
// until it presents the certificate with fingerprint want, or until
// l.Verify.Timeout (or ctx) ends; the error then says what was served
// instead. what names want in messages ("the new certificate"). When
// resend is not nil it is called every ResendInterval while the wrong
// certificate is served.
func waitServed(ctx context.Context, l *lab.Leaf, want, what string, interval time.Duration, resend func() error) error {
	if l.Verify.Address == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.Verify.Timeout)
	defer cancel()
	sni := l.ServerName()
	start := time.Now()
	lastSend := start
	for {
		cert, err := Served(ctx, l.Verify.Address, sni)
		var last string
		switch {
		case err != nil:
			last = err.Error()
		case Fingerprint(cert) == want:
			return nil
		default:
			last = fmt.Sprintf("it serves sha256 %s (%s, expires %s)", short(Fingerprint(cert)), cert.Subject.CommonName, day(cert.NotAfter))
			if resend != nil && time.Since(lastSend) >= ResendInterval {
				lastSend = time.Now()
				if err := resend(); err != nil {
					last += fmt.Sprintf("; repeating the reload: %v", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s (SNI %q) did not serve %s (sha256 %s) within %s: %s",
				l.Verify.Address, sni, what, short(want), time.Since(start).Round(100*time.Millisecond), last)
		case <-time.After(interval):
		}
	}
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}
