package certs

import (
	"errors"
	"io/fs"
	"os"

	"homelab/internal/atomicfile"
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
			if err := atomicfile.Write(f.path+".prev", f.data, f.perm, f.mask); err != nil {
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
		if err := atomicfile.Write(f.path, f.data, f.perm, f.mask); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
