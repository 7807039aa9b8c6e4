package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/schedule"
	"homelab/internal/status"
)

// Catalog is what the daemon reads and writes: the catalog and its point
// lookups (the SQLite catalog is both).
type Catalog interface {
	catalog.Store
	catalog.Lookup
}

// Notifier sends notifications and heartbeats (*notify.Notifier).
type Notifier interface {
	Notify(e notify.Event)
	Ping(url string, e notify.Event)
	Close(ctx context.Context) error
}

// AlertKeeper is a Notifier that also keeps alerts firing while the
// daemon's state has them (app.AlertPusher pushing to Alertmanager).
type AlertKeeper interface {
	// Restore fires the alerts of events without notifying anyone: the
	// failed last backups and drills of the status report at the first
	// look for overdue targets of each generation of the lab (a start,
	// a reload).
	Restore(events []notify.Event)
	// Keep says which alerts of kind fire now: after each look for
	// overdue targets the targets whose overdue alert was sent
	// (notify.Overdue), after each host sampling the filesystems
	// filling (notify.DiskFilling), and after each reading of the
	// recoverable windows the targets whose archiving is stuck
	// (notify.ArchivingStuck); the others end.
	Keep(kind string, current []notify.Event)
	// Firing returns the events of the alerts firing now; a reload
	// restores them into the new generation's notifier.
	Firing() []notify.Event
}

// Config is what New needs. Lab, Catalog, NewManager and NewNotifier are
// required.
type Config struct {
	// Lab is the lab file as loaded at start; Reload loads Lab.Path again.
	Lab     *lab.Lab
	Catalog Catalog
	// Load reads the lab file on reload; default lab.Load.
	Load func(path string) (*lab.Lab, error)
	// NewManager returns the backup manager of a lab (internal/app
	// builds it: providers, restic clients). The daemon sets its Wait.
	NewManager func(l *lab.Lab) *backup.Manager
	// NewNotifier returns the notifier of a lab's notify entries, logging
	// to log (internal/app builds it); an error names the entry whose URL
	// is missing or invalid.
	NewNotifier func(l *lab.Lab, log *slog.Logger) (Notifier, error)
	// Now is the clock; default time.Now.
	Now func() time.Time
	Log *slog.Logger
	// WatchInterval is the longest time between two looks for overdue
	// targets (manual runs by the CLI are noticed within it). The daemon
	// otherwise looks when the next target's RPO runs out. Default 15m.
	WatchInterval time.Duration
	// MaxSleep bounds the scheduler's sleep, so a wall clock that jumps
	// is noticed. Default 30s.
	MaxSleep time.Duration
	// Hostname is this host's name as restic writes it in its locks;
	// default os.Hostname().
	Hostname string
	// SampleHost reads the host for the sampler (host.go; app.SampleHost);
	// nil: the daemon samples nothing.
	SampleHost SampleHostFunc
	// ReadAlerts reads the Alertmanager (alerts.go; app.ReadAlerts); nil:
	// the daemon does not poll it.
	ReadAlerts ReadAlertsFunc
	// AlertsInterval is how often it polls; default
	// DefaultAlertsInterval.
	AlertsInterval time.Duration
	// ReadWindows reads the pgbackrest targets' recoverable windows
	// (pitr.go; app.ReadWindows): at start, after each job of such a
	// target, after a reload and every status.WindowRefresh. nil: never.
	ReadWindows ReadWindowsFunc
}

// Daemon schedules and runs the jobs of a lab. Create it with New and
// start it with Run.
type Daemon struct {
	cfg   Config
	log   *slog.Logger
	state atomic.Pointer[labState]

	mu    sync.Mutex // guards sched
	sched *schedule.Scheduler

	queue    *queue
	reloadCh chan struct{}
	watchCh  chan struct{} // a backup finished: look for overdue targets now

	omu     sync.Mutex
	overdue map[string]bool // targets whose overdue alert was sent

	// The sampler's (host.go); fillSent and compacted only by SampleHost,
	// which runs in one goroutine.
	host      atomic.Pointer[status.HostStatus]
	fillSent  map[string]bool // mounts whose disk_filling was sent
	compacted time.Time       // when the samples were last compacted
	// The Alertmanager poller's (alerts.go); seen only by PollAlerts.
	alerts atomic.Pointer[status.AlertsStatus]
	seen   map[string]status.Alert // firing at the last poll, by fingerprint
	// The pgbackrest windows' (pitr.go): the newest reading, and a
	// request for the next.
	windows  atomic.Pointer[map[string]status.Window]
	windowCh chan struct{}
	// stuckSent: targets whose archiving_stuck was sent; only
	// RefreshWindows, which runs in one goroutine, touches it.
	stuckSent map[string]bool
}

// labState is one generation of the lab file: a reload swaps it whole.
type labState struct {
	lab      *lab.Lab
	manager  *backup.Manager
	notifier Notifier
	// restored: the notifier (an AlertKeeper) was given the report's
	// failures; only the run loop (watchOverdue) touches it.
	restored bool
}

// New checks cfg and builds the daemon's first generation of the lab
// (its manager and notifier). It returns an error naming the notify entry
// whose URL is missing or invalid.
func New(cfg Config) (*Daemon, error) {
	if cfg.Lab == nil || cfg.Catalog == nil || cfg.NewManager == nil || cfg.NewNotifier == nil {
		return nil, errors.New("daemon: Lab, Catalog, NewManager and NewNotifier are required")
	}
	if cfg.Load == nil {
		cfg.Load = lab.Load
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 15 * time.Minute
	}
	if cfg.AlertsInterval <= 0 {
		cfg.AlertsInterval = DefaultAlertsInterval
	}
	if cfg.MaxSleep <= 0 {
		cfg.MaxSleep = 30 * time.Second
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	d := &Daemon{cfg: cfg, log: cfg.Log, reloadCh: make(chan struct{}, 1), watchCh: make(chan struct{}, 1), windowCh: make(chan struct{}, 1), stuckSent: map[string]bool{}, overdue: map[string]bool{}, fillSent: map[string]bool{}}
	st, err := d.build(cfg.Lab)
	if err != nil {
		return nil, err
	}
	d.state.Store(st)
	return d, nil
}

func (d *Daemon) build(l *lab.Lab) (*labState, error) {
	n, err := d.cfg.NewNotifier(l, d.log)
	if err != nil {
		return nil, err
	}
	m := d.cfg.NewManager(l)
	m.Wait = true // a manual `homelab backup run` holding a target is waited for
	if m.Log == nil {
		m.Log = d.log
	}
	return &labState{lab: l, manager: m, notifier: n}, nil
}

// Lab returns the lab file currently in force.
func (d *Daemon) Lab() *lab.Lab { return d.state.Load().lab }

// Reload asks the running daemon to load its lab file again (SIGHUP). It
// does not block.
func (d *Daemon) Reload() {
	select {
	case d.reloadCh <- struct{}{}:
	default:
	}
}

// Specs returns the scheduled jobs of l: each target's backup and drill,
// and each repository's check, that have a schedule. A pgbackrest target
// with pgbackrest.schedules has a backup job per type instead (Key.Type
// full, diff, incr; lab.PgBackRest.TypeSchedules).
func Specs(l *lab.Lab) ([]schedule.Spec, error) {
	var specs []schedule.Spec
	add := func(key schedule.Key, expr string, jitter time.Duration) error {
		if expr == "" {
			return nil
		}
		s, err := lab.ParseSchedule(expr)
		if err != nil {
			return fmt.Errorf("%s: schedule %q: %w", strings.ReplaceAll(key.String(), ":", " "), expr, err)
		}
		specs = append(specs, schedule.Spec{Key: key, Expr: expr, Schedule: s, Jitter: jitter})
		return nil
	}
	for _, name := range l.BackupNames() {
		b := l.Backups[name]
		var typed []lab.TypeSchedule
		if b.Provider == lab.ProviderPgBackRest && b.PgBackRest != nil {
			typed = b.PgBackRest.TypeSchedules(b.Schedule)
		}
		var err error
		if typed == nil {
			err = add(schedule.Key{Kind: schedule.KindBackup, Name: name}, b.Schedule, b.Jitter)
		}
		for _, ts := range typed {
			err = errors.Join(err, add(schedule.Key{Kind: schedule.KindBackup, Name: name, Type: ts.Type}, ts.Expr, b.Jitter))
		}
		if err = errors.Join(err, add(schedule.Key{Kind: schedule.KindDrill, Name: name}, b.Drill.Schedule, b.Drill.Jitter)); err != nil {
			return nil, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.Repositories)) {
		r := l.Repositories[name]
		if err := add(schedule.Key{Kind: schedule.KindCheck, Name: name}, r.Check.Schedule, r.Check.Jitter); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

// lastSuccess reads a job's newest successful run from the catalog, for
// the scheduler's catch-up rule. A catalog error counts as "ran": the
// daemon would rather miss one catch-up than repeat jobs on every start.
func (d *Daemon) lastSuccess(ctx context.Context) schedule.LastSuccess {
	return func(k schedule.Key) (time.Time, bool) {
		var (
			t   time.Time
			ok  bool
			err error
		)
		switch {
		case k.Kind == schedule.KindBackup && k.Type != "":
			t, ok, err = d.lastOfType(ctx, k.Name, k.Type)
		case k.Kind == schedule.KindBackup:
			var r catalog.Run
			r, ok, err = d.cfg.Catalog.LastRun(ctx, k.Name, catalog.KindBackup, catalog.ResultOK, catalog.ResultPartial)
			t = r.Start
		case k.Kind == schedule.KindCheck:
			var r catalog.Run
			r, ok, err = d.cfg.Catalog.LastRun(ctx, k.Name, catalog.KindCheck, catalog.ResultOK)
			t = r.Start
		case k.Kind == schedule.KindDrill:
			var ds []catalog.Drill
			ds, err = d.cfg.Catalog.Drills(ctx, catalog.DrillFilter{Target: k.Name, Result: catalog.ResultOK, Limit: 1})
			if ok = len(ds) > 0; ok {
				t = ds[0].Start
			}
		}
		if err != nil {
			d.log.Error("read last run from the catalog", "job", k.String(), "err", err)
			return d.cfg.Now(), true
		}
		return t, ok
	}
}

// lastOfType is the start of the newest good backup of target that holds
// what a backup of type typ would (pgbackrest: a full one for a full, a
// full or diff for a diff, any for an incr; pgbackrest.TypeState), read
// from the catalog's TypedRuns of the target, however far back it is.
func (d *Daemon) lastOfType(ctx context.Context, target, typ string) (time.Time, bool, error) {
	runs, err := d.cfg.Catalog.TypedRuns(ctx, target)
	if err != nil {
		return time.Time{}, false, err
	}
	if good, _ := pgbackrest.TypeState(runs, typ); good != nil {
		return good.Start, true, nil
	}
	return time.Time{}, false, nil
}

// Run schedules and runs jobs until ctx is cancelled, then interrupts the
// running jobs and waits for them (at most serve.shutdown_timeout). It
// returns nil after a clean shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	st := d.state.Load()
	specs, err := Specs(st.lab)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.sched = schedule.New(specs, d.cfg.Now(), d.lastSuccess(ctx))
	d.mu.Unlock()
	d.queue = newQueue(ctx, st.lab.Serve.Concurrency)
	d.log.Info("daemon started", "lab", st.lab.Path, "jobs", len(specs), "concurrency", st.lab.Serve.Concurrency)

	// The samplers of the host and the Alertmanager, stopped before Run
	// returns.
	sctx, stopSamplers := context.WithCancel(ctx)
	var samplers sync.WaitGroup
	if d.cfg.SampleHost != nil {
		samplers.Go(func() {
			every(sctx, func() time.Duration { return d.state.Load().lab.Hosts.SampleInterval }, d.SampleHost)
		})
	}
	if d.cfg.ReadAlerts != nil {
		samplers.Go(func() { every(sctx, func() time.Duration { return d.cfg.AlertsInterval }, d.PollAlerts) })
	}
	if d.cfg.ReadWindows != nil {
		samplers.Go(func() { d.refreshWindows(sctx) })
	}
	defer func() {
		stopSamplers()
		samplers.Wait()
	}()

	// The first look comes after the catch-up jobs were queued.
	watchAt := d.cfg.Now().Add(time.Second)
	for {
		if !d.cfg.Now().Before(watchAt) {
			watchAt = d.watchOverdue(ctx)
		}
		d.dispatch()
		d.mu.Lock()
		next, ok := d.sched.Next()
		d.mu.Unlock()
		sleep := min(d.cfg.MaxSleep, max(0, watchAt.Sub(d.cfg.Now())))
		if ok {
			sleep = min(sleep, max(0, next.Sub(d.cfg.Now())))
		}
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return d.shutdown()
		case <-d.reloadCh:
			d.reload(ctx)
			watchAt = d.cfg.Now() // the new notifier's alerts
		case <-d.watchCh:
			watchAt = d.cfg.Now()
		case <-timer.C:
		}
		timer.Stop()
	}
}

// dispatch queues the jobs whose time has come. Of the typed backups of
// one target that fire together only the largest type runs (FoldTypes).
func (d *Daemon) dispatch() {
	d.mu.Lock()
	fires := d.sched.Due(d.cfg.Now())
	d.mu.Unlock()
	fires, folded := FoldTypes(fires)
	for _, f := range folded {
		d.log.Info("backup slot folded into a larger backup type firing with it", "job", f.Key.String(), "slot", f.Slot)
	}
	for _, f := range fires {
		st := d.state.Load()
		t, ok := d.task(st.lab, f)
		if !ok {
			continue
		}
		if !d.queue.add(t) {
			d.log.Info("job still queued or running; slot skipped", "job", f.Key.String(), "slot", f.Slot)
		}
	}
}

// FoldTypes keeps, of the typed backup fires (Key.Type set) of each
// target, only the one of the largest type (pgbackrest.Rank: full, then
// diff, then incr), in the order of fires; folded are the others.
func FoldTypes(fires []schedule.Fire) (kept, folded []schedule.Fire) {
	best := map[string]schedule.Fire{}
	for _, f := range fires {
		if f.Key.Kind != schedule.KindBackup || f.Key.Type == "" {
			continue
		}
		if b, ok := best[f.Key.Name]; !ok || pgbackrest.Rank(f.Key.Type) > pgbackrest.Rank(b.Key.Type) {
			best[f.Key.Name] = f
		}
	}
	for _, f := range fires {
		if b, ok := best[f.Key.Name]; ok && f.Key.Kind == schedule.KindBackup && f.Key != b.Key {
			folded = append(folded, f)
			continue
		}
		kept = append(kept, f)
	}
	return kept, folded
}

// task turns a fired schedule entry into a queue task.
func (d *Daemon) task(l *lab.Lab, f schedule.Fire) (task, bool) {
	key := f.Key.String()
	var repo string
	switch f.Key.Kind {
	case schedule.KindCheck:
		if l.Repositories[f.Key.Name] == nil {
			return task{}, false
		}
		repo = f.Key.Name
	default:
		b := l.Backups[f.Key.Name]
		if b == nil {
			return task{}, false
		}
		repo = b.Repository
		switch {
		case b.Provider == lab.ProviderPgBackRest: // its own repository: its jobs queue together, one at a time
			repo = backup.TargetRepository(b.Provider, b.Name)
		case repo == "": // s3-mirror: jobs on one destination bucket queue together
			repo = "s3-mirror:" + b.Destination.Endpoint + "/" + b.Destination.Bucket
		}
	}
	return task{key: key, repo: repo, run: func(ctx context.Context) { d.runJob(ctx, f, repo) }}, true
}

// reload loads the lab file again. An invalid file, one that moves
// state_dir (the catalog and locks cannot move under a running daemon),
// or a panic while loading it or building its parts is reported (logged
// and recorded as a reload_failed event) and the running configuration
// stays.
func (d *Daemon) reload(ctx context.Context) {
	old := d.state.Load()
	l, specs, st, err := d.loadGeneration(old)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "lab", old.lab.Path, "err", err)
		d.event(ctx, "error", "", "reload_failed", "reload of "+old.lab.Path+" failed: "+err.Error())
		return
	}
	if oldK, isKeeper := old.notifier.(AlertKeeper); isKeeper {
		if nk, isKeeper := st.notifier.(AlertKeeper); isKeeper {
			nk.Restore(oldK.Firing()) // the old one's alerts go on
		}
	}
	d.state.Store(st)
	d.mu.Lock()
	d.sched.Reload(specs, d.cfg.Now(), d.lastSuccess(ctx))
	d.mu.Unlock()
	go func() { // let deliveries of the old generation finish
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		old.notifier.Close(cctx)
	}()
	d.windowsChanged(st, "")
	d.log.Info("lab file reloaded", "lab", l.Path, "jobs", len(specs))
	d.event(ctx, "info", "", "reloaded", fmt.Sprintf("lab file reloaded: %d scheduled jobs", len(specs)))
}

// loadGeneration loads the lab file of old again and builds its
// schedules, manager and notifier, touching nothing of the running
// daemon. A panic in any of it is returned as an error (its stack is
// logged): a reload must never take the daemon down.
func (d *Daemon) loadGeneration(old *labState) (l *lab.Lab, specs []schedule.Spec, st *labState, err error) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("panic while reloading the lab file", "lab", old.lab.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			l, specs, st, err = nil, nil, nil, fmt.Errorf("internal error (please report it): %v", r)
		}
	}()
	l, err = d.cfg.Load(old.lab.Path)
	if err != nil {
		return nil, nil, nil, err
	}
	if l.StateDir != old.lab.StateDir {
		return nil, nil, nil, fmt.Errorf("state_dir changed from %s to %s: restart homelab serve to move it", old.lab.StateDir, l.StateDir)
	}
	if specs, err = Specs(l); err != nil {
		return nil, nil, nil, err
	}
	if st, err = d.build(l); err != nil {
		return nil, nil, nil, err
	}
	return l, specs, st, nil
}

// shutdown stops accepting jobs, waits for the interrupted running jobs
// (their context is already cancelled) and flushes notifications.
func (d *Daemon) shutdown() error {
	st := d.state.Load()
	d.queue.close()
	d.log.Info("shutting down: interrupting running jobs", "timeout", st.lab.Serve.ShutdownTimeout)
	wctx, cancel := context.WithTimeout(context.Background(), st.lab.Serve.ShutdownTimeout)
	defer cancel()
	var err error
	if n := d.queue.wait(wctx); n > 0 {
		err = fmt.Errorf("shutdown: %d jobs still running after %s", n, st.lab.Serve.ShutdownTimeout)
	}
	nctx, ncancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ncancel()
	if nerr := st.notifier.Close(nctx); nerr != nil {
		d.log.Warn("notifications not delivered before shutdown", "err", nerr)
	}
	d.log.Info("daemon stopped")
	return err
}

// JobInfo is one scheduled job and what the daemon is doing about it.
type JobInfo struct {
	Key     schedule.Key
	Expr    string
	Next    time.Time
	Running bool
	Queued  bool
}

// Jobs returns every scheduled job, sorted by key (for the status page).
func (d *Daemon) Jobs() []JobInfo {
	d.mu.Lock()
	if d.sched == nil {
		d.mu.Unlock()
		return nil
	}
	entries := d.sched.Entries()
	d.mu.Unlock()
	var states map[string]string
	if d.queue != nil {
		states = d.queue.states()
	}
	out := make([]JobInfo, 0, len(entries))
	for _, e := range entries {
		s := states[e.Key.String()]
		out = append(out, JobInfo{Key: e.Key, Expr: e.Expr, Next: e.Next, Running: s == stateRunning, Queued: s == stateQueued})
	}
	return out
}

func (d *Daemon) event(ctx context.Context, level, target, kind, msg string) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.cfg.Catalog.AddEvent(ectx, catalog.Event{Time: d.cfg.Now().UTC(), Level: level, Target: target, Kind: kind, Message: msg}); err != nil {
		d.log.Warn("record event", "err", err)
	}
}

// oneLine shortens an error for a notification: its first line.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
