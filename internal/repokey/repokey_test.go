package repokey_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/repokey"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// repoKind is a repository for the test: a restic client of it (opened
// with its own password) and the environment plain restic needs besides
// a password (S3 keys).
type repoKind func(t *testing.T) (*restic.Client, []string)

func local(t *testing.T) (*restic.Client, []string) {
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	c, err := restic.New(context.Background(), restic.Config{Binary: bin, Repository: repo, PasswordFile: pass})
	if err != nil {
		t.Fatal(err)
	}
	return c, []string{"RESTIC_REPOSITORY=" + repo}
}

func s3(t *testing.T) (*restic.Client, []string) {
	bin := testenv.Restic(t)
	s := testenv.S3(t)
	url := s.ResticURL(s.Bucket(t, "keys"), "repo")
	pass := filepath.Join(t.TempDir(), "repo.pass")
	if err := os.WriteFile(pass, []byte(repokey.Generate()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(s.Env(), "RESTIC_REPOSITORY="+url)
	cmd := exec.Command(bin, "init")
	cmd.Env = append(os.Environ(), append(env, "RESTIC_PASSWORD_FILE="+pass, "XDG_CACHE_HOME="+t.TempDir())...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic init: %v\n%s", err, out)
	}
	c, err := restic.New(context.Background(), restic.Config{Binary: bin, Repository: url, PasswordFile: pass, Env: s.Env()})
	if err != nil {
		t.Fatal(err)
	}
	return c, env
}

// TestAdd adds a recovery key to a local and to an S3 repository: the
// repository had one key and has two, the file is 0600 and opens the
// repository with plain restic and nothing else, and a second add to the
// same file is refused, leaving the file and the keys as they were.
func TestAdd(t *testing.T) {
	for name, kind := range map[string]repoKind{"local": local, "s3": s3} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c, env := kind(t)
			keys, err := c.Keys(ctx)
			if err != nil || len(keys) != 1 || !keys[0].Current {
				t.Fatalf("keys before = %+v, %v; want the one current key", keys, err)
			}
			out := filepath.Join(t.TempDir(), "recovery.key")
			a, err := repokey.Add(ctx, c, out)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.ID) != 64 || a.File != out || len(a.Password) != 43 {
				t.Fatalf("added = id %q file %q password of %d chars", a.ID, a.File, len(a.Password))
			}
			fi, err := os.Stat(out)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("stat %s = %v, %v; want mode 0600", out, fi, err)
			}
			if b, _ := os.ReadFile(out); string(b) != a.Password+"\n" {
				t.Fatalf("file holds %d bytes, want the password and a newline", len(b))
			}
			keys, err = c.Keys(ctx)
			if err != nil || len(keys) != 2 {
				t.Fatalf("keys after = %+v, %v; want 2", keys, err)
			}
			// Plain restic, given only the new password file, opens the
			// repository and says the new key opened it.
			cmd := exec.Command(testenv.Restic(t), "key", "list", "--json", "--no-lock")
			cmd.Env = append(os.Environ(), append(env, "RESTIC_PASSWORD_FILE="+out, "XDG_CACHE_HOME="+t.TempDir())...)
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("restic key list with the recovery key: %v", err)
			}
			if !strings.Contains(string(got), `"current":true,"id":"`+a.ID+`"`) {
				t.Fatalf("restic key list with the recovery key: %s; want %s current", got, a.ID)
			}
			_, err = repokey.Add(ctx, c, out)
			if !errors.Is(err, repokey.ErrExists) {
				t.Fatalf("second add to %s: err = %v, want ErrExists", out, err)
			}
			if b, _ := os.ReadFile(out); string(b) != a.Password+"\n" {
				t.Fatal("the refused add changed the file")
			}
			if keys, err = c.Keys(ctx); err != nil || len(keys) != 2 {
				t.Fatalf("keys after the refused add = %d, %v; want 2", len(keys), err)
			}
		})
	}
}

// TestAddFailsCleanly: a wrong repository password fails restic key add
// (restic.ErrWrongPassword), and the file is gone again.
func TestAddFailsCleanly(t *testing.T) {
	c, _ := local(t)
	bad := filepath.Join(t.TempDir(), "bad.pass")
	os.WriteFile(bad, []byte("not the password\n"), 0o600)
	out := filepath.Join(t.TempDir(), "recovery.key")
	_, err := repokey.Add(context.Background(), c.WithPasswordFile(bad), out)
	if !errors.Is(err, restic.ErrWrongPassword) {
		t.Fatalf("err = %v, want ErrWrongPassword", err)
	}
	if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("%s left behind after a failed add: %v", out, serr)
	}
}
