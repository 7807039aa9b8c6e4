package health

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
)

// webServer is a real HTTP server with the paths the tests probe:
//
//	/ok       200 "ok"
//	/fail     503
//	/created  201
//	/moved    302 to /fail (not followed by the probe)
//	/big      200, 2 MiB of "x" then "needle"
//	/hang     never answers (until the client gives up)
func webServer(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "all systems ok") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	mux.HandleFunc("/created", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 2<<20) + "needle"))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	ts := httptest.NewUnstartedServer(mux)
	// The TLS tests' refused handshakes are expected: keep them off the log.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) }) // runs first: no handler left hanging
	return ts
}

func httpProbe(url string, timeout time.Duration) *lab.Health {
	return &lab.Health{HTTP: &lab.HTTPProbe{URL: url, Timeout: timeout}}
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	ts := webServer(t, false)
	runConformance(t, conformance{
		kind: lab.ProbeHTTP,
		healthy: func(t *testing.T) *lab.Health {
			h := httpProbe(ts.URL+"/ok", 5*time.Second)
			h.HTTP.Expect, h.HTTP.Body = 200, "ok"
			return h
		},
		unhealthy: func(t *testing.T) (*lab.Health, string) {
			return httpProbe(ts.URL+"/fail", 5*time.Second), "HTTP 503 in "
		},
		hang: func(t *testing.T, timeout time.Duration) (*lab.Health, Options) {
			return httpProbe(ts.URL+"/hang", timeout), Options{}
		},
	})

	tests := []struct {
		name    string
		probe   lab.HTTPProbe
		healthy bool
		detail  string // a regexp-free substring
	}{
		{"default range", lab.HTTPProbe{URL: ts.URL + "/ok"}, true, "HTTP 200 in "},
		{"201 in the default range", lab.HTTPProbe{URL: ts.URL + "/created"}, true, "HTTP 201 in "},
		{"expect 201", lab.HTTPProbe{URL: ts.URL + "/created", Expect: 201}, true, "HTTP 201"},
		{"expect 200, got 201", lab.HTTPProbe{URL: ts.URL + "/created", Expect: 200}, false, ", want 200"},
		{"503", lab.HTTPProbe{URL: ts.URL + "/fail"}, false, ", want 200-399"},
		{"redirect not followed", lab.HTTPProbe{URL: ts.URL + "/moved"}, true, "HTTP 302"},
		{"redirect when 200 wanted", lab.HTTPProbe{URL: ts.URL + "/moved", Expect: 200}, false, "HTTP 302"},
		{"body found", lab.HTTPProbe{URL: ts.URL + "/ok", Body: "systems ok"}, true, "HTTP 200"},
		{"body missing", lab.HTTPProbe{URL: ts.URL + "/ok", Body: "ready"}, false, `body lacks "ready"`},
		{"body beyond the first MiB", lab.HTTPProbe{URL: ts.URL + "/big", Body: "needle"}, false, `body lacks "needle"`},
		{"404", lab.HTTPProbe{URL: ts.URL + "/nothing"}, false, "HTTP 404"},
		{"closed port", lab.HTTPProbe{URL: "http://" + closedAddr(t) + "/"}, false, "connection refused"},
		{"token in the query stays out", lab.HTTPProbe{URL: "http://" + closedAddr(t) + "/?token=s3cr3t-t0ken"}, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.probe
			p.Timeout = 5 * time.Second
			r := Probe(t.Context(), service("web", &lab.Health{HTTP: &p}), Options{})
			t.Logf("detail %q", r.Detail)
			if r.Healthy != tt.healthy || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("healthy=%v detail=%q, want %v and %q", r.Healthy, r.Detail, tt.healthy, tt.detail)
			}
			if strings.Contains(r.Detail, "s3cr3t") {
				t.Errorf("detail %q repeats the URL's token", r.Detail)
			}
		})
	}
}

// writeCA writes the certificate of the TLS test server as a PEM CA file.
func writeCA(t *testing.T, ts *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// otherCA writes a PEM file holding a CA that signed nothing the tests
// serve.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another lab CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHTTPS(t *testing.T) {
	t.Parallel()
	ts := webServer(t, true)
	ca := writeCA(t, ts)
	runConformance(t, conformance{
		kind: lab.ProbeHTTP,
		healthy: func(t *testing.T) *lab.Health {
			h := httpProbe(ts.URL+"/ok", 5*time.Second)
			h.HTTP.CAFile, h.HTTP.Body = ca, "ok"
			return h
		},
		unhealthy: func(t *testing.T) (*lab.Health, string) {
			// The system's roots do not know the lab's CA.
			return httpProbe(ts.URL+"/ok", 5*time.Second), "TLS: certificate signed by unknown authority"
		},
		hang: func(t *testing.T, timeout time.Duration) (*lab.Health, Options) {
			h := httpProbe(ts.URL+"/hang", timeout)
			h.HTTP.CAFile = ca
			return h, Options{}
		},
	})

	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		probe   lab.HTTPProbe
		healthy bool
		detail  string
	}{
		{"custom CA", lab.HTTPProbe{URL: ts.URL + "/ok", CAFile: ca}, true, "HTTP 200 in "},
		{"custom CA, failing service", lab.HTTPProbe{URL: ts.URL + "/fail", CAFile: ca}, false, "HTTP 503"},
		{"the wrong CA", lab.HTTPProbe{URL: ts.URL + "/ok", CAFile: otherCA(t)}, false, "TLS: certificate signed by unknown authority"},
		{"insecure", lab.HTTPProbe{URL: ts.URL + "/ok", Insecure: true}, true, "HTTP 200"},
		{"no CA file", lab.HTTPProbe{URL: ts.URL + "/ok", CAFile: filepath.Join(t.TempDir(), "gone.pem")}, false, "ca_file: open "},
		{"not PEM", lab.HTTPProbe{URL: ts.URL + "/ok", CAFile: empty}, false, "no PEM certificate"},
		{"wrong host name", lab.HTTPProbe{URL: strings.Replace(ts.URL, "127.0.0.1", "localhost", 1) + "/ok", CAFile: ca}, false, "TLS: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.probe
			p.Timeout = 5 * time.Second
			r := Probe(t.Context(), service("web", &lab.Health{HTTP: &p}), Options{})
			t.Logf("detail %q", r.Detail)
			if r.Healthy != tt.healthy || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("healthy=%v detail=%q, want %v and %q", r.Healthy, r.Detail, tt.healthy, tt.detail)
			}
		})
	}
}
