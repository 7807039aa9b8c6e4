package server

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/lab"
	"homelab/internal/status"
)

// fixtureJobs are the daemon's jobs as the fixture's page shows them.
func fixtureJobs() []JobInfo {
	return []JobInfo{
		{Kind: "backup", Name: "files", Next: at(0, 45)},
		{Kind: "drill", Name: "files", Next: at(24*6, 0)},
		{Kind: "backup", Name: "gitlab-db", Next: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), Running: true},
		{Kind: "backup", Name: "photos", Next: time.Date(2026, 11, 24, 1, 30, 0, 0, time.UTC)},
		{Kind: "drill", Name: "photos", Queued: true},
		{Kind: "check", Name: "local", Next: at(24, 0)},
	}
}

func TestPageHTML(t *testing.T) {
	f := newFixture(t, "", fixtureJobs)
	resp, body := get(t, f.url+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	page := string(body)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="45">`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<strong>Needs attention</strong><span>1 overdue, 1 drill failed of 4 targets; 2 of 3 services failing; 1 cert missing, 1 cert expiring</span>`,
		`>OVERDUE</span>`,
		`>FAILED</span>`, indexMissing,
		`>backup running</span>`, `>drill queued</span>`,
		`<span class="num">2026-11-23 11:00</span><span class="sub">in 45m</span>`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; friends`,
		"<tr class=\"bad\">\n  <td class=\"name\">postgres</td>\n  <td class=\"health\"><span class=\"badge bad\">FAILING</span></td>\n" +
			"  <td class=\"probe\">postgres</td>\n  <td class=\"runtime\">compose · up 3h 12m</td>\n  <td class=\"detail fail-detail\">dsn_env PG_DSN is not set</td>",
		"<td class=\"name\">queue</td>\n  <td class=\"health\"><span class=\"badge ok\">OK</span></td>\n  <td class=\"probe\">command</td>\n  <td class=\"runtime\">exec · up</td>\n  <td class=\"detail\">exit 0 in ",
		"<td class=\"name\">wiki</td>\n  <td class=\"health\"><span class=\"badge bad\">FAILING</span></td>\n  <td class=\"probe\">-</td>\n  <td class=\"runtime\">systemd · STOPPED</td>",
		`<b>Last drill failed:</b> check /srv/photos/index.db: missing`,
		`as of 2026-11-23 10:15 UTC`,
		// The TLS card: the CA first, then the leaves by name.
		`<h2 id="tls">TLS</h2>`,
		"<tr class=\"\">\n  <td class=\"name\">ca <span class=\"badge muted\">CA</span></td>\n  <td class=\"state\"><span class=\"badge ok\">OK</span></td>\n" +
			"  <td class=\"subject\">CN=devlab CA,O=homelab</td>\n  <td class=\"expires num\">2036-09-11</td>\n  <td class=\"num days\">3580 days</td>\n  <td class=\"detail\"></td>\n</tr>\n" +
			"<tr class=\"\">\n  <td class=\"name\">gitlab</td>\n  <td class=\"state\"><span class=\"badge ok\">OK</span></td>\n" +
			"  <td class=\"subject\">CN=gitlab.lab</td>\n  <td class=\"expires num\">2027-02-11</td>\n  <td class=\"num days\">80 days</td>\n  <td class=\"detail\"></td>\n</tr>\n" +
			"<tr class=\"bad\">\n  <td class=\"name\">registry</td>\n  <td class=\"state\"><span class=\"badge bad\">ROTATE</span></td>\n" +
			"  <td class=\"subject\">CN=registry.lab</td>\n  <td class=\"expires num\">2026-12-13</td>\n  <td class=\"num days\">20 days</td>\n" +
			"  <td class=\"detail fail-detail\">due for rotation: 20 days left (window opened 2026-11-13)</td>\n</tr>\n" +
			"<tr class=\"bad\">\n  <td class=\"name\">wiki</td>\n  <td class=\"state\"><span class=\"badge bad\">MISSING</span></td>\n" +
			"  <td class=\"subject none\">-</td>\n  <td class=\"expires num none\">-</td>\n  <td class=\"num none\">-</td>\n" +
			"  <td class=\"detail fail-detail\">not issued: run homelab cert issue wiki</td>\n</tr>\n</tbody>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("page holds an unescaped <script>")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestPageHealthy(t *testing.T) {
	l := parseLab(t, `
name: tiny
repositories:
  local: {url: /srv/restic, password_file: /etc/pass}
backups:
  files:
    provider: restic
    source: {paths: [/srv/files]}
    repository: local
    schedule: "0 * * * *"
`)
	store := openCatalog(t)
	addRun(t, store, catalog.Run{Kind: catalog.KindBackup, Target: "files", Start: at(0, -15), End: at(0, -14), Bytes: 2048, Result: catalog.ResultOK})
	s, err := New(Options{Lab: func() *lab.Lab { return l }, Catalog: store, Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, newTestServer(t, s)+"/")
	page := string(body)
	for _, want := range []string{
		`<strong>Healthy</strong><span>1 target, ok</span>`, `>OK</span>`, "2.0 KiB", "No services in the lab file.", "None.",
		`<meta http-equiv="refresh" content="30">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "Next run") {
		t.Error("a next run column without jobs")
	}
	if strings.Contains(page, `id="tls"`) {
		t.Error("a TLS card for a lab without certificates")
	}
	if strings.Contains(page, `id="unfinished"`) {
		t.Error("an unfinished changes card without any")
	}

	// An upgrade killed midway: the page needs attention and says how to
	// finish it.
	if err := store.CreateSaga(t.Context(), catalog.Saga{ID: "20261123T100000Z-0000abcd", Kind: "upgrade", Subject: "web",
		Plan: []string{"set version 2.0.0"}, State: catalog.SagaRunning, Start: at(0, -5)}); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, newTestServer(t, s)+"/")
	page = string(body)
	for _, want := range []string{
		`<strong>Needs attention</strong><span>1 target, ok; 1 unfinished upgrade</span>`, `<h2 id="unfinished">Unfinished changes</h2>`,
		`upgrade web (saga 20261123T100000Z-0000abcd): running since`, `<code>homelab upgrade --resume 20261123T100000Z-0000abcd</code>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestPageCerts(t *testing.T) {
	notAfter := epoch.Add(-3 * 24 * time.Hour)
	tests := []struct {
		c    status.CertStatus
		want pageCert
	}{
		{status.CertStatus{Name: "ca", Kind: certs.KindCA, Subject: "CN=x CA", NotAfter: notAfter, DaysLeft: -3, Expired: true, InWindow: true,
			Issues: []string{"expired on 2026-11-20"}, State: status.CertExpired},
			pageCert{Name: "ca", CA: true, Read: true, Subject: "CN=x CA", Expires: "2026-11-20", DaysLeft: "-3 days", Mark: "EXPIRED", Bad: true,
				Issues: []string{"expired on 2026-11-20"}}},
		{status.CertStatus{Name: "web", Kind: certs.KindLeaf, Subject: "CN=web.lab", NotAfter: epoch.Add(36 * time.Hour), DaysLeft: 1,
			Issues: []string{"key pki/web.key does not match the certificate"}, State: status.CertProblem},
			pageCert{Name: "web", Read: true, Subject: "CN=web.lab", Expires: "2026-11-24", DaysLeft: "1 day", Mark: "ISSUE", Bad: true,
				Issues: []string{"key pki/web.key does not match the certificate"}}},
		{status.CertStatus{Name: "api", Kind: certs.KindLeaf, State: status.CertMissing, Issues: []string{"not issued"}},
			pageCert{Name: "api", Subject: "-", Expires: "-", DaysLeft: "-", Mark: "MISSING", Bad: true, Issues: []string{"not issued"}}},
	}
	for _, tt := range tests {
		if got := cert(tt.c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("cert(%s) = %+v, want %+v", tt.c.Name, got, tt.want)
		}
	}

	// All fine: the summary counts them.
	r := status.Report{Healthy: true}
	r.AddCerts(certsReport(80))
	if head, sum := verdict(r); head != "Healthy" || sum != "no backup targets; 2 certs, all ok" {
		t.Errorf("verdict %q, %q", head, sum)
	}
	r = status.Report{Healthy: true}
	r.AddCerts(certsReport(10))
	if head, sum := verdict(r); head != "Needs attention" || sum != "no backup targets; 1 cert expiring" {
		t.Errorf("verdict %q, %q", head, sum)
	}
}

// certsReport is a certs.Report at epoch: a CA with 3000 days left (out
// of its window) and leaves with the days left given, in a 30-day window.
func certsReport(days ...int) certs.Report {
	mk := func(name string, days int) certs.Cert {
		notAfter := epoch.Add(time.Duration(days) * 24 * time.Hour)
		start := notAfter.Add(-30 * 24 * time.Hour)
		return certs.Cert{Name: name, Exists: true, Subject: "CN=" + name, NotAfter: notAfter, DaysLeft: days,
			WindowStart: start, InWindow: !epoch.Before(start)}
	}
	cr := certs.Report{Configured: true, CA: mk("ca", 3000)}
	for i, d := range days {
		cr.Leaves = append(cr.Leaves, mk(fmt.Sprintf("leaf%d", i), d))
	}
	return cr
}

// plainPage is what page sends at now, rendered by the template on the
// page's data as it is, without pageCache.
func plainPage(t *testing.T, s *Server, now time.Time) string {
	t.Helper()
	l := s.o.Lab()
	store, err := s.store(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.report(t.Context(), store, l, now)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []JobInfo
	if s.o.Jobs != nil {
		jobs = s.o.Jobs()
	}
	d := buildPage(rep, jobs, now, s.o.Refresh)
	if d.Charts, err = s.historyCharts(t.Context(), store, l, now.Location()); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := pageTemplate.Execute(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestPageCacheRelativeTexts: the page sent as the clock moves on (by a
// minute, which changes only its relative texts, and by more, which
// turns a target overdue), after a run is recorded, and after a job
// starts, is at each step the template's own rendering of that moment's
// data: pageCache's refilled pieces (the relative texts escaped as the
// template would: the zone's "+03" is one) equal a full rendering.
func TestPageCacheRelativeTexts(t *testing.T) {
	var mu sync.Mutex
	now := epoch.In(time.FixedZone("+03", 3*60*60))
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	jobs := fixtureJobs()
	f := newFixture(t, "", func() []JobInfo { mu.Lock(); defer mu.Unlock(); return slices.Clone(jobs) }, func(o *Options) {
		o.Now = clock
		o.HealthTTL = 24 * time.Hour // the probes' details (durations) stay those of the first round
		o.Alerts = fixtureAlerts     // their "since", "ends in" and "resolved" are relative
	})
	check := func(step string) {
		t.Helper()
		resp, body := get(t, f.url+"/")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", step, resp.StatusCode, body)
		}
		if want := plainPage(t, f.srv, clock()); string(body) != want {
			t.Errorf("%s: the page sent differs from the template's rendering:\n%s", step, firstDiff(string(body), want))
		}
		if strings.Contains(string(body), markerOpen) {
			t.Errorf("%s: the page holds a marker", step)
		}
	}
	start := clock()
	check("first page")
	check("same minute")
	set(start.Add(time.Minute))
	check("a minute later")
	set(start.Add(time.Minute + 20*time.Second))
	check("in the same minute")
	set(start.Add(3*time.Hour + 7*time.Minute))
	check("three hours later")
	addRun(t, f.store, catalog.Run{Kind: catalog.KindBackup, Target: "gitlab-db", Provider: "restic", Repository: "local",
		SnapshotID: "feedf00d", Start: start.Add(3 * time.Hour), End: start.Add(3*time.Hour + time.Minute), Bytes: 1 << 30, Result: catalog.ResultOK})
	check("after a backup")
	mu.Lock()
	jobs[0].Running = true
	mu.Unlock()
	check("a job started")
	set(start.Add(50 * time.Hour))
	check("two days later")
}

// firstDiff shows where a and b first differ.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-80)
	return fmt.Sprintf("at byte %d:\n got: %q\nwant: %q", i, a[from:min(len(a), i+80)], b[from:min(len(b), i+80)])
}

// TestPageKeptClusters: the old PostgreSQL cluster that a major upgrade
// kept is on the page, with the command that deletes it, as on `homelab
// status`; none while the server has a single cluster.
func TestPageKeptClusters(t *testing.T) {
	dir := t.TempDir()
	l := parseLab(t, fmt.Sprintf(`
name: pg
repositories:
  local: {url: /srv/restic, password_file: /etc/pass}
backups:
  db-dump: {provider: postgres, repository: local, source: {database: shop}}
services:
  db:
    runtime: {exec: {start: "true", stop: "true", status: "true", version: "echo 17", set_version: "true {{.Version}}"}}
    postgres:
      data_dir: "%s/pg/{{.Major}}"
      bin_dirs: {15: /usr/lib/postgresql/15/bin, 17: /usr/lib/postgresql/17/bin}
    upgrade: {backup_before: [db-dump]}
`, dir))
	store := openCatalog(t)
	s, err := New(Options{Lab: func() *lab.Lab { return l }, Catalog: store, Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	cluster := func(m string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "pg", m), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pg", m, "PG_VERSION"), []byte(m+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cluster("17")
	url := newTestServer(t, s)
	if _, body := get(t, url+"/"); strings.Contains(string(body), `id="old-clusters"`) {
		t.Error("an old clusters card with a single cluster")
	}
	cluster("15")
	_, body := get(t, url+"/")
	for _, want := range []string{
		`<h2 id="old-clusters">Old PostgreSQL clusters</h2>`,
		"<td class=\"target\">db</td>\n  <td class=\"msg\">PostgreSQL 15 in " + filepath.Join(dir, "pg", "15") + "</td>\n  <td class=\"num\">17</td>\n" +
			"  <td class=\"msg\"><code>homelab upgrade db --finalize</code></td>",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
}

// TestPageTypedTarget: a pgbackrest target with per-type schedules shows
// which type is failing, and the due of that type.
func TestPageTypedTarget(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	fullDue, incrDue := now.Add(7*time.Hour+33*time.Minute), now.Add(2*time.Hour)
	ts := status.TargetStatus{Name: "db", Provider: lab.ProviderPgBackRest, State: status.StateFailing, DueBy: &incrDue,
		LastRun: &catalog.Run{Result: catalog.ResultOK, Start: now.Add(-time.Hour), End: now.Add(-time.Hour)},
		Types: []status.TypeStatus{
			{Type: "full", State: status.StateFailing, DueBy: &fullDue, Failed: &catalog.Run{Result: catalog.ResultFailed}},
			{Type: "incr", State: status.StateOK, DueBy: &incrDue},
		}}
	p := target(ts, nil, now)
	if p.StateText != "FULL FAILING" || !p.Bad || p.Due != "due in 7h 33m" {
		t.Errorf("state %q bad %v due %q, want FULL FAILING, bad, due in 7h 33m", p.StateText, p.Bad, p.Due)
	}
}
