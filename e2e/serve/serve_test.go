package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"homelab/e2e/e2etest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// receiver is a real HTTP endpoint for notifications and heartbeats.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

type hit struct {
	Path string
	Body string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.hits = append(r.hits, hit{Path: req.URL.Path, Body: string(b)})
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// count returns how many requests to path had a body containing all of
// words.
func (r *receiver) count(path string, words ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, h := range r.hits {
		if h.Path != path {
			continue
		}
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(h.Body, w)
		}
		if ok {
			n++
		}
	}
	return n
}

func (r *receiver) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, h := range r.hits {
		fmt.Fprintf(&b, "%s %s\n", h.Path, h.Body)
	}
	return b.String()
}

// daemonProc is a running `homelab serve`.
type daemonProc struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer // its stderr: JSON log lines
	mu   *sync.Mutex
	done chan error
}

func startServe(t *testing.T, dir string) *daemonProc {
	t.Helper()
	p := &daemonProc{log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	p.cmd = exec.Command("homelab", "--lab", filepath.Join(dir, "lab.yaml"), "serve")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"))
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

func (p *daemonProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stopLimit bounds the wait for the daemon to exit after SIGTERM: its
// shutdown_timeout (20s) and notification flush (5s), with room for a
// busy machine. Whether it kept to shutdown_timeout is told by its exit
// status and log (shutdownClean), not by a clock.
const stopLimit = 2 * time.Minute

// stop sends SIGTERM and returns the exit error.
func (p *daemonProc) stop(t *testing.T) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(stopLimit):
		t.Fatalf("homelab serve did not exit within %s of SIGTERM\n%s", stopLimit, p.logText())
	}
	return nil
}

// logLine is one line of the daemon's JSON log (slog's JSON handler).
type logLine struct {
	Msg     string `json:"msg"`
	Job     string `json:"job"`
	Slot    string `json:"slot"`
	CatchUp bool   `json:"catch_up"`
}

// lines returns the daemon's log lines with message msg for job (any job
// when empty); lines that are not JSON are left out.
func (p *daemonProc) lines(msg, job string) []logLine {
	var out []logLine
	for _, l := range strings.Split(p.logText(), "\n") {
		var ll logLine
		if json.Unmarshal([]byte(l), &ll) == nil && ll.Msg == msg && (job == "" || ll.Job == job) {
			out = append(out, ll)
		}
	}
	return out
}

// The limits of the waits below bound a hang: they are minutes where the
// event comes within seconds on an idle machine, so that a busy one
// (restic and pg_dump starved of CPU) still passes.
const (
	longWait  = 3 * time.Minute
	shortWait = 2 * time.Minute
)

type serveLab struct {
	dir, pgHost, hook, ping, listen string
	pgPort                          int
}

// write writes lab.yaml; schedules maps "files", "db", "drill" and
// "check" to a schedule ("" leaves it manual).
func (s serveLab) write(t *testing.T, schedules map[string]string) {
	t.Helper()
	q := func(k string) string { return fmt.Sprintf("%q", schedules[k]) }
	lab := fmt.Sprintf(`name: e2e
repositories:
  local:
    url: repo
    password_file: restic.pass
    check: {schedule: %s}
backups:
  files:
    provider: restic
    repository: local
    source: {paths: [data]}
    schedule: %s
    retention: {keep_last: 2}
    drill: {schedule: %s, checks: [{path: data/a.txt}]}
    heartbeat: {url: "%s"}
  db:
    provider: postgres
    repository: local
    source: {host: %s, port: %d, database: app, user: postgres, password_file: pg.pass, sslmode: disable}
    schedule: %s
    timeout: 5m
    retention: {keep_last: 2}
    drill: {schedule: %s, checks: [{sql: "select count(*) = 1000 from items"}]}
notify:
  - url: "%s"
serve:
  listen: %s
  shutdown_timeout: 20s
`, q("check"), q("files"), q("drill"), s.ping, s.pgHost, s.pgPort, q("db"), q("drill"), s.hook, s.listen)
	if err := os.WriteFile(filepath.Join(s.dir, "lab.yaml"), []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}
}

// initLab initialises the repositories of dir's lab.yaml and returns its
// catalog, open until the test ends.
func initLab(t *testing.T, dir string) *catalog.SQLite {
	t.Helper()
	if out, err := exec.Command("homelab", "--lab", filepath.Join(dir, "lab.yaml"), "repo", "init", "--all").CombinedOutput(); err != nil {
		t.Fatalf("repo init: %v\n%s", err, out)
	}
	store, err := catalog.Open(context.Background(), filepath.Join(dir, ".homelab", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// runs counts the catalog's runs of target and kind with result.
func runs(t *testing.T, store catalog.Store, target string, kind catalog.Kind, res catalog.Result) []catalog.Run {
	t.Helper()
	rs, err := store.Runs(context.Background(), catalog.RunFilter{Target: target, Kind: kind, Result: res})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestServe runs `homelab serve` against real restic and PostgreSQL with
// schedules every few seconds: backups, prunes, drills and checks land in
// the catalog; a broken database password is notified, then its recovery;
// SIGHUP with a bad file keeps the old one; /metrics matches the catalog;
// SIGTERM mid-backup records it interrupted and leaves no restic lock;
// the next start catches up once.
func TestServe(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" { // CI runs it whatever flags it gets
		t.Skip("end to end: runs the daemon for about a minute")
	}
	testenv.Restic(t)
	pg := testenv.Postgres(t)
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv(lab.EnvMinEvery, "1s") // schedules every few seconds, below the lab file's 1m floor
	pg.PSQL(t, "postgres", "create database app")
	pg.PSQL(t, "app", "create table items (id int primary key, name text); insert into items select g, 'item ' || g from generate_series(1, 1000) g")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const resticPass = "e2e restic passphrase 4471"
	const wrongPG = "not-the-password-9931"
	must(os.WriteFile(filepath.Join(dir, "restic.pass"), []byte(resticPass+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "pg.pass"), []byte(wrongPG+"\n"), 0o600))
	must(os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("alpha\n"), 0o644))

	hooks := newReceiver(t)
	s := serveLab{dir: dir, pgHost: pg.Host, pgPort: pg.Port,
		hook:   "generic+" + hooks.URL + "/hook?template=json",
		ping:   hooks.URL + "/ping/files",
		listen: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	fast := map[string]string{"files": "@every 2s", "db": "@every 2s", "drill": "@every 4s", "check": "@every 6s"}
	s.write(t, fast)
	store := initLab(t, dir)

	// 1. Files back up, prune, drill and check on schedule; the database
	// backup fails (wrong password) and that is notified.
	d := startServe(t, dir)
	dump := func() string { return d.logText() + "\nnotifications:\n" + hooks.all() }
	e2etest.Eventually(t, longWait, "backups, a prune, drills and a check of files", func() bool {
		pr := runs(t, store, "files", catalog.KindPrune, catalog.ResultOK)
		removed := false
		for _, r := range pr {
			removed = removed || r.Files > 0
		}
		drills, _ := store.Drills(ctx, catalog.DrillFilter{Target: "files", Result: catalog.ResultOK})
		return len(runs(t, store, "files", catalog.KindBackup, catalog.ResultOK)) >= 3 && removed &&
			len(drills) >= 1 && len(runs(t, store, "local", catalog.KindCheck, catalog.ResultOK)) >= 1
	}, dump)
	e2etest.Eventually(t, shortWait, "the failure notification of db", func() bool {
		return hooks.count("/hook", "backup of db failed", "password authentication failed") >= 1
	}, dump)
	if n := hooks.count("/ping/files"); n < 1 {
		t.Errorf("heartbeat of files pinged %d times", n)
	}
	if n := hooks.count("/hook", "backup of files failed"); n != 0 {
		t.Errorf("files failure notified %d times", n)
	}
	if n := len(runs(t, store, "db", catalog.KindBackup, catalog.ResultOK)); n != 0 {
		t.Errorf("%d good db backups with a wrong password", n)
	}

	// 2. The password is fixed: the next backup recovers, and says so.
	must(os.WriteFile(filepath.Join(dir, "pg.pass"), []byte(pg.Password+"\n"), 0o600))
	e2etest.Eventually(t, shortWait, "the recovery notification of db", func() bool {
		return hooks.count("/hook", "backup of db recovered") >= 1
	}, dump)
	e2etest.Eventually(t, shortWait, "a passing drill of db", func() bool {
		ds, _ := store.Drills(ctx, catalog.DrillFilter{Target: "db", Result: catalog.ResultOK})
		return len(ds) > 0
	}, dump)

	// 3. SIGHUP with a broken file: reported, the old schedules go on.
	good, _ := os.ReadFile(filepath.Join(dir, "lab.yaml"))
	must(os.WriteFile(filepath.Join(dir, "lab.yaml"), append(good, []byte("bogus_field: 1\n")...), 0o644))
	before := len(runs(t, store, "files", catalog.KindBackup, ""))
	d.cmd.Process.Signal(syscall.SIGHUP)
	e2etest.Eventually(t, shortWait, "the failed reload to be logged", func() bool {
		return strings.Contains(d.logText(), "reload failed") && strings.Contains(d.logText(), "bogus_field")
	}, dump)
	e2etest.Eventually(t, shortWait, "backups to go on after a failed reload", func() bool {
		return len(runs(t, store, "files", catalog.KindBackup, "")) > before+1
	}, dump)

	// A valid file without schedules: the daemon goes quiet, and /metrics
	// then agrees with the catalog.
	s.write(t, map[string]string{})
	d.cmd.Process.Signal(syscall.SIGHUP)
	e2etest.Eventually(t, shortWait, "the reload", func() bool { return strings.Contains(d.logText(), "lab file reloaded") }, dump)
	quiet(t, d, store, dump)
	checkMetrics(t, store, "http://"+s.listen+"/metrics")
	// A backup by the CLI while the daemon runs, after the metrics above
	// were cached: the next scrape shows it (the CLI has committed it when
	// it exits).
	if out, err := exec.Command("homelab", "--lab", filepath.Join(dir, "lab.yaml"), "backup", "run", "files").CombinedOutput(); err != nil {
		t.Fatalf("backup run files: %v\n%s", err, out)
	}
	checkMetrics(t, store, "http://"+s.listen+"/metrics")
	noOverlap(t, store)

	// 4. SIGTERM in the middle of a database backup: pg_dump waits on a
	// table lock, so restic is running and holds its repository lock.
	goodDB := runs(t, store, "db", catalog.KindBackup, catalog.ResultOK)
	conn, err := pgx.Connect(ctx, pg.DSN("app"))
	must(err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	must(err)
	_, err = tx.Exec(ctx, "lock table items in access exclusive mode")
	must(err)
	s.write(t, map[string]string{"db": "@every 2s"})
	d.cmd.Process.Signal(syscall.SIGHUP)
	e2etest.Eventually(t, shortWait, "a db backup to be running with a restic lock", func() bool {
		locks, _ := filepath.Glob(filepath.Join(dir, "repo", "locks", "*"))
		return len(runs(t, store, "db", catalog.KindBackup, catalog.ResultRunning)) == 1 && len(locks) == 1
	}, dump)
	if err := d.stop(t); err != nil {
		t.Errorf("homelab serve exited with %v after SIGTERM, want 0\n%s", err, d.logText())
	}
	shutdownClean(t, d)
	tx.Rollback(ctx)
	interrupted := runs(t, store, "db", catalog.KindBackup, catalog.ResultInterrupted)
	if len(interrupted) != 1 || len(runs(t, store, "db", catalog.KindBackup, catalog.ResultRunning)) != 0 {
		t.Errorf("interrupted runs = %d, want the one cut short by SIGTERM", len(interrupted))
	}
	if locks, _ := filepath.Glob(filepath.Join(dir, "repo", "locks", "*")); len(locks) != 0 {
		t.Errorf("restic locks left after SIGTERM: %v", locks)
	}
	snaps := resticSnapshots(t, dir)
	if newest := goodDB[0].SnapshotID; !snaps[newest] {
		t.Errorf("the newest good db snapshot %s is gone after the interrupted backup (have %v)", newest, snaps)
	}
	for _, secret := range []string{pg.Password, wrongPG, resticPass} {
		if strings.Contains(d.logText(), secret) || strings.Contains(hooks.all(), secret) {
			t.Errorf("a password appears in the daemon's log or notifications")
		}
	}

	// 5. The next start catches up once: db missed its slot while the
	// daemon was down (for "@every 10s", a whole interval since the last
	// good backup started), and runs once at start, not once per slot.
	const every = 10 * time.Second
	s.write(t, map[string]string{"db": "@every 10s"})
	ok := len(runs(t, store, "db", catalog.KindBackup, catalog.ResultOK))
	e2etest.Eventually(t, shortWait, "a whole @every 10s interval since the last good db backup", func() bool {
		last, found, err := store.LastRun(ctx, "db", catalog.KindBackup, catalog.ResultOK)
		return err == nil && found && time.Since(last.Start) > every+time.Second
	}, dump)
	d = startServe(t, dir)
	// The catch-up has run when its job has finished; a second fire of
	// the missed slot would have come at once, while it ran.
	e2etest.Eventually(t, longWait, "the catch-up backup of db to finish", func() bool {
		return len(d.lines("job finished", "backup:db")) > 0
	}, dump)
	if n := len(runs(t, store, "db", catalog.KindBackup, catalog.ResultOK)) - ok; n != 1 {
		t.Errorf("%d db backups right after the start, want exactly one catch-up", n)
	}
	started := d.lines("job started", "backup:db")
	if n := len(started); n != 1 {
		t.Errorf("%d db backups started since the restart, want 1\n%s", n, d.logText())
	}
	if len(started) == 0 || !started[0].CatchUp {
		t.Errorf("the first run after the start is not marked catch_up\n%s", d.logText())
	}
	for _, sk := range d.lines("job still queued or running; slot skipped", "backup:db") {
		if len(started) > 0 && sk.Slot == started[0].Slot {
			t.Errorf("the missed slot %s fired again while its catch-up ran\n%s", sk.Slot, d.logText())
		}
	}
	if err := d.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// shutdownClean checks the daemon's log for a shutdown within its
// shutdown_timeout: the running jobs ended in time (otherwise it logs,
// and exits with, "jobs still running after"), and it got to its end.
func shutdownClean(t *testing.T, d *daemonProc) {
	t.Helper()
	if log := d.logText(); strings.Contains(log, "jobs still running after") || len(d.lines("daemon stopped", "")) != 1 {
		t.Errorf("the shutdown did not end within shutdown_timeout (20s)\n%s", log)
	}
}

// noOverlap checks that no two jobs ran at once: everything here uses the
// one repository, and the daemon runs a repository's jobs one at a time.
func noOverlap(t *testing.T, store catalog.Store) {
	t.Helper()
	type span struct {
		what       string
		start, end time.Time
	}
	var spans []span
	all, _ := store.Runs(context.Background(), catalog.RunFilter{})
	for _, r := range all {
		spans = append(spans, span{fmt.Sprintf("%s %s %s", r.Kind, r.Target, r.RunID), r.Start, r.End})
	}
	drills, _ := store.Drills(context.Background(), catalog.DrillFilter{})
	for _, d := range drills {
		spans = append(spans, span{"drill " + d.Target + " " + d.RunID, d.Start, d.End})
	}
	if len(spans) < 10 {
		t.Fatalf("only %d runs and drills", len(spans))
	}
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if a.start.Before(b.end) && b.start.Before(a.end) {
				t.Errorf("%s (%s-%s) and %s (%s-%s) overlap on one repository", a.what, a.start.Format("15:04:05.000"),
					a.end.Format("15:04:05.000"), b.what, b.start.Format("15:04:05.000"), b.end.Format("15:04:05.000"))
			}
		}
	}
}

// quietFor is how long the daemon must stay quiet for quiet: no job
// between two of its log lines, and none queued that could start after,
// which a queued job does within milliseconds of the one before.
const quietFor = 2 * time.Second

// quiet waits until every job the daemon started has finished (by its
// log, where a job starts before it records a run), no run is running in
// the catalog, and nothing changed for quietFor.
func quiet(t *testing.T, d *daemonProc, store catalog.Store, dump func() string) {
	t.Helper()
	last, since := -1, time.Now()
	e2etest.Eventually(t, shortWait, "the daemon to go quiet", func() bool {
		all, _ := store.Runs(context.Background(), catalog.RunFilter{})
		drills, _ := store.Drills(context.Background(), catalog.DrillFilter{})
		started, finished := len(d.lines("job started", "")), len(d.lines("job finished", ""))
		n := len(all) + len(drills) + started
		running := len(runs(t, store, "", "", catalog.ResultRunning))
		if n != last || running > 0 || started != finished {
			last, since = n, time.Now()
		}
		return time.Since(since) > quietFor
	}, dump)
}

// scrape gets url, parses it with the Prometheus text parser and returns
// a lookup of the first series of name whose labels include labels (a
// gauge's or counter's value, and whether there is one).
func scrape(t *testing.T, url string) func(name string, labels map[string]string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			}
		}
		return 0, false
	}
}

// checkMetrics scrapes url and compares each target's series with the
// catalog.
func checkMetrics(t *testing.T, store catalog.Store, url string) {
	t.Helper()
	value := scrape(t, url)
	ctx := context.Background()
	for _, target := range []string{"files", "db"} {
		good, err := store.Runs(ctx, catalog.RunFilter{Target: target, Kind: catalog.KindBackup, Result: catalog.ResultOK, Limit: 1})
		if err != nil || len(good) == 0 {
			t.Fatalf("%s: no good backup in the catalog (%v)", target, err)
		}
		r := good[0]
		lb := map[string]string{"target": target}
		for name, want := range map[string]float64{
			"homelab_backup_last_success_timestamp_seconds": float64(r.End.UnixNano()) / 1e9,
			"homelab_backup_duration_seconds":               r.End.Sub(r.Start).Seconds(),
			"homelab_backup_size_bytes":                     float64(r.Bytes),
		} {
			if got, ok := value(name, lb); !ok || math.Abs(got-want) > 1e-3 {
				t.Errorf("%s{target=%q} = %v (present %v), catalog says %v", name, target, got, ok, want)
			}
		}
		drills, _ := store.Drills(ctx, catalog.DrillFilter{Target: target, Result: catalog.ResultOK, Limit: 1})
		if len(drills) == 1 {
			dr := drills[0]
			if got, ok := value("homelab_drill_last_success_timestamp_seconds", lb); !ok || math.Abs(got-float64(dr.End.UnixNano())/1e9) > 1e-3 {
				t.Errorf("drill last success of %s = %v, catalog says %v", target, got, dr.End)
			}
			if got, ok := value("homelab_drill_restore_seconds", lb); !ok || math.Abs(got-dr.RTO.Seconds()) > 1e-3 {
				t.Errorf("drill RTO of %s = %v, catalog says %v", target, got, dr.RTO)
			}
		}
		failed := len(runs(t, store, target, catalog.KindBackup, catalog.ResultFailed))
		got, ok := value("homelab_job_failures_total", map[string]string{"target": target, "kind": "backup"})
		if failed > 0 && (!ok || got != float64(failed)) || failed == 0 && ok && got != 0 {
			t.Errorf("homelab_job_failures_total{target=%q,kind=backup} = %v (present %v), catalog has %d failed runs", target, got, ok, failed)
		}
	}
}

// resticSnapshots lists the repository's snapshot IDs with plain restic.
func resticSnapshots(t *testing.T, dir string) map[string]bool {
	t.Helper()
	cmd := exec.Command("restic", "-r", filepath.Join(dir, "repo"), "snapshots", "--json", "--no-lock")
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD_FILE="+filepath.Join(dir, "restic.pass"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("restic snapshots: %v", err)
	}
	var snaps []struct{ ID string }
	if err := json.Unmarshal(out, &snaps); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range snaps {
		ids[s.ID] = true
	}
	return ids
}
