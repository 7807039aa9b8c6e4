package server

import (
	"context"
	"html/template"
	"sync"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/status"
)

// historyRuns is how many of a target's newest backup runs and drills
// its chart shows.
const historyRuns = 30

// pageChart is one target's history chart (status.HistorySVG).
type pageChart struct {
	Target string
	SVG    template.HTML // built and escaped by status.HistorySVG
}

// chartCache keeps the charts of the last page for as long as the
// catalog's version (catalog.Versioned) and the lab stay the same: the
// charts read every target's runs and drills, which change a few times
// a day while the page is asked for every few seconds. A catalog that
// is not Versioned is read every time.
type chartCache struct {
	mu      sync.Mutex
	valid   bool
	version uint64
	lab     *lab.Lab
	loc     *time.Location
	charts  []pageChart
}

// historyCharts returns the charts of l's targets, sorted by name, read
// from store (the request's: Server.store; its version is the pinned one).
func (s *Server) historyCharts(ctx context.Context, store catalog.Store, l *lab.Lab, loc *time.Location) ([]pageChart, error) {
	v, versioned := store.(catalog.Versioned)
	var version uint64
	if versioned {
		var err error
		if version, err = v.Version(ctx); err != nil {
			return nil, err
		}
		c := &s.charts
		c.mu.Lock()
		hit := c.valid && c.version == version && c.lab == l && c.loc == loc
		charts := c.charts
		c.mu.Unlock()
		if hit {
			return charts, nil
		}
	}
	var charts []pageChart
	for _, name := range l.BackupNames() {
		runs, err := store.Runs(ctx, catalog.RunFilter{Target: name, Kind: catalog.KindBackup, Limit: historyRuns})
		if err != nil {
			return nil, err
		}
		drills, err := store.Drills(ctx, catalog.DrillFilter{Target: name, Limit: historyRuns})
		if err != nil {
			return nil, err
		}
		if svg := status.HistorySVG(name, runs, drills, loc); svg != "" {
			charts = append(charts, pageChart{Target: name, SVG: template.HTML(svg)})
		}
	}
	if versioned {
		s.charts.mu.Lock()
		s.charts.valid, s.charts.version, s.charts.lab, s.charts.loc, s.charts.charts = true, version, l, loc, charts
		s.charts.mu.Unlock()
	}
	return charts, nil
}
