package status

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"homelab/internal/lab"
)

// KeptCluster is the cluster of an older PostgreSQL major that a major
// upgrade of a PostgreSQL server (lab.PostgresServer) kept, until
// `homelab upgrade SERVICE --finalize` deletes it.
type KeptCluster struct {
	Service string `json:"service"`
	Major   string `json:"major"`
	Data    string `json:"data_dir"`
	// Running is the newest major with a cluster on disk, taken as the
	// one the service runs (upgrades only go up; a failed one removes its
	// new cluster).
	Running  string `json:"running_major"`
	Finalize string `json:"finalize"`
}

// AddKeptClusters lists, for each PostgreSQL server of l, the clusters of
// majors older than the newest one on disk (their data_dir holds a
// PG_VERSION of that major). It reads only PG_VERSION files; a cluster
// kept is a note, not a problem: r stays healthy. A server with an
// unfinished saga (r.Unfinished: call it after AddUnfinished) is left
// out: its newest cluster may be one an upgrade is making, or is rolling
// back, while the older one still serves.
func (r *Report) AddKeptClusters(l *lab.Lab) {
	r.KeptClusters = nil
	busy := map[string]bool{}
	for _, u := range r.Unfinished {
		busy[u.Subject] = true
	}
	names := make([]string, 0, len(l.Services))
	for name := range l.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		pg := l.Services[name].Postgres
		if pg == nil || busy[name] {
			continue
		}
		var present []string
		dirs := map[string]string{}
		for _, m := range pg.Majors() {
			data, err := pg.DataDirOf(m)
			if err != nil {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err == nil && strings.TrimSpace(string(b)) == m {
				present = append(present, m)
				dirs[m] = data
			}
		}
		if len(present) < 2 {
			continue
		}
		running := present[len(present)-1]
		for _, m := range present[:len(present)-1] {
			r.KeptClusters = append(r.KeptClusters, KeptCluster{Service: name, Major: m, Data: dirs[m], Running: running,
				Finalize: fmt.Sprintf("homelab upgrade %s --finalize", name)})
		}
	}
}
