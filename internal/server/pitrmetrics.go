package server

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"homelab/internal/status"
)

var (
	descPITRStart = prometheus.NewDesc("homelab_pitr_window_start_timestamp_seconds",
		"Start of a pgbackrest target's recoverable window (its oldest backup's start), in seconds since the epoch; absent without a backup.",
		[]string{"target"}, nil)
	descPITREnd = prometheus.NewDesc("homelab_pitr_window_end_timestamp_seconds",
		"When the newest archived WAL segment of a pgbackrest target reached its repository (the end of the recoverable window; time() minus it is the archiving lag), in seconds since the epoch.",
		[]string{"target"}, nil)
	descPITRWaiting = prometheus.NewDesc("homelab_pitr_wal_waiting_segments",
		"WAL segments the cluster of a pgbackrest target completed and has not archived yet (pg_wal/archive_status/*.ready).",
		[]string{"target"}, nil)
	descPITRStuck = prometheus.NewDesc("homelab_pitr_archiving_stuck",
		"1 when a completed WAL segment of a pgbackrest target has waited for the repository longer than its archive_timeout, else 0.",
		[]string{"target"}, nil)
	descPITRRead = prometheus.NewDesc("homelab_pitr_window_read_timestamp_seconds",
		"When the daemon last read a pgbackrest target's recoverable window, in seconds since the epoch.",
		[]string{"target"}, nil)
)

// windowCollector exports the pgbackrest targets' recoverable windows as
// the daemon last read them (Options.Windows): a scrape reads a map the
// daemon keeps and runs no pgbackrest.
type windowCollector struct {
	windows func() map[string]status.Window
}

func (c windowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPITRStart, descPITREnd, descPITRWaiting, descPITRStuck, descPITRRead} {
		ch <- d
	}
}

func (c windowCollector) Collect(ch chan<- prometheus.Metric) {
	ws := c.windows()
	for _, name := range slices.Sorted(maps.Keys(ws)) {
		w := ws[name]
		if !w.From.IsZero() {
			ch <- prometheus.MustNewConstMetric(descPITRStart, prometheus.GaugeValue, seconds(w.From), name)
		}
		if !w.To.IsZero() {
			ch <- prometheus.MustNewConstMetric(descPITREnd, prometheus.GaugeValue, seconds(w.To), name)
		}
		if w.Waiting >= 0 {
			ch <- prometheus.MustNewConstMetric(descPITRWaiting, prometheus.GaugeValue, float64(w.Waiting), name)
		}
		ch <- prometheus.MustNewConstMetric(descPITRStuck, prometheus.GaugeValue, boolValue(w.Stuck()), name)
		if !w.Read.IsZero() {
			ch <- prometheus.MustNewConstMetric(descPITRRead, prometheus.GaugeValue, seconds(w.Read), name)
		}
	}
}
