package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestS3 shows the throwaway server against both clients homelab uses:
// minio-go puts and reads back an object, and the real restic initialises
// a repository in a bucket and lists it, with the credentials in its
// environment only.
func TestS3(t *testing.T) {
	s := S3(t)
	bucket := s.Bucket(t, "t")
	c := s.Client(t)
	ctx := context.Background()
	body := []byte("hello s3")
	if _, err := c.PutObject(ctx, bucket, "a/b c.txt", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, bucket, "a", "b c.txt")); err != nil {
		t.Fatalf("the posix backend should hold the object as a file: %v", err)
	}

	restic := Restic(t)
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("pw\n"), 0o600)
	for _, args := range [][]string{{"init"}, {"snapshots"}} {
		cmd := exec.Command(restic, append(args, "--repo", s.ResticURL(bucket, "repo"), "--password-file", pass)...)
		cmd.Env = append(os.Environ(), s.Env()...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restic %s: %v\n%s\n%s", args[0], err, out, s.Log())
		}
	}
	var keys []string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "repo/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if !strings.Contains(strings.Join(keys, " "), "repo/config") {
		t.Fatalf("restic init wrote no repo/config: %v", keys)
	}
}
