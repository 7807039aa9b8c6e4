package s3mirror_test

import (
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"homelab/internal/backup"
	"homelab/internal/backup/providertest"
	"homelab/internal/backup/s3mirror"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// TestProvider runs the provider conformance suite on one versitygw
// server: each case mirrors the prefix data/ of a source bucket, reached
// through a reverse proxy of its own (so the copies between it and the
// destination are streamed, and a backup can be stalled), into a fresh
// destination bucket of the same server (so a drill's copies are
// server-side).
func TestProvider(t *testing.T) {
	srv := testenv.S3(t)
	providertest.Run(t, providertest.Harness{
		Kinds: []providertest.RepoKind{mirrorKind(srv)},
		New: func(t *testing.T, _ string) (backup.Provider, providertest.Source) {
			return &s3mirror.Provider{PartSize: partSize, Parallel: 4}, newBucketSource(t, srv)
		},
	})
}

// The environment variables the lab's S3 locations name the keys by.
const (
	srcKeyEnv    = "HOMELAB_PT_SRC_KEY"
	srcSecretEnv = "HOMELAB_PT_SRC_SECRET"
	dstKeyEnv    = "HOMELAB_PT_DST_KEY"
	dstSecretEnv = "HOMELAB_PT_DST_SECRET"
)

// destPrefix is the destination's prefix: snapshots are stored under
// mirrors/<target>/.
const destPrefix = "mirrors"

// mirrorKind is an s3-mirror destination: a fresh bucket of srv, at
// prefix mirrors, with the server's keys by environment. Damage alters
// every object stored inside a snapshot through the posix backend's
// files; Stored lists the manifests as a bare S3 client sees them.
func mirrorKind(srv *testenv.S3Server) providertest.RepoKind {
	return providertest.RepoKind{Name: "s3", New: func(t *testing.T, _ string) providertest.Repo {
		t.Setenv(dstKeyEnv, srv.AccessKeyID)
		t.Setenv(dstSecretEnv, srv.SecretAccessKey)
		bucket := srv.Bucket(t, "dest")
		c := srv.Client(t)
		return providertest.Repo{
			Place: func(spec *lab.Backup) {
				spec.Destination = lab.S3Location{Endpoint: srv.URL, Bucket: bucket, Prefix: destPrefix,
					S3Credentials: lab.S3Credentials{AccessKeyIDEnv: dstKeyEnv, SecretAccessKeyEnv: dstSecretEnv, Region: srv.Region}}
			},
			Secrets: []string{srv.AccessKeyID, srv.SecretAccessKey},
			Damage:  func(t *testing.T) { damageSnapshots(t, filepath.Join(srv.Dir, bucket, destPrefix)) },
			Stored:  func(t *testing.T) []string { return storedSnapshots(t, c, bucket) },
		}
	}}
}

// damageSnapshots alters every object stored inside a snapshot under
// root (the posix backend's directory of the destination prefix:
// <target>/<snapshot ID>/<key>), leaving the manifests alone: the first
// byte of each is flipped (an empty one gets one), behind the server's
// back, so its stored ETag no longer matches its content.
func damageSnapshots(t *testing.T, root string) {
	t.Helper()
	damaged := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if len(strings.Split(rel, string(filepath.Separator))) < 3 { // a manifest: <target>/<id>.manifest.json
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			b = []byte{0}
		}
		b[0] ^= 0xff
		damaged++
		return os.WriteFile(path, b, 0o644) // the same file: its attributes (ETag, metadata) stay
	})
	if err != nil || damaged == 0 {
		t.Fatalf("no snapshot object to damage under %s (%v)", root, err)
	}
}

// storedSnapshots returns the IDs of the snapshots in bucket, whichever
// target made them: the <id>.manifest.json objects under
// mirrors/<target>/, sorted.
func storedSnapshots(t *testing.T, c *minio.Client, bucket string) []string {
	t.Helper()
	ctx := t.Context()
	var ids []string
	for dir := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: destPrefix + "/"}) {
		if dir.Err != nil {
			t.Fatal(dir.Err)
		}
		if !strings.HasSuffix(dir.Key, "/") {
			continue
		}
		for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: dir.Key}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, dir.Key), ".manifest.json"); ok {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// srcPrefix is the prefix of the source bucket a target mirrors;
// outsideKey is an object of the bucket outside it, which no backup
// takes and no restore touches.
const (
	srcPrefix  = "data/"
	outsideKey = "outside/keep.txt"
)

var targets atomic.Int64

// bucketSource is the prefix data/ of a bucket on the shared server:
// keys with spaces and unicode, an empty object, content types and user
// metadata. The provider reaches it through proxy; the test's client c
// reaches the server directly.
type bucketSource struct {
	srv      *testenv.S3Server
	c        *minio.Client
	proxy    *stallProxy
	name     string // the target's, unique on the server
	bucket   string
	outside  string // the state of outsideKey
	changes  int
	restores int
}

func newBucketSource(t *testing.T, srv *testenv.S3Server) *bucketSource {
	t.Helper()
	t.Setenv(srcKeyEnv, srv.AccessKeyID)
	t.Setenv(srcSecretEnv, srv.SecretAccessKey)
	s := &bucketSource{srv: srv, c: srv.Client(t), proxy: newStallProxy(t, srv),
		name: fmt.Sprintf("mirror%d", targets.Add(1)), bucket: srv.Bucket(t, "src")}
	bin := make([]byte, 3000)
	for i := range bin {
		bin[i] = byte(i * 31)
	}
	fill(t, s.c, s.bucket, srcPrefix, map[string]object{
		"plain.txt":                {body: []byte("plain\n"), contentType: "text/plain"},
		"with space/file name.txt": {body: []byte("spaces"), contentType: "text/plain; charset=utf-8", meta: map[string]string{"Owner": "ops team"}},
		"ünïcödé/ファイル.txt":         {body: []byte("unicode"), contentType: "text/plain", meta: map[string]string{"Lang": "ja", "Build": "42"}},
		"blob.bin":                 {body: bin, contentType: "application/octet-stream"},
		"empty":                    {body: nil, contentType: "application/x-empty"},
	})
	fill(t, s.c, s.bucket, "", map[string]object{outsideKey: {body: []byte("not the target's"), contentType: "text/plain"}})
	s.outside = describe(t, s.c, s.bucket, "outside/")
	return s
}

// Spec is the target of the suite's source: the one place these tests
// build a lab.Backup for it.
func (s *bucketSource) Spec() *lab.Backup {
	return &lab.Backup{
		Name:     s.name,
		Provider: lab.ProviderS3Mirror,
		Source: lab.Source{S3Location: lab.S3Location{Endpoint: s.proxy.URL, Bucket: s.bucket, Prefix: srcPrefix,
			S3Credentials: lab.S3Credentials{AccessKeyIDEnv: srcKeyEnv, SecretAccessKeyEnv: srcSecretEnv, Region: s.srv.Region}}},
		Drill: lab.Drill{Checks: []lab.Check{{Object: "ünïcödé/ファイル.txt"}, {MinObjects: 3}}},
	}
}

// State is the prefix's objects; it also fails t if the object outside
// the prefix changed (a restore in place went beyond the prefix).
func (s *bucketSource) State(t *testing.T) string {
	t.Helper()
	if got := describe(t, s.c, s.bucket, "outside/"); got != s.outside {
		t.Errorf("the object outside the source prefix changed:\n got %s\nwant %s", got, s.outside)
	}
	return describe(t, s.c, s.bucket, srcPrefix)
}

// describe returns the objects of bucket under prefix, one line each:
// the key without the prefix, size, MD5 of the content, content type and
// user metadata (state), sorted.
func describe(t *testing.T, c *minio.Client, bucket, prefix string) string {
	t.Helper()
	var lines []string
	for k, v := range state(t, c, bucket, prefix) {
		lines = append(lines, fmt.Sprintf("%q %s", k, v))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// Change overwrites an object (new content, type and metadata), adds one
// and deletes one; the drill checks' object stays.
func (s *bucketSource) Change(t *testing.T) {
	t.Helper()
	s.changes++
	n := s.changes
	fill(t, s.c, s.bucket, srcPrefix, map[string]object{
		"plain.txt":                      {body: fmt.Appendf(nil, "plain, version %d\n", n), contentType: "text/markdown", meta: map[string]string{"Version": fmt.Sprint(n)}},
		fmt.Sprintf("added %d/ñ.txt", n): {body: []byte("added"), contentType: "text/plain"},
	})
	if err := s.c.RemoveObject(t.Context(), s.bucket, srcPrefix+"with space/file name.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Destination is a new bucket of the source's server (the restore
// creates it); what was restored there is its objects under the source
// prefix, and nothing may be outside it.
func (s *bucketSource) Destination(t *testing.T) (backup.Destination, func(t *testing.T) string) {
	s.restores++
	bucket := fmt.Sprintf("%s-restored-%d", s.name, s.restores)
	return backup.Destination{Bucket: bucket}, func(t *testing.T) string {
		t.Helper()
		for k := range state(t, s.c, bucket, "") {
			if !strings.HasPrefix(k, srcPrefix) {
				t.Errorf("restored bucket %s holds %q, outside the source prefix", bucket, k)
			}
		}
		return describe(t, s.c, bucket, srcPrefix)
	}
}

// Break removes the source bucket.
func (s *bucketSource) Break(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if err := s.c.RemoveObject(ctx, s.bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.c.RemoveBucket(ctx, s.bucket); err != nil {
		t.Fatal(err)
	}
}

// Stall adds the object stall.bin, whose download through the proxy never
// ends: the backup is underway and stuck once it asks for it.
func (s *bucketSource) Stall(t *testing.T) <-chan struct{} {
	t.Helper()
	fill(t, s.c, s.bucket, srcPrefix, map[string]object{"stall.bin": {body: []byte("never read"), contentType: "application/octet-stream"}})
	return s.proxy.stall("/" + s.bucket + "/" + srcPrefix + "stall.bin")
}

func (s *bucketSource) FailingCheck() lab.Check { return lab.Check{Object: "no/such/key"} }

// Leftovers are the target's drill buckets (homelab-drill-<target>-...).
// A restore stages nothing: it writes into its bucket directly.
func (s *bucketSource) Leftovers(t *testing.T) []string {
	return drillBuckets(t, s.c, "homelab-drill-"+s.name+"-")
}

// Secrets: the source's keys are the server's, the destination's too,
// which the repository kind names.
func (s *bucketSource) Secrets() []string { return nil }

// stallProxy is a reverse proxy to an S3 server (reverseProxy: the
// signatures made for its address verify) that, once stalled, holds
// every GET of one object until that request ends (the client gave up)
// or the test does.
type stallProxy struct {
	*httptest.Server
	mu       sync.Mutex
	held     string        // the path (/bucket/key) whose GETs are held; "" none
	underway chan struct{} // closed at the first held GET
	once     sync.Once
	release  chan struct{} // closed when the test ends
}

func newStallProxy(t *testing.T, srv *testenv.S3Server) *stallProxy {
	t.Helper()
	rp := reverseProxy(t, srv)
	rp.ErrorLog = log.New(io.Discard, "", 0) // requests their clients cancelled
	p := &stallProxy{underway: make(chan struct{}), release: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && p.holds(r.URL.Path) {
			p.once.Do(func() { close(p.underway) })
			select {
			case <-r.Context().Done():
			case <-p.release:
			}
			http.Error(w, "stalled by the test", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	t.Cleanup(func() { close(p.release) }) // before Close, which waits for held requests
	return p
}

// stall holds every GET of path from now on and returns a channel closed
// when the first arrives.
func (p *stallProxy) stall(path string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = path
	return p.underway
}

func (p *stallProxy) holds(path string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held != "" && path == p.held
}
