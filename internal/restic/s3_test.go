package restic_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// TestS3Errors runs restic against a real S3 server (versitygw) with
// wrong keys, a bucket that does not exist and an endpoint where nothing
// listens: each fails with its cause (errors.Is), one line naming the
// repository, the cause and the fix, no key in it, and without waiting
// out restic's 15 minutes of retries.
func TestS3Errors(t *testing.T) {
	bin := testenv.Restic(t)
	s := testenv.S3(t)
	ctx := context.Background()
	bucket := s.Bucket(t, "errs")
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := restic.Config{Binary: bin, Name: "offsite", Repository: s.ResticURL(bucket, "repo"), PasswordFile: pass,
		Env: s.Env(), Secrets: []string{s.SecretAccessKey, s.AccessKeyID}}
	c, err := restic.New(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(ctx); err != nil {
		t.Fatalf("init: %v\n%s", err, s.Log())
	}
	if _, err := c.Snapshots(ctx); err != nil {
		t.Fatalf("snapshots with the right keys: %v", err)
	}

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	wrongSecret := "wrong-" + s.SecretAccessKey[:8]
	for _, tc := range []struct {
		name  string
		url   string
		env   []string
		cause error
		words string
	}{
		{"WrongSecret", good.Repository, []string{"AWS_SECRET_ACCESS_KEY=" + wrongSecret}, restic.ErrBackendAuth, "signature"},
		{"UnknownKeyID", good.Repository, []string{"AWS_ACCESS_KEY_ID=AKNOSUCHKEY"}, restic.ErrBackendAuth, "access key"},
		{"MissingBucket", s.ResticURL("no-such-bucket", "repo"), nil, restic.ErrNoBucket, "bucket does not exist"},
		{"Unreachable", "s3:http://" + closed + "/" + bucket + "/repo", nil, restic.ErrUnreachable, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			cfg.Repository = tc.url
			cfg.Env = append(append([]string{}, s.Env()...), tc.env...)
			cfg.Secrets = append(cfg.Secrets, wrongSecret)
			c, err := restic.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Snapshots(ctx)
			if !errors.Is(err, tc.cause) || !errors.Is(err, restic.ErrFatal) || errors.Is(err, restic.ErrInterrupted) || errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want %v", err, tc.cause)
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "repository offsite: "+tc.cause.Error()) || !strings.Contains(msg, tc.words) {
				t.Errorf("message %q: want one line with the repository, %q and %q", msg, tc.cause, tc.words)
			}
			for _, secret := range []string{s.SecretAccessKey, wrongSecret} {
				if strings.Contains(msg, secret) {
					t.Errorf("a key in the message: %s", msg)
				}
			}
		})
	}
}
