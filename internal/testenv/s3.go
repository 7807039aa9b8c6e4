package testenv

import (
	"context"
	"fmt"
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
)

// S3Server is a throwaway S3 server for one test: versitygw
// (github.com/versity/versitygw, Apache-2.0) with its posix backend,
// serving the buckets in Dir over plain HTTP on a loopback port, with a
// random root access key and secret key. scripts/install-versitygw.sh
// installs the server.
type S3Server struct {
	// Endpoint is host:port (no scheme), as minio-go wants it.
	Endpoint string
	// URL is http://host:port, as restic's s3: URLs and rclone want it.
	URL string
	// AccessKeyID and SecretAccessKey are the root credentials. The
	// secret is a secret in the tests' sense: never in argv.
	AccessKeyID, SecretAccessKey string
	// Region is the region the server says it is in.
	Region string
	// Dir holds the buckets (the posix backend's root): Dir/<bucket>/<key>.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	once sync.Once
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
	s, err := StartS3(VersityGW(t), filepath.Join(t.TempDir(), "s3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartS3 is S3 for callers without a testing.TB (testscript commands):
// it starts versitygw bin serving the buckets in dir (created if needed)
// and returns the server, which the caller stops (Stop).
func StartS3(bin, dir string) (*S3Server, error) {
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
	var err error
	// A port that was free a moment ago can be taken before versitygw
	// binds it; try a few.
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(bin); err == nil {
			return s, nil
		}
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
	logf, err := os.CreateTemp("", "homelab-versitygw-*.log")
	if err != nil {
		return err
	}
	s.log = logf
	cmd := exec.Command(bin, "--port", s.Endpoint, "posix", s.Dir)
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
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		resp, err := http.DefaultClient.Do(req)
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
	})
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
		Creds:  credentials.NewStaticV4(s.AccessKeyID, s.SecretAccessKey, ""),
		Region: s.Region,
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
