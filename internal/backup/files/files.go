package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"homelab/internal/backup"
	"homelab/internal/restic"
)

// Provider backs up files with restic.
type Provider struct {
	backup.ResticSnapshots
	// TempDir is where drills restore to; default os.TempDir().
	TempDir string
	// Now names the staging directories and old copies of an in-place
	// restore; default time.Now.
	Now func() time.Time
	// rename swaps paths in an in-place restore; default os.Rename (tests
	// make it fail).
	rename func(from, to string) error
}

var _ backup.Provider = (*Provider)(nil)

// Backup runs restic backup of the target's paths. A configured path that
// does not exist fails the backup (restic itself would skip it silently
// and report success), and so does one that is a symbolic link: restic
// stores a link named on its command line as the link, not what it
// points to, so the snapshot would hold no data and a restore would put
// back only the link.
func (p *Provider) Backup(ctx context.Context, t backup.Target, runID string, progress backup.ProgressFunc) (backup.Snapshot, error) {
	var missing []string
	for _, path := range t.Spec.Source.Paths {
		fi, err := os.Lstat(path)
		if err != nil {
			missing = append(missing, path)
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return backup.Snapshot{}, symlinkError(path)
		}
	}
	if len(missing) > 0 {
		return backup.Snapshot{}, fmt.Errorf("source paths do not exist: %s", strings.Join(missing, ", "))
	}
	sum, err := t.Repo.Backup(ctx, restic.BackupOptions{
		Paths:    t.Spec.Source.Paths,
		Excludes: t.Spec.Source.Exclude,
		Tags:     t.RunTags(runID),
	}, progress)
	snap := backup.Snapshot{ID: sum.SnapshotID, Time: sum.BackupStart, Target: t.Name(), RunID: runID,
		Paths: t.Spec.Source.Paths, Bytes: sum.TotalBytesProcessed, Files: sum.TotalFilesProcessed, Added: sum.DataAdded}
	if len(snap.ID) >= 8 {
		snap.ShortID = snap.ID[:8]
	}
	return snap, err
}

// Restore restores snap under dest.Path: a file backed up as /srv/x is
// written to <dest.Path>/srv/x. restic verifies the restored content.
// With dest.InPlace it restores each source path where it was backed up
// from instead (see restoreInPlace).
func (p *Provider) Restore(ctx context.Context, t backup.Target, snap backup.Snapshot, dest backup.Destination, progress backup.ProgressFunc) error {
	if dest.InPlace {
		if dest.Path != "" {
			return errors.New("an in-place restore takes no destination path")
		}
		return p.restoreInPlace(ctx, t, snap, progress)
	}
	if dest.Path == "" {
		return errors.New("restore needs a destination path")
	}
	abs, err := filepath.Abs(dest.Path)
	if err != nil {
		return err
	}
	_, err = t.Repo.Restore(ctx, snap.ID, abs, restic.RestoreOptions{Verify: !dest.NoVerify}, progress)
	return err
}

// Drill restores snap into a fresh temporary directory with restic restore
// --verify --no-cache (a drill proves the repository, not the local cache), runs the target's checks (path exists; sha256 matches) and
// removes the directory.
//
// The directory is <TempDir>/homelab-drill-<target>-<pid>-<random>. Before
// it restores, a drill removes the directories of earlier drills of the
// target whose homelab process (pid) is gone: a drill killed with its
// homelab left them (hundreds of MB) forever. One it cannot remove is
// reported in DrillReport.Leftovers.
func (p *Provider) Drill(ctx context.Context, t backup.Target, snap backup.Snapshot, runID string) (backup.DrillReport, error) {
	rep := backup.DrillReport{Leftovers: removeDeadDrills(p.tempDir(), t.Name())}
	dir, err := os.MkdirTemp(p.tempDir(), drillDirPrefix(t.Name())+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	rep.Place = dir
	start := time.Now()
	sum, err := t.Repo.Restore(ctx, snap.ID, dir, restic.RestoreOptions{Verify: true, NoCache: true}, nil)
	rep.RTO = time.Since(start)
	if err != nil {
		return rep, err
	}
	rep.Checks = append(rep.Checks, backup.CheckResult{Check: "restic restore --verify", OK: true,
		Detail: fmt.Sprintf("%d files, %d bytes restored and verified", sum.FilesRestored, sum.BytesRestored)})
	for _, c := range t.Spec.Drill.Checks {
		rep.Checks = append(rep.Checks, checkPath(dir, c.Path, c.SHA256))
	}
	return rep, nil
}

func (p *Provider) tempDir() string {
	if p.TempDir != "" {
		return p.TempDir
	}
	return os.TempDir()
}

// drillDirPrefix starts the names of target's drill directories.
func drillDirPrefix(target string) string { return "homelab-drill-" + target + "-" }

// deadDrillSuffix is what follows the prefix in a drill directory's name:
// the pid of the homelab that made it, and MkdirTemp's random digits. The
// digits-only pattern keeps target "app" off the directories of target
// "app-x".
var deadDrillSuffix = regexp.MustCompile(`^([0-9]+)-[0-9]+$`)

// processAlive is restic.ProcessAlive, replaceable in tests.
var processAlive = restic.ProcessAlive

// removeDeadDrills removes target's drill directories under tmp whose
// homelab process is gone, and returns the ones it could not remove, with
// the reason. A directory of a live process (another lab's drill of a
// target of the same name, or this one's) is left alone.
func removeDeadDrills(tmp, target string) []string {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil
	}
	var left []string
	prefix := drillDirPrefix(target)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		m := deadDrillSuffix.FindStringSubmatch(rest)
		if m == nil {
			continue
		}
		if pid, err := strconv.Atoi(m[1]); err != nil || processAlive(pid) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if err := os.RemoveAll(dir); err != nil {
			left = append(left, "directory "+dir+": "+err.Error())
		}
	}
	return left
}

// checkPath checks that path (as it was backed up) exists under root and,
// when want is set, that its content hashes to want.
func checkPath(root, path, want string) backup.CheckResult {
	name := "path " + path
	if want != "" {
		name = "sha256 " + path
	}
	res := backup.CheckResult{Check: name}
	full := filepath.Join(root, path)
	fi, err := os.Stat(full)
	if err != nil {
		res.Detail = "missing from the restored snapshot"
		return res
	}
	if want == "" {
		res.OK, res.Detail = true, "present"
		return res
	}
	if fi.IsDir() {
		res.Detail = "is a directory; sha256 needs a file"
		return res
	}
	f, err := os.Open(full)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		res.Detail = err.Error()
		return res
	}
	got := hex.EncodeToString(h.Sum(nil))
	res.OK = strings.EqualFold(got, want)
	res.Detail = "sha256 " + got
	if !res.OK {
		res.Detail = fmt.Sprintf("sha256 is %s, want %s", got, want)
	}
	return res
}

// symlinkError says that source path is a symbolic link, and what to
// list instead.
func symlinkError(path string) error {
	to, err := filepath.EvalSymlinks(path)
	if err != nil {
		to = "a path that does not resolve: " + err.Error()
	}
	return fmt.Errorf("source path %s is a symbolic link to %s: restic would store the link, not the data; list %s in source.paths instead", path, to, to)
}
