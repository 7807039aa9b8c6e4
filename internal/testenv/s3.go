package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"homelab/internal/certs"
)

// S3Server is a throwaway S3 server for one test: versitygw
// (github.com/versity/versitygw, Apache-2.0) with its posix backend,
// serving the buckets in Dir over plain HTTP (or, from S3TLS, HTTPS) on a
// loopback port, with a random root access key and secret key.
// scripts/install-versitygw.sh installs the server.
type S3Server struct {
	// Endpoint is host:port (no scheme), as minio-go wants it.
	Endpoint string
	// URL is http://host:port (https:// from S3TLS), as restic's s3:
	// URLs and rclone want it.
	URL string
	// CAFile is the PEM file of the test CA that signed the server's
	// certificate for 127.0.0.1 (S3TLS); "" for plain HTTP.
	CAFile string
	// AccessKeyID and SecretAccessKey are the root credentials. The
	// secret is a secret in the tests' sense: never in argv.
	AccessKeyID, SecretAccessKey string
	// Region is the region the server says it is in.
	Region string
	// Dir holds the buckets (the posix backend's root): Dir/<bucket>/<key>.
	Dir string

	cmd    *exec.Cmd
	tlsDir string // the CA and the server's key pair (S3TLS)
	done   chan struct{}
	log    *os.File
	once   sync.Once
}

// VersityGW returns the path of the versitygw binary: $HOMELAB_VERSITYGW,
// or versitygw on PATH; it skips t (fails it under CI=true) when neither
// is there.
func VersityGW(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("HOMELAB_VERSITYGW"); bin != "" {
		return bin
	}
	p, err := exec.LookPath("versitygw")
	if err != nil {
		Missing(t, "versitygw (the S3 server) not found in PATH (scripts/install-versitygw.sh)")
	}
	return p
}

// S3 starts a throwaway S3 server for t and stops it on cleanup. The
// credentials reach versitygw through its environment
// (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY), never its argv.
func S3(t testing.TB) *S3Server {
	t.Helper()
	return s3For(t, StartS3)
}

// S3TLS is S3 over HTTPS (versitygw --cert --key): its certificate, for
// 127.0.0.1, is signed by a test CA whose PEM file is s.CAFile. Clients
// that reach S3 over https only (pgBackRest) need it.
func S3TLS(t testing.TB) *S3Server {
	t.Helper()
	return s3For(t, StartS3TLS)
}

// s3For starts a server for t with start, stopped on cleanup.
func s3For(t testing.TB, start func(bin, dir string) (*S3Server, error)) *S3Server {
	t.Helper()
	s, err := start(VersityGW(t), filepath.Join(t.TempDir(), "s3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartS3 is S3 for callers without a testing.TB (testscript commands):
// it starts versitygw bin serving the buckets in dir (created if needed)
// and returns the server, which the caller stops (Stop).
func StartS3(bin, dir string) (*S3Server, error) { return startS3(bin, dir, false) }

// StartS3TLS is S3TLS for callers without a testing.TB. The CA and the
// server's key pair are written to a directory of their own (not in dir,
// where they would be taken for buckets), removed by Stop.
func StartS3TLS(bin, dir string) (*S3Server, error) { return startS3(bin, dir, true) }

func startS3(bin, dir string, https bool) (*S3Server, error) {
	s := &S3Server{
		AccessKeyID:     "AK" + randHex(8),
		SecretAccessKey: randHex(20),
		Region:          "us-east-1",
		Dir:             dir,
		done:            make(chan struct{}),
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	if https {
		if err := s.makeCerts(); err != nil {
			return nil, err
		}
	}
	var err error
	// A port that was free a moment ago can be taken before versitygw
	// binds it; try a few.
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(bin); err == nil {
			return s, nil
		}
	}
	if s.tlsDir != "" {
		os.RemoveAll(s.tlsDir)
	}
	return nil, err
}

func (s *S3Server) start(bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.URL = "http://" + s.Endpoint
	args := []string{"--port", s.Endpoint}
	if s.tlsDir != "" {
		s.URL = "https://" + s.Endpoint
		args = append(args, "--cert", filepath.Join(s.tlsDir, "server.pem"), "--key", filepath.Join(s.tlsDir, "server.key"))
	}
	logf, err := os.CreateTemp("", "homelab-versitygw-*.log")
	if err != nil {
		return err
	}
	s.log = logf
	cmd := exec.Command(bin, append(args, "posix", s.Dir)...)
	cmd.Env = append(os.Environ(),
		"ROOT_ACCESS_KEY_ID="+s.AccessKeyID,
		"ROOT_SECRET_ACCESS_KEY="+s.SecretAccessKey,
		"VGW_REGION="+s.Region)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.Remove(logf.Name())
		return fmt.Errorf("start versitygw: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	// Ready when it answers an unauthenticated request (with a 403).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &http.Client{Transport: s.Transport()}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(logf.Name())
			logf.Close()
			os.Remove(logf.Name())
			return fmt.Errorf("versitygw exited at start: %s", out)
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("versitygw did not answer on %s within a minute", s.Endpoint)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills the server (it holds nothing that needs a clean stop) and
// removes its log. Safe to call twice; Dir stays until t's cleanup.
func (s *S3Server) Stop() {
	s.once.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			s.cmd.Process.Kill()
			<-s.done
		}
		if s.log != nil {
			s.log.Close()
			os.Remove(s.log.Name())
		}
		if s.tlsDir != "" {
			os.RemoveAll(s.tlsDir)
		}
	})
}

// makeCerts writes a test CA (s.CAFile) and a server key pair for
// 127.0.0.1 (IP SAN and common name) signed by it into a new directory, s.tlsDir (0755, the CA
// 0644: other users' clients read it).
func (s *S3Server) makeCerts() error {
	dir, err := os.MkdirTemp("", "homelab-s3-tls-")
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	now := time.Now()
	ca, err := certs.NewCA("homelab test S3 CA", 24*time.Hour, now)
	if err != nil {
		return err
	}
	leaf, err := loopbackLeaf(ca, now)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": leaf.CertPEM, "server.key": leaf.KeyPEM} {
		mode := os.FileMode(0o644)
		if name == "server.key" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			return err
		}
	}
	s.tlsDir, s.CAFile = dir, filepath.Join(dir, "ca.pem")
	return nil
}

// loopbackLeaf issues a server certificate for 127.0.0.1 signed by ca,
// naming it both as an IP SAN (which Go's TLS checks for an IP host) and
// as a DNS SAN (pgBackRest 2.45 compares the host with the DNS SANs
// only: "unable to find hostname '127.0.0.1' in certificate common name
// or subject alternative names"); certs.IssueLeaf files an IP as an IP
// SAN only.
func loopbackLeaf(ca *certs.Pair, now time.Time) (*certs.Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		DNSNames:     []string{"127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-certs.Backdate),
		NotAfter:     now.Add(23 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &certs.Pair{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})}, nil
}

// Transport is an HTTP transport that trusts s.CAFile (the default one
// for plain HTTP).
func (s *S3Server) Transport() http.RoundTripper {
	if s.CAFile == "" {
		return http.DefaultTransport
	}
	pem, _ := os.ReadFile(s.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return tr
}

// Log returns what the server printed so far.
func (s *S3Server) Log() string {
	if s.log == nil {
		return ""
	}
	b, _ := os.ReadFile(s.log.Name())
	return string(b)
}

// Client returns a minio-go client with the root credentials.
func (s *S3Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(s.AccessKeyID, s.SecretAccessKey, ""),
		Region:    s.Region,
		Secure:    s.CAFile != "",
		Transport: s.Transport(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bucket creates a bucket with a fresh name starting with prefix and
// returns its name.
func (s *S3Server) Bucket(t testing.TB, prefix string) string {
	t.Helper()
	name := prefix + "-" + randHex(4)
	if err := s.Client(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("make bucket %s: %v\n%s", name, err, s.Log())
	}
	return name
}

// Env is the environment restic and the AWS SDKs read the credentials
// from: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretAccessKey,
		"AWS_DEFAULT_REGION=" + s.Region,
	}
}

// ResticURL is the restic repository URL of bucket/prefix on s
// (s3:http://127.0.0.1:PORT/bucket/prefix).
func (s *S3Server) ResticURL(bucket, prefix string) string {
	u := "s3:" + s.URL + "/" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u
}
