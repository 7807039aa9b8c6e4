package providertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// RepoKind is a kind of storage the suite runs a provider against: a
// restic repository (Local, a directory; S3, a bucket), or the storage of
// a provider that keeps its snapshots elsewhere (a pgBackRest repository,
// an s3-mirror destination bucket), which that provider's tests define.
// A kind is a name and a way to make a fresh storage, so adding one needs
// no change to the cases.
type RepoKind struct {
	// Name names the kind in test names and, for a restic repository, is
	// the repository's name in the suite's lab.
	Name string
	// New creates a fresh, empty storage (initialised: a restic
	// repository; a pgBackRest repository is created by the provider's
	// Setup) that lives as long as t, or skips t (testenv.Missing) when
	// the kind's server or tool is not there. stateDir is the case's lab
	// state directory (where a provider may keep the storage's
	// configuration and locks).
	New func(t *testing.T, stateDir string) Repo
	// Commands are the programs, found in PATH, that drive the storage
	// (pgbackrest); the suite records their argv like the harness's
	// Commands. A restic repository's restic is recorded always, through
	// the client's binary.
	Commands []string
}

// Repo is one fresh storage of a kind.
type Repo struct {
	// URL is the restic repository URL (a path, s3:..., rest:...); empty
	// for a storage that is not a restic repository, which Place names.
	URL string
	// PasswordFile holds the restic repository password (one line).
	PasswordFile string
	// Env is further environment restic needs (KEY=VALUE), such as
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3.
	Env []string
	// Place puts a storage that is not a restic repository into the
	// target: its pgbackrest.repo, its s3-mirror destination. Nil for a
	// restic repository, which the suite names as the target's repository.
	Place func(spec *lab.Backup)
	// Secrets are values that must never appear in argv or errors (an S3
	// secret key, a cipher passphrase; a restic repository's password is
	// added by the suite).
	Secrets []string
	// Damage corrupts the stored data of every snapshot in the storage,
	// so that restoring any of them from the storage (not from a cache)
	// fails.
	Damage func(t *testing.T)
	// Stored returns the IDs of every snapshot in the storage, as its
	// own tool lists them without homelab (pgbackrest info, the manifests
	// in the bucket), whichever target made them. Nil for a restic
	// repository: restic snapshots, through the suite's client.
	Stored func(t *testing.T) []string
	// Locks returns the locks on the storage that are still held (lock
	// files a live process holds). Nil for a restic repository: restic
	// list locks; nil otherwise means the storage has no locks.
	Locks func(t *testing.T) []string
}

// restic reports whether r is a restic repository.
func (r Repo) restic() bool { return r.URL != "" }

// Local is a restic repository in a local directory (testenv.ResticRepo).
// Damage truncates every pack file under data/ to 100 bytes.
var Local = RepoKind{Name: "local", New: newLocal}

func newLocal(t *testing.T, _ string) Repo {
	t.Helper()
	url, pass := testenv.ResticRepo(t)
	return Repo{URL: url, PasswordFile: pass, Damage: func(t *testing.T) {
		t.Helper()
		truncatePacks(t, url)
	}}
}

// S3 is a restic repository in a fresh bucket of a throwaway S3 server
// (testenv.S3: versitygw, posix backend) started for the case, at prefix
// restic/, with the server's keys in Env (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION) and both among the Secrets.
// Damage truncates every pack object under restic/data/ to 100 bytes,
// through the files the posix backend keeps them in
// (S3Server.Dir/<bucket>/<key>).
var S3 = RepoKind{Name: "s3", New: newS3}

func newS3(t *testing.T, _ string) Repo {
	t.Helper()
	bin := testenv.Restic(t)
	s := testenv.S3(t)
	bucket := s.Bucket(t, "pt")
	pass := filepath.Join(t.TempDir(), "restic.pass")
	if err := os.WriteFile(pass, []byte("s3 repository password "+bucket+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := Repo{URL: s.ResticURL(bucket, "restic"), PasswordFile: pass, Env: s.Env(), Secrets: []string{s.SecretAccessKey, s.AccessKeyID}}
	c, err := restic.New(t.Context(), r.config(bin))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(t.Context()); err != nil {
		t.Fatalf("restic init on S3: %v\n%s", err, s.Log())
	}
	r.Damage = func(t *testing.T) {
		t.Helper()
		truncatePacks(t, filepath.Join(s.Dir, bucket, "restic"))
	}
	return r
}

// truncatePacks truncates every pack file under repo/data/ (restic's
// layout, on disk or as the S3 posix backend's objects) to 100 bytes.
func truncatePacks(t *testing.T, repo string) {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(repo, "data", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack files to damage in %s (%v)", repo, err)
	}
	for _, p := range packs {
		if err := os.Truncate(p, 100); err != nil {
			t.Fatal(err)
		}
	}
}

// password returns the repository password.
func (r Repo) password(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(r.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// config is the restic client configuration of r, run through binary.
func (r Repo) config(binary string) restic.Config {
	return restic.Config{Binary: binary, Repository: r.URL, PasswordFile: r.PasswordFile, Env: r.Env, Secrets: r.Secrets}
}

// labRepository is r as the suite's lab file names it: the one place the
// suite builds a lab.Repository. (The Manager's clients are made from
// config, as the CLI's factory makes them from this.)
func labRepository(name string, r Repo) *lab.Repository {
	return &lab.Repository{Name: name, URL: r.URL, PasswordFile: r.PasswordFile}
}
