package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Permissions of new files. A file that is replaced keeps its owner and
// mode (so a key chowned to a service user stays readable by it), except
// that private keys and bundles never keep "other" bits.
const (
	certPerm fs.FileMode = 0o644
	keyPerm  fs.FileMode = 0o600
	certMask fs.FileMode = 0o777
	keyMask  fs.FileMode = 0o770
)

// WriteFile writes data to path atomically: a temporary file in the same
// directory is written, fsynced and renamed over path, then the directory
// is fsynced, so path holds either the old or the new content, never a
// mix, even after a crash. A new file gets perm; an existing one keeps its
// owner and its mode masked by mask. Missing parent directories are
// created (0755).
func WriteFile(path string, data []byte, perm, mask fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	mode, uid, gid := perm, -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm() & mask
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("write %s: keep owner: %w", path, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// snapshot is the content of a set of files before a change, to put back.
type snapshot struct {
	files []savedFile
}

type savedFile struct {
	path       string
	data       []byte
	existed    bool
	perm, mask fs.FileMode
}

// save reads path into s (a missing file is remembered as missing).
func (s *snapshot) save(path string, perm, mask fs.FileMode) error {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.files = append(s.files, savedFile{path: path, perm: perm, mask: mask})
		return nil
	case err != nil:
		return err
	}
	s.files = append(s.files, savedFile{path: path, data: data, existed: true, perm: perm, mask: mask})
	return nil
}

// get returns the saved content of path (nil if it did not exist).
func (s *snapshot) get(path string) []byte {
	for _, f := range s.files {
		if f.path == path {
			return f.data
		}
	}
	return nil
}

// keepPrev writes each saved file that existed to <path>.prev.
func (s *snapshot) keepPrev() error {
	for _, f := range s.files {
		if f.existed {
			if err := WriteFile(f.path+".prev", f.data, f.perm, f.mask); err != nil {
				return err
			}
		}
	}
	return nil
}

// restore puts every saved file back byte for byte, removing those that
// did not exist. It keeps going after an error and returns them all.
func (s *snapshot) restore() error {
	var errs []error
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i]
		if !f.existed {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if err := WriteFile(f.path, f.data, f.perm, f.mask); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
