package files

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"homelab/internal/backup"
	"homelab/internal/lab"
)

// RestoreCommands implements backup.HandRestorer: for each source path P,
// a restic restore of snapshotID with --target / --include P --verify,
// preceded by comments. Unlike an in-place Restore these overwrite in
// place: files added since the snapshot are kept (restic 0.14, Debian
// bookworm's, has no restore --delete), files kept out of the backup by
// exclude patterns are left alone, and a failure midway leaves a path
// partly restored.
func (p *Provider) RestoreCommands(spec *lab.Backup, repo backup.ShellRestic, snapshotID string) ([]string, error) {
	paths := outermost(spec.Source.Paths)
	if len(paths) == 0 {
		return nil, errors.New("no source paths")
	}
	for _, path := range paths {
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("source path %q is not absolute", path)
		}
	}
	cmds := []string{
		fmt.Sprintf("# restore snapshot %s of target %s to where it was backed up from: %s", snapshotID, spec.Name, strings.Join(paths, ", ")),
		"# this overwrites files in place; files added since the snapshot are kept (restic 0.14 has no restore --delete), and files excluded from the backup are left as they are",
	}
	for _, path := range paths {
		cmds = append(cmds, repo.Command(fmt.Sprintf("restore %s --target / --include %s --verify", backup.ShellQuote(snapshotID), backup.ShellQuote(includePattern(path)))))
	}
	return cmds, nil
}

var _ backup.HandRestorer = (*Provider)(nil)
