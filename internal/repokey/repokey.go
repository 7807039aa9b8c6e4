package repokey

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"homelab/internal/restic"
)

// PasswordBytes is the length of a generated password before encoding:
// 32 random bytes (256 bits), written as 43 characters of unpadded
// base64url (RFC 4648 §5), no white space.
const PasswordBytes = 32

// Generate returns a new random password (see PasswordBytes) from
// crypto/rand.
func Generate() string {
	b := make([]byte, PasswordBytes)
	rand.Read(b) // never fails (crypto/rand, Go >= 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Added is a key that Add added and proved.
type Added struct {
	// ID is the new key's ID (64 hex digits).
	ID string
	// File is where its password was written.
	File string
	// Password is the new password; callers show it only when asked.
	Password string
}

// ErrExists: the output file exists already; Add never overwrites one.
var ErrExists = errors.New("file exists")

// Add generates a password, writes it to the new file out (mode 0600,
// created exclusively, fsynced; an existing file is refused with
// ErrExists), adds it as a key of c's repository (restic key add
// --new-password-file out) and proves it: the repository opens with the
// new password alone and restic lists the new key as the one that opened
// it. When restic fails, the file is removed, since its password opens
// nothing (had restic saved the key before failing, the key is left
// without a known password: harmless, and `restic key remove` takes it
// away). When only the proof fails, the file is kept and the error says
// so.
func Add(ctx context.Context, c *restic.Client, out string) (Added, error) {
	pw := Generate()
	if err := writeNew(out, pw); err != nil {
		return Added{}, err
	}
	id, err := c.AddKey(ctx, out, pw)
	if err != nil {
		os.Remove(out)
		return Added{}, err
	}
	a := Added{ID: id, File: out, Password: pw}
	keys, err := c.WithPasswordFile(out).Keys(ctx)
	if err != nil {
		return a, fmt.Errorf("the key was added and its password written to %s, but the repository did not open with it: %w", out, err)
	}
	for _, k := range keys {
		if k.Current && (id == "" || k.ID == id) {
			a.ID = k.ID
			return a, nil
		}
	}
	return a, fmt.Errorf("the key was added and its password written to %s, but restic did not list key %s as the one that opened the repository", out, id)
}

// writeNew writes password and a newline to the new file path, mode
// 0600; an existing file is ErrExists.
func writeNew(path, password string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w: a recovery key's file is never overwritten (choose another --out, or remove it if its key is gone)", path, ErrExists)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if _, err = f.WriteString(password + "\n"); err != nil {
		return err
	}
	return f.Sync()
}
