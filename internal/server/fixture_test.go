package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
)

// epoch is the tests' fixed "now": Monday 2026-11-23 10:15 UTC.
var epoch = time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)

// at is epoch plus h hours and m minutes (negative for the past).
func at(h, m int) time.Time {
	return epoch.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

const MiB = 1 << 20

// fixtureLab has a healthy target (files), an overdue one (gitlab-db), one
// whose last drill failed (photos) and a manual one never run (scratch);
// a service whose probe fails (postgres: PG_DSN is not set), one whose
// probe passes (queue) and one without a probe (wiki); a CA and three
// leaves (see issueCerts): one fine (gitlab), one inside its rotation
// window (registry) and one never issued (wiki).
const fixtureLab = `
name: devlab
repositories:
  local: {url: /srv/backups/restic, password_file: /etc/homelab/restic.pass}
services:
  postgres:
    runtime: {compose: {project: devlab, service: postgres}}
    health: {postgres: {dsn_env: PG_DSN}}
  queue:
    runtime: {exec: {start: "./queue start", stop: "./queue stop", status: "./queue status"}}
    health: {command: {run: "true"}}
  wiki:
    runtime: {systemd: {unit: wiki.service}}
backups:
  files:
    provider: restic
    source: {paths: [/srv/files]}
    repository: local
    schedule: "0 * * * *"
  gitlab-db:
    provider: postgres
    source: {database: gitlab, password_env: PGPASSWORD_GITLAB}
    repository: local
    schedule: "0 2 * * *"
  photos:
    provider: restic
    source: {paths: [/srv/photos]}
    repository: local
    schedule: "30 1 * * *"
  scratch:
    provider: restic
    source: {paths: [/srv/scratch]}
    repository: local
certs:
  leaves:
    gitlab: {sans: [gitlab.lab, "*.gitlab.lab"]}
    registry: {sans: [registry.lab]}
    wiki: {sans: [wiki.lab]}
`

// Messages of the fixture's failures.
const (
	permissionDenied = "restic: Fatal: unable to open repository at /srv/backups/restic: permission denied"
	indexMissing     = "check /srv/photos/index.db: missing"
)

func parseLab(t testing.TB, yaml string) *lab.Lab {
	t.Helper()
	l, err := lab.Parse(filepath.Join(t.TempDir(), "lab.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openCatalog(t *testing.T) *catalog.SQLite {
	t.Helper()
	s, err := catalog.Open(t.Context(), filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addRun(t *testing.T, s catalog.Store, r catalog.Run) catalog.Run {
	t.Helper()
	if r.RunID == "" {
		r.RunID = fmt.Sprintf("%s-%s-%d", r.Target, r.Kind, r.Start.Unix())
	}
	r, err := s.StartRun(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addDrill(t *testing.T, s catalog.Store, d catalog.Drill) {
	t.Helper()
	if d.RunID == "" {
		d.RunID = fmt.Sprintf("%s-drill-%d", d.Target, d.Start.Unix())
	}
	if d.SnapshotID == "" {
		d.SnapshotID = "0000beef"
	}
	if _, err := s.RecordDrill(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

func addEvent(t *testing.T, s catalog.Store, e catalog.Event) {
	t.Helper()
	if err := s.AddEvent(t.Context(), e); err != nil {
		t.Fatal(err)
	}
}

// fill records the fixture's history in s.
func fill(t *testing.T, s catalog.Store) {
	t.Helper()
	backup := func(target string, start time.Time, d time.Duration, bytes int64, res catalog.Result, err string) {
		addRun(t, s, catalog.Run{
			Kind: catalog.KindBackup, Target: target, Provider: "restic", Repository: "local",
			SnapshotID: fmt.Sprintf("%08x", start.Unix()&0xffffffff), Start: start, End: start.Add(d),
			Bytes: bytes, BytesAdded: bytes / 20, Files: 1200, Result: res, Error: err,
		})
	}
	ok, failed := catalog.ResultOK, catalog.ResultFailed

	// files: hourly; a failure at 09:00, good again at 10:00; a failed
	// prune; an old failed drill, then a good one.
	backup("files", at(-2, -15), 4*time.Minute, 95*MiB, ok, "")
	backup("files", at(-1, -15), 90*time.Second, 0, failed, permissionDenied)
	backup("files", at(0, -15), 2*time.Minute+30*time.Second, 99_723_674, ok, "")
	addRun(t, s, catalog.Run{Kind: catalog.KindPrune, Target: "files", Repository: "local",
		Start: at(-1, -10), End: at(-1, -9), Result: failed, Error: "restic forget: repository is locked"})
	addDrill(t, s, catalog.Drill{Target: "files", Start: at(-48, 0), End: at(-48, 1), RTO: 50 * time.Second,
		Result: failed, Error: "check /srv/files/a: missing"})
	addDrill(t, s, catalog.Drill{Target: "files", Start: at(-1, 0), End: at(-1, 0).Add(5 * time.Second),
		RTO: 4200 * time.Millisecond, Result: ok})

	// gitlab-db: daily at 02:00; last good backup two days ago.
	backup("gitlab-db", time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC), 7*time.Minute+12*time.Second, 310*MiB, ok, "")
	addDrill(t, s, catalog.Drill{Target: "gitlab-db", Start: at(-24*5, 0), End: at(-24*5, 2), RTO: 72 * time.Second, Result: ok})

	// photos: backed up today, partial; a good drill three days ago, a
	// failed one yesterday.
	backup("photos", time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC), 42*time.Minute, 412<<30, catalog.ResultPartial, "")
	addDrill(t, s, catalog.Drill{Target: "photos", Start: at(-72, 0), End: at(-72, 11), RTO: 10 * time.Minute, Result: ok})
	addDrill(t, s, catalog.Drill{Target: "photos", Start: at(-24, 0), End: at(-24, 1), RTO: 0, Result: failed, Error: indexMissing})

	// A failed check of the repository.
	addRun(t, s, catalog.Run{Kind: catalog.KindCheck, Target: "local", Repository: "local",
		Start: at(-30, 0), End: at(-29, 0), Result: failed, Error: "restic check: pack 1234 damaged"})

	addEvent(t, s, catalog.Event{Time: at(-24, 1), Level: "error", Target: "photos", Kind: "drill_failed", Message: indexMissing})
	addEvent(t, s, catalog.Event{Time: at(-1, -9), Level: "error", Target: "files", Kind: "prune_failed", Message: "restic forget: repository is locked"})
	addEvent(t, s, catalog.Event{Time: at(-1, -13), Level: "error", Target: "files", Kind: "backup_failed", Message: permissionDenied})
	addEvent(t, s, catalog.Event{Time: at(0, -12), Level: "info", Target: "files", Kind: "backup_done", Message: "all good"})
	addEvent(t, s, catalog.Event{Time: at(0, -10), Level: "error", Kind: "xss", Message: `<script>alert("x")</script> & friends`})
}

// issueCerts writes the certificates of a lab like the fixture's, in its
// certs.dir, with a fixed clock (default 90-day leaves, 1/3 window): the
// CA and registry 70 days before epoch (20 days left at epoch: inside the
// window), gitlab 10 days before (80 days left), wiki never.
func issueCerts(t testing.TB, l *lab.Lab) {
	t.Helper()
	issued := epoch.Add(-70 * 24 * time.Hour)
	m := &certs.Manager{Lab: l, Now: func() time.Time { return issued }}
	if _, err := m.Init(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Issue(t.Context(), "registry", false); err != nil {
		t.Fatal(err)
	}
	issued = epoch.Add(-10 * 24 * time.Hour)
	if _, err := m.Issue(t.Context(), "gitlab", false); err != nil {
		t.Fatal(err)
	}
}

// fixture is a running server over the fixture lab and catalog.
type fixture struct {
	lab   *lab.Lab
	store *catalog.SQLite
	srv   *Server
	url   string
}

// newFixture serves the fixture; with probes its services are probed for
// real, in an empty environment.
func newFixture(t *testing.T, token string, jobs func() []JobInfo, opts ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{lab: parseLab(t, fixtureLab), store: openCatalog(t)}
	fill(t, f.store)
	issueCerts(t, f.lab)
	o := Options{
		Addr: "127.0.0.1:0", Token: token,
		Lab:     func() *lab.Lab { return f.lab },
		Catalog: f.store,
		Now:     func() time.Time { return epoch },
		Jobs:    jobs,
		Refresh: 45 * time.Second,
		Health: func(ctx context.Context, l *lab.Lab) []health.Result {
			return health.CheckAll(ctx, l.Services, health.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		},
		// The fixture's runtimes are not on this machine: their states are
		// given, as runtime.StatusAll would read them.
		States: func(context.Context, *lab.Lab) []runtime.Result { return fixtureStates },
	}
	for _, opt := range opts {
		opt(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.url = newTestServer(t, srv)
	return f
}

// newTestServer serves s's handler on 127.0.0.1 and returns its URL.
func newTestServer(t *testing.T, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// fixtureStates are the fixture services' runtime states: postgres up for
// 3h 12m at epoch, queue up since an unknown time, wiki stopped.
var fixtureStates = []runtime.Result{
	{Service: "postgres", Status: runtime.Status{State: runtime.Running, Since: epoch.Add(-3*time.Hour - 12*time.Minute)}},
	{Service: "queue", Status: runtime.Status{State: runtime.Running}},
	{Service: "wiki", Status: runtime.Status{State: runtime.Stopped, Detail: "inactive (dead)"}},
}
