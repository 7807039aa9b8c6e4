// Package atomicfile replaces files so that a crash leaves either the old
// or the new content, never a mix (write a temporary file in the same
// directory, fsync, rename, fsync the directory: rename(2) is atomic
// within a file system). Certificates, keys and compose files are written
// with it.
//
// The temporary file, its fsync and the rename are google/renameio's
// (PendingFile). This package adds what renameio leaves to its callers and
// homelab relies on:
//   - the temporary file always lives in the target's directory
//     (renameio.WithTempDir): renameio's default may pick $TMPDIR when it
//     shares the target's mount, which a later remount can break;
//   - an existing file's mode is kept but masked (a key never gains
//     "other" bits), where renameio.WithExistingPermissions copies it as is;
//   - an existing file's owner is kept (renameio does not chown);
//   - the directory is fsynced after the rename, so that the rename itself
//     survives a crash (renameio does not fsync the directory);
//   - missing parent directories are created.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
)

// Write writes data to path atomically: a temporary file in the same
// directory is written, fsynced and renamed over path, then the directory
// is fsynced, so path holds either the old or the new content, never a
// mix, even after a crash. A new file gets perm (the umask is not
// applied); an existing one keeps its owner (when the process may chown)
// and its mode masked by mask. Missing parent directories are created
// (0755). Errors name path; on an error path is left as it was and no
// temporary file remains.
func Write(path string, data []byte, perm, mask fs.FileMode) error {
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
	t, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(mode))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer t.Cleanup()
	if uid >= 0 {
		if err := t.Chown(uid, gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("write %s: keep owner: %w", path, err)
		}
	}
	if _, err := t.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := t.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
