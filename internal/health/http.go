package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"homelab/internal/lab"
)

// maxBody is how much of a response body an http probe reads.
const maxBody = 1 << 20

// probeHTTP GETs p.URL. Redirects are not followed: a 3xx is the answer
// (healthy under the default 200-399). No proxy is used: a probe checks
// the service itself.
func probeHTTP(ctx context.Context, p *lab.HTTPProbe) (string, error) {
	tr := &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{MinVersion: tls.VersionTLS12},
	}
	defer tr.CloseIdleConnections()
	switch {
	case p.Insecure:
		tr.TLSClientConfig.InsecureSkipVerify = true
	case p.CAFile != "":
		// Read at every probe: the CA file may be rotated.
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return "", unhealthyf("ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return "", unhealthyf("ca_file %s: no PEM certificate in it", p.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "homelab-health")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	got := fmt.Sprintf("HTTP %d in %s", resp.StatusCode, ms(time.Since(start)))
	switch {
	case p.Expect != 0 && resp.StatusCode != p.Expect:
		return "", unhealthyf("%s, want %d", got, p.Expect)
	case p.Expect == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
		return "", unhealthyf("%s, want 200-399", got)
	}
	if p.Body != "" {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return "", fmt.Errorf("%s, reading the body: %w", got, err)
		}
		if !bytes.Contains(body, []byte(p.Body)) {
			return "", unhealthyf("%s, body lacks %q", got, p.Body)
		}
	}
	return got, nil
}
