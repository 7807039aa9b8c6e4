package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"homelab/internal/backup"
	"homelab/internal/restic"
)

// Names of what an in-place restore puts beside a source path P, <stamp>
// being the UTC time of the restore (20060102t150405).
const (
	stagingPrefix = ".homelab-restore-" // filepath.Dir(P)/.homelab-restore-<stamp>
	oldInfix      = ".homelab-old-"     // P.homelab-old-<stamp>
)

// placement is one source path of an in-place restore.
type placement struct {
	path   string // P, where the data goes
	staged string // <staging dir>/P, restored and verified by restic
	old    string // P.homelab-old-<stamp>, where P is moved aside
	had    bool   // P existed before the restore
}

// restoreInPlace puts each source path P of the target back exactly as it
// is in snap, replacing what is there now:
//
//  1. Each P is restored with restic restore --verify --include P into a
//     staging directory beside it, filepath.Dir(P)/.homelab-restore-<stamp>
//     (the same filesystem, so that the swap is a rename). A path missing
//     from the snapshot or a failed restore is an error before anything
//     is swapped, and the staging directories are removed.
//  2. Only when every path is staged, each is swapped: P is renamed to
//     P.homelab-old-<stamp> and the staged copy renamed to P. If a swap
//     fails, the paths already swapped are put back.
//  3. When every swap succeeded, the old copies and staging directories
//     are removed.
//
// The result is the snapshot's content byte for byte, with restic's
// modes, ownership (as root) and times, P itself included: files deleted
// since the snapshot reappear and files added since are gone. Files that
// the target's exclude patterns kept out of the backup are not carried
// over either: they go with the old copy. A path nested in another source
// path is restored as part of the outer one. A P that is a mount point,
// or whose parent directory does not exist, is refused before anything is
// restored. A crash during the swap can leave P.homelab-old-<stamp> and
// .homelab-restore-<stamp> behind, for the operator to inspect.
func (p *Provider) restoreInPlace(ctx context.Context, t backup.Target, snap backup.Snapshot, progress backup.ProgressFunc) error {
	stamp := p.stamp()
	var places []*placement
	for _, path := range outermost(t.Spec.Source.Paths) {
		pl, err := checkPlace(path, stamp)
		if err != nil {
			return err
		}
		places = append(places, pl)
	}

	// 1. Stage every path.
	stagingOf := map[string]string{} // parent directory -> staging directory
	var staging []string
	removeStaging := func() error {
		var errs []error
		for _, dir := range staging {
			if err := forceRemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("remove staging directory: %w", err))
			}
		}
		return errors.Join(errs...)
	}
	for _, pl := range places {
		parent := filepath.Dir(pl.path)
		dir, ok := stagingOf[parent]
		if !ok {
			dir = filepath.Join(parent, stagingPrefix+stamp)
			if err := os.Mkdir(dir, 0o700); err != nil {
				return errors.Join(fmt.Errorf("create staging directory: %w", err), removeStaging())
			}
			stagingOf[parent] = dir
			staging = append(staging, dir)
		}
		pl.staged = filepath.Join(dir, pl.path)
		_, err := t.Repo.Restore(ctx, snap.ID, dir, restic.RestoreOptions{Verify: true, Include: []string{includePattern(pl.path)}}, progress)
		if err != nil {
			return errors.Join(fmt.Errorf("restore %s into %s: %w", pl.path, dir, err), removeStaging())
		}
		if _, err := os.Lstat(pl.staged); err != nil {
			return errors.Join(fmt.Errorf("snapshot %s has no %s: nothing was changed", snap.ShortID, pl.path), removeStaging())
		}
		// The staged copy's parent is a restored directory that may be
		// read-only; it is thrown away, and the rename needs to write it.
		if err := os.Chmod(filepath.Dir(pl.staged), 0o700); err != nil {
			return errors.Join(err, removeStaging())
		}
	}
	if err := ctx.Err(); err != nil {
		return errors.Join(fmt.Errorf("in-place restore: %w", err), removeStaging())
	}

	// 2. Swap them all in, or none.
	rename := p.rename
	if rename == nil {
		rename = os.Rename
	}
	for i, pl := range places {
		if err := swapIn(rename, pl); err != nil {
			err = fmt.Errorf("swap restored %s into place: %w", pl.path, err)
			return errors.Join(err, putBack(rename, places[:i]), removeStaging())
		}
	}

	// 3. Clean up.
	var errs []error
	for _, pl := range places {
		if pl.had {
			if err := forceRemoveAll(pl.old); err != nil {
				errs = append(errs, fmt.Errorf("remove old copy: %w", err))
			}
		}
	}
	errs = append(errs, removeStaging())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restored in place, but cleaning up failed: %w", err)
	}
	return nil
}

// checkPlace checks, before anything is restored, that path can be
// swapped: an absolute path other than /, an existing parent directory,
// not a mount point, and no old copy of this stamp in the way.
func checkPlace(path, stamp string) (*placement, error) {
	if !filepath.IsAbs(path) || path == "/" {
		return nil, fmt.Errorf("source path %q cannot be restored in place: it must be absolute and not /", path)
	}
	pl := &placement{path: path, old: path + oldInfix + stamp}
	parent := filepath.Dir(path)
	pfi, err := os.Stat(parent)
	if err != nil || !pfi.IsDir() {
		return nil, fmt.Errorf("cannot restore %s in place: its parent directory %s does not exist", path, parent)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("cannot restore %s in place: %w", path, symlinkError(path))
	default:
		pl.had = true
		if fi.IsDir() && device(fi) != device(pfi) {
			return nil, fmt.Errorf("cannot restore %s in place: it is a mount point, and an in-place restore renames it (restore with --to instead)", path)
		}
	}
	if _, err := os.Lstat(pl.old); err == nil {
		return nil, fmt.Errorf("cannot restore %s in place: %s is in the way", path, pl.old)
	}
	return pl, nil
}

func device(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// swapIn moves pl.path aside to pl.old and the staged copy into pl.path;
// if the second rename fails, the first is undone.
func swapIn(rename func(from, to string) error, pl *placement) error {
	if pl.had {
		if err := rename(pl.path, pl.old); err != nil {
			return err
		}
	}
	if err := rename(pl.staged, pl.path); err != nil {
		if pl.had {
			if uerr := rename(pl.old, pl.path); uerr != nil {
				return errors.Join(err, fmt.Errorf("put %s back: %w (it is at %s)", pl.path, uerr, pl.old))
			}
		}
		return err
	}
	return nil
}

// putBack undoes the swaps of done, newest first: the restored copy goes
// back to staging (to be removed with it) and the old copy back in place.
func putBack(rename func(from, to string) error, done []*placement) error {
	var errs []error
	for i := len(done) - 1; i >= 0; i-- {
		pl := done[i]
		if err := rename(pl.path, pl.staged); err != nil {
			errs = append(errs, fmt.Errorf("put %s back: %w (the old copy is at %s)", pl.path, err, pl.old))
			continue
		}
		if pl.had {
			if err := rename(pl.old, pl.path); err != nil {
				errs = append(errs, fmt.Errorf("put %s back: %w (it is at %s)", pl.path, err, pl.old))
			}
		}
	}
	return errors.Join(errs...)
}

// outermost returns the cleaned paths without duplicates and without those
// inside another of them (restored as part of it), sorted.
func outermost(paths []string) []string {
	clean := make([]string, 0, len(paths))
	for _, p := range paths {
		clean = append(clean, filepath.Clean(p))
	}
	sort.Strings(clean)
	var out []string
	for _, p := range clean {
		if n := len(out); n > 0 && (p == out[n-1] || strings.HasPrefix(p, strings.TrimSuffix(out[n-1], "/")+"/")) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// includePattern escapes path for restic's --include, whose patterns treat
// *, ?, [ and \ specially.
func includePattern(path string) string {
	var b strings.Builder
	for _, r := range path {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// forceRemoveAll removes path, making read-only directories in it
// writable first if a plain os.RemoveAll fails (not needed as root).
func forceRemoveAll(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

func (p *Provider) stamp() string {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	return now().UTC().Format("20060102t150405")
}
