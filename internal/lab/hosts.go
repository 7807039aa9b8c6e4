package lab

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	// DefaultWarnDays is Hosts.WarnDays when the file leaves it out.
	DefaultWarnDays = 14
	// DefaultSampleInterval is Hosts.SampleInterval when the file leaves
	// it out.
	DefaultSampleInterval = 10 * time.Minute
	// MinSampleInterval is the shortest Hosts.SampleInterval allowed.
	MinSampleInterval = 10 * time.Second
)

// Hosts configures what status shows of the host homelab runs on and
// what the daemon samples of it.
type Hosts struct {
	// WarnDays: a filesystem forecast to fill within this many days makes
	// status unhealthy and is notified once (disk_filling). Default 14.
	WarnDays int `yaml:"warn_days"`
	// SampleInterval is how often `homelab serve` samples the
	// filesystems' free space for the forecast. Default 10m, least 10s.
	SampleInterval time.Duration `yaml:"sample_interval"`
	// Filesystems are more paths whose filesystems are shown (a service's
	// data directory); relative ones resolve against the lab file's
	// directory.
	Filesystems []string `yaml:"filesystems"`
}

func (h *Hosts) setDefaults(dir string) {
	if h.WarnDays == 0 {
		h.WarnDays = DefaultWarnDays
	}
	if h.SampleInterval == 0 {
		h.SampleInterval = DefaultSampleInterval
	}
	for i, p := range h.Filesystems {
		h.Filesystems[i] = absPath(dir, p)
	}
}

func (d *decoder) validateHosts(p string, h *Hosts) {
	if h.WarnDays < 0 {
		d.at(p+".warn_days", "must be at least 1, got %d", h.WarnDays)
	}
	if d.present(p+".sample_interval") && !d.bad[p+".sample_interval"] && h.SampleInterval < MinSampleInterval {
		d.at(p+".sample_interval", "must be at least %s, got %s", MinSampleInterval, h.SampleInterval)
	}
	for i, f := range h.Filesystems {
		if strings.TrimSpace(f) == "" {
			d.at(fmt.Sprintf("%s.filesystems[%d]", p, i), "empty path")
		}
	}
}

// WatchedPaths are the paths whose filesystems status shows and the
// daemon samples: the state directory, every local repository, every
// restic target's source paths and Hosts.Filesystems, each once, in that
// order.
func (l *Lab) WatchedPaths() []string {
	var out []string
	add := func(p string) {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	add(l.StateDir)
	for _, name := range slices.Sorted(maps.Keys(l.Repositories)) {
		if u := l.Repositories[name].URL; filepath.IsAbs(u) {
			add(u)
		}
	}
	for _, name := range l.BackupNames() {
		if b := l.Backups[name]; b.Provider == ProviderRestic {
			for _, p := range b.Source.Paths {
				add(p)
			}
		}
	}
	for _, p := range l.Hosts.Filesystems {
		add(p)
	}
	return out
}
