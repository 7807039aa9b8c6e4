package server

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/saga"
	"homelab/internal/status"
)

// kindDrill is the kind label of failed drills in homelab_job_failures_total.
const kindDrill = "drill"

// scrapeTimeout bounds the catalog reads of one scrape.
const scrapeTimeout = 15 * time.Second

// Metric descriptions. Every value is read from the catalog when
// Prometheus scrapes, so runs made by the CLI count as soon as they are
// recorded, and the values always match `homelab status`.
var (
	// descBackupLastSuccess is the end of the target's newest backup run
	// whose result is ok or partial (status.TargetStatus.LastGood).
	descBackupLastSuccess = prometheus.NewDesc("homelab_backup_last_success_timestamp_seconds",
		"End of the newest backup run of the target whose result is ok or partial, in seconds since the epoch.",
		[]string{"target"}, nil)
	// descBackupDuration is that run's end minus its start.
	descBackupDuration = prometheus.NewDesc("homelab_backup_duration_seconds",
		"Duration of the newest ok or partial backup run of the target.",
		[]string{"target"}, nil)
	// descBackupSize is that run's Bytes: the bytes of source it read.
	descBackupSize = prometheus.NewDesc("homelab_backup_size_bytes",
		"Source bytes processed by the newest ok or partial backup run of the target.",
		[]string{"target"}, nil)
	// descDrillLastSuccess is the end of the target's newest drill whose
	// result is ok.
	descDrillLastSuccess = prometheus.NewDesc("homelab_drill_last_success_timestamp_seconds",
		"End of the newest restore drill of the target whose result is ok, in seconds since the epoch.",
		[]string{"target"}, nil)
	// descDrillRestore is that drill's measured time to restore (RTO).
	descDrillRestore = prometheus.NewDesc("homelab_drill_restore_seconds",
		"Time to restore measured by the newest ok restore drill of the target.",
		[]string{"target"}, nil)
	// descJobFailures counts catalog runs whose result is failed, by
	// target and kind (backup, restore, prune, check; the target of a
	// check is its repository), plus failed drills as kind "drill".
	descJobFailures = prometheus.NewDesc("homelab_job_failures_total",
		"Runs recorded in the catalog with result failed, by target and kind (failed restore drills have kind drill).",
		[]string{"target", "kind"}, nil)
	// descTargetOverdue is 1 when the target's last good backup is older
	// than its schedule allows, or it never had one (status.TargetStatus.Overdue).
	descTargetOverdue = prometheus.NewDesc("homelab_target_overdue",
		"1 when the target's last good backup is older than its schedule allows or it has none, else 0.",
		[]string{"target"}, nil)
	// descLabSnapshots counts the lab snapshots by state;
	// descLabSnapshotNewest is when the newest complete one was taken (its
	// age is time() minus it: a timestamp, like the backups', keeps the
	// samples of an unchanged catalog equal from scrape to scrape).
	descLabSnapshots = prometheus.NewDesc("homelab_lab_snapshots",
		"Lab snapshots (homelab snapshot) in the catalog, by state (creating, complete, incomplete).",
		[]string{"state"}, nil)
	descLabSnapshotNewest = prometheus.NewDesc("homelab_lab_snapshot_newest_timestamp_seconds",
		"When the newest complete lab snapshot was taken, as a Unix time (its age: time() minus this); absent when there is none.",
		nil, nil)
	// descUpgradeUnfinished is 1 while an upgrade of the service is
	// unfinished with no process at work on it (killed mid-way, or
	// needing attention after a failed rollback: status's UNFINISHED),
	// else 0.
	descUpgradeUnfinished = prometheus.NewDesc("homelab_upgrade_unfinished",
		"1 while an upgrade of the service is unfinished and no homelab process works on it (killed mid-way, or needing attention), else 0; reported for every service with an upgrade section and every service with an unfinished upgrade.",
		[]string{"service"}, nil)
	// descUnfinished counts, by saga kind, the unfinished sagas no
	// process works on: every change status lists under UNFINISHED
	// CHANGES with its --resume (upgrades, deploys, lab snapshot creates
	// and restores), not only the upgrades descUpgradeUnfinished has.
	descUnfinished = prometheus.NewDesc("homelab_unfinished_changes",
		"Unfinished changes (sagas) that no homelab process works on (killed mid-way, or needing attention), by kind (upgrade, deploy, snapshot create, snapshot restore); finish each with homelab KIND --resume.",
		[]string{"kind"}, nil)
)

// Collector is a prometheus.Collector that reads the lab and the catalog at
// scrape time. Series of a target that has never had a good backup or a
// good drill are left out rather than reported as zero; the overdue gauge
// is reported for every target of the lab, and the failure counter for
// every target of the lab (kinds backup, prune and drill) and every
// repository (kind check), zero when nothing failed, and for whatever else
// failed in the catalog.
//
// The metrics of a scrape whose values all equal the previous scrape's
// are the previous scrape's metrics, sent again rather than built again.
type Collector struct {
	lab   func() *lab.Lab
	store catalog.Store
	now   func() time.Time

	mu      sync.Mutex
	last    []sample            // the values of the previous scrape
	metrics []prometheus.Metric // and its metrics
	spare   []sample            // a slice for the next scrape's values, or nil
	valid   validity            // of the previous scrape's values
}

// validity is how long the values of a scrape hold with the lab and the
// catalog unchanged. Only the overdue gauges depend on the clock (a
// target is overdue once the clock is after its DueBy), and the
// unfinished-upgrade gauges on lock files (whether a process works on
// the upgrade).
type validity struct {
	// after: the values hold at clock times after it (the latest DueBy of
	// an overdue target); zero: at any.
	after time.Time
	// until: the values hold at clock times not after it (the earliest
	// DueBy of a target that is not overdue); zero: at any.
	until time.Time
	// live: the values depend on lock files (an upgrade is unfinished):
	// they hold for no other scrape.
	live bool
}

// holds says whether values of this validity are those at clock time t.
func (v validity) holds(t time.Time) bool {
	return !v.live && (v.after.IsZero() || t.After(v.after)) && (v.until.IsZero() || !t.After(v.until))
}

// add narrows v to the times at which target t's overdue state stays.
func (v *validity) add(t status.TargetStatus) {
	if t.DueBy == nil {
		return
	}
	switch due := *t.DueBy; {
	case t.Overdue && (v.after.IsZero() || due.After(v.after)):
		v.after = due
	case !t.Overdue && (v.until.IsZero() || due.Before(v.until)):
		v.until = due
	}
}

// sample is one metric's value.
type sample struct {
	desc   *prometheus.Desc
	typ    prometheus.ValueType
	value  float64
	labels [2]string // the first n
	n      int
}

// NewCollector returns a collector over the lab that l returns and store.
func NewCollector(l func() *lab.Lab, store catalog.Store, now func() time.Time) *Collector {
	return &Collector{lab: l, store: store, now: now}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBackupLastSuccess, descBackupDuration, descBackupSize,
		descDrillLastSuccess, descDrillRestore, descJobFailures, descTargetOverdue, descUpgradeUnfinished, descUnfinished, descLabSnapshots, descLabSnapshotNewest} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. An error reading the catalog
// is reported as an invalid metric, which fails the scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	samples, err := c.samples(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descTargetOverdue, fmt.Errorf("read catalog: %w", err))
		return
	}
	for _, m := range c.metricsOf(samples) {
		ch <- m
	}
}

// metricsOf returns the metrics of samples: the previous scrape's when
// its samples were the same.
func (c *Collector) metricsOf(samples []sample) []prometheus.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.metrics != nil && slices.Equal(samples, c.last) {
		c.spare = samples // built again into at the next scrape
		return c.metrics
	}
	ms := make([]prometheus.Metric, 0, len(samples))
	for _, s := range samples {
		ms = append(ms, prometheus.MustNewConstMetric(s.desc, s.typ, s.value, s.labels[:s.n]...))
	}
	c.spare, c.last, c.metrics = c.last, samples, ms
	return ms
}

// samples reads the metrics' values from the lab and the catalog, in an
// order that depends only on them.
func (c *Collector) samples(ctx context.Context) ([]sample, error) {
	l := c.lab()
	sums, err := catalog.Summaries(ctx, c.store)
	if err != nil {
		return nil, err
	}
	rep, err := status.FromSummaries(l, sums, nil, c.now())
	if err != nil {
		return nil, err
	}
	// The values are built into the spare slice of an earlier scrape when
	// no other scrape has it (its old values are no longer needed).
	c.mu.Lock()
	out := c.spare[:0]
	c.spare = nil
	c.mu.Unlock()
	var valid validity
	gauge := func(d *prometheus.Desc, v float64, label string) {
		out = append(out, sample{desc: d, typ: prometheus.GaugeValue, value: v, labels: [2]string{label}, n: 1})
	}
	for _, t := range rep.Targets {
		valid.add(t)
		gauge(descTargetOverdue, boolValue(t.Overdue), t.Name)
		if g := t.LastGood; g != nil && !g.End.IsZero() {
			gauge(descBackupLastSuccess, seconds(g.End), t.Name)
			gauge(descBackupDuration, g.End.Sub(g.Start).Seconds(), t.Name)
			gauge(descBackupSize, float64(g.Bytes), t.Name)
		}
		if d := sums[t.Name].LastGoodDrill; d != nil {
			end := d.End
			if end.IsZero() {
				end = d.Start
			}
			gauge(descDrillLastSuccess, seconds(end), t.Name)
			gauge(descDrillRestore, d.RTO.Seconds(), t.Name)
		}
	}
	fails := failures(l, sums)
	for _, k := range slices.SortedFunc(maps.Keys(fails), func(a, b failureKey) int {
		return cmp.Or(cmp.Compare(a.target, b.target), cmp.Compare(a.kind, b.kind))
	}) {
		out = append(out, sample{desc: descJobFailures, typ: prometheus.CounterValue, value: float64(fails[k]),
			labels: [2]string{k.target, k.kind}, n: 2})
	}
	if j, ok := c.store.(catalog.Journal); ok {
		unfinished := map[string]float64{}
		for name, svc := range l.Services {
			if svc != nil && svc.Upgrade != nil {
				unfinished[name] = 0
			}
		}
		recs, err := saga.Unfinished(ctx, j)
		if err != nil {
			return nil, err
		}
		byKind := map[string]float64{}
		for _, k := range sagaKinds {
			byKind[k] = 0
		}
		for _, r := range recs {
			// Every unfinished saga's gauges depend on lock files (is
			// its process alive?): not cached while there is one.
			valid.live = true
			live, _ := saga.InProgress(l.StateDir, r)
			if live {
				continue
			}
			byKind[r.Kind]++
			if r.Kind == upgradeKind {
				unfinished[r.Subject] = 1
			}
		}
		for _, k := range slices.Sorted(maps.Keys(byKind)) {
			gauge(descUnfinished, byKind[k], k)
		}
		for _, name := range slices.Sorted(maps.Keys(unfinished)) {
			gauge(descUpgradeUnfinished, unfinished[name], name)
		}
	}
	if ls, ok := c.store.(catalog.LabSnapshots); ok {
		all, err := ls.LabSnapshotList(ctx, 0)
		if err != nil {
			return nil, err
		}
		count := map[catalog.LabSnapshotState]float64{catalog.LabSnapshotCreating: 0, catalog.LabSnapshotComplete: 0, catalog.LabSnapshotIncomplete: 0}
		var newest time.Time
		for _, s := range all {
			count[s.State]++
			if s.State == catalog.LabSnapshotComplete && s.Created.After(newest) {
				newest = s.Created
			}
		}
		for _, st := range slices.Sorted(maps.Keys(count)) {
			gauge(descLabSnapshots, count[st], string(st))
		}
		if !newest.IsZero() {
			out = append(out, sample{desc: descLabSnapshotNewest, typ: prometheus.GaugeValue, value: seconds(newest)})
		}
	}
	c.mu.Lock()
	c.valid = valid
	c.mu.Unlock()
	return out, nil
}

// upgradeKind is the saga kind of upgrades (upgrade.Kind, which this
// package does not import: it would pull in the backup providers).
const upgradeKind = "upgrade"

// sagaKinds are the kinds of saga homelab runs (upgrade.Kind, deploy.Kind,
// labsnapshot.KindCreate and KindRestore; not imported, as upgradeKind),
// each reported by homelab_unfinished_changes even at 0.
var sagaKinds = []string{upgradeKind, "deploy", "snapshot create", "snapshot restore"}

type failureKey struct{ target, kind string }

// failures counts the failed runs and drills in the catalog's summaries,
// with a zero for each kind a lab target or repository can fail at that
// has not.
func failures(l *lab.Lab, sums map[string]catalog.Summary) map[failureKey]int {
	n := map[failureKey]int{}
	for _, name := range l.BackupNames() {
		for _, kind := range []string{string(catalog.KindBackup), string(catalog.KindPrune), kindDrill} {
			n[failureKey{name, kind}] = 0
		}
	}
	for name := range l.Repositories {
		n[failureKey{name, string(catalog.KindCheck)}] = 0
	}
	for target, sum := range sums {
		for kind, failed := range sum.Failed {
			n[failureKey{target, string(kind)}] += failed
		}
		if sum.DrillsFailed > 0 {
			n[failureKey{target, kindDrill}] += sum.DrillsFailed
		}
	}
	return n
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// seconds is t in seconds since the Unix epoch, with its fraction.
func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
