package lab

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrUnknownTarget is wrapped by Lab.Backup when no backup has the name.
var ErrUnknownTarget = errors.New("unknown backup target")

// BackupNames returns the names of all backup targets, sorted.
func (l *Lab) BackupNames() []string {
	return slices.Sorted(maps.Keys(l.Backups))
}

// Backup returns the backup target called name. The error wraps
// ErrUnknownTarget and lists the known targets.
func (l *Lab) Backup(name string) (*Backup, error) {
	if b := l.Backups[name]; b != nil {
		return b, nil
	}
	if len(l.Backups) == 0 {
		return nil, fmt.Errorf("%w %q: %s defines no backups", ErrUnknownTarget, name, l.Path)
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownTarget, name, strings.Join(l.BackupNames(), ", "))
}

// RepositoryFor returns the repository backup b is stored in. It is never
// nil for a Backup of a loaded Lab.
func (l *Lab) RepositoryFor(b *Backup) *Repository {
	return l.Repositories[b.Repository]
}
