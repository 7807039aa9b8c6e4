package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const goldenLab = `
name: devlab
services:
  gitlab:
    runtime: {compose: {project: devlab, service: gitlab}}
    health: {http: {url: "https://gitlab.lab/-/readiness", expect: 200, ca_file: pki/ca.pem}}
  postgres:
    runtime: {compose: {project: devlab, service: postgres}}
    health: {postgres: {host: 127.0.0.1, database: gitlab, user: gitlab, password_env: PGPASSWORD_GITLAB}}
  redis:
    runtime: {systemd: {unit: redis.service}}
    health: {tcp: {address: "127.0.0.1:6379", timeout: 2s}}
  runner:
    runtime: {exec: {start: "/usr/local/bin/gitlab-runner run start", stop: "/usr/local/bin/gitlab-runner run stop", status: "/usr/local/bin/gitlab-runner run status"}}
    health: {command: {run: /usr/local/bin/runner-ok}}
  registry:
    runtime: {compose: {project: devlab, service: registry}}
    health: {container: {name: devlab-registry-1}}
  docs:
    runtime: {systemd: {unit: docs.service}}
repositories:
  local: {url: /srv/backups/restic, password_file: /etc/homelab/restic.pass}
backups:
  files:
    provider: restic
    source: {paths: [/srv/files]}
    repository: local
    schedule: "0 * * * *"
  gitlab-config:
    provider: restic
    source: {paths: [/srv/gitlab/config]}
    repository: local
    schedule: "0 3 * * *"
  gitlab-db:
    provider: postgres
    source: {database: gitlab, password_env: PGPASSWORD_GITLAB}
    repository: local
    schedule: "CRON_TZ=Europe/Paris 0 2 * * *"
  photos:
    provider: restic
    source: {paths: [/srv/photos]}
    repository: local
  scratch:
    provider: restic
    source: {paths: [/srv/scratch]}
    repository: local
  wiki-db:
    provider: postgres
    source: {database: wiki}
    repository: local
    schedule: "30 1 * * *"
certs:
  leaves:
    gitlab: {sans: [gitlab.lab, "*.gitlab.lab"]}
    registry: {sans: [registry.lab]}
    wiki: {sans: [wiki.lab, 10.0.0.7]}
`

// goldenReport is a lab with a target in every state, a failed drill, a
// list of failures, services with passing and failing probes, and
// certificates: a CA, a leaf far from expiry (gitlab), one inside its
// rotation window (registry) and one never issued (wiki).
func goldenReport(t *testing.T) Report {
	t.Helper()
	// The certificates are real files, in a directory of their own.
	l, err := lab.Parse(filepath.Join(t.TempDir(), "lab.yaml"), []byte(goldenLab))
	if err != nil {
		t.Fatal(err)
	}
	s := openCatalog(t)
	const MiB = 1 << 20
	ok, failed := catalog.ResultOK, catalog.ResultFailed
	addRuns(t, s, "files",
		run{result: ok, end: at(-1, -12), bytes: 95 * MiB},
		run{result: ok, end: at(0, -12), bytes: 99_723_674})
	addDrills(t, s, "files", drill{result: ok, end: at(0, -10), rto: 4200 * time.Millisecond})
	addRuns(t, s, "gitlab-config",
		run{result: ok, end: at(-7, -10), bytes: 12 * 1024},
		run{result: failed, end: at(-1, 0), err: "restic: Fatal: unable to open repository at /srv/backups/restic: permission denied"})
	addRuns(t, s, "gitlab-db", run{result: ok, end: at(-51, 0), bytes: 310 * MiB})
	addDrills(t, s, "gitlab-db", drill{result: ok, end: at(-24*6, 0), rto: 72 * time.Second})
	addRuns(t, s, "photos", run{result: catalog.ResultPartial, end: at(-24*20, -5), bytes: 412 * 1 << 30})
	addDrills(t, s, "photos", drill{result: failed, end: at(-24*3, 0), err: "check /srv/photos/index.db: missing"})
	addRuns(t, s, "wiki-db", run{result: failed, end: at(-8, -45), err: "pg_dump: error: connection to server failed"})

	events := []catalog.Event{
		{Time: at(-24*3, 0), Level: "error", Target: "photos", Kind: "drill_failed", Message: "check /srv/photos/index.db: missing"},
		{Time: at(-8, -45), Level: "error", Target: "wiki-db", Kind: "backup_failed",
			Message: "pg_dump -h 127.0.0.1 -p 5432 -U wiki -d wiki -Fc: exit status 1:\npg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"wiki\""},
		{Time: at(-2, 0), Level: "info", Target: "files", Kind: "prune", Message: "removed 3 snapshots"},
		{Time: at(-1, 0), Level: "error", Target: "gitlab-config", Kind: "backup_failed",
			Message: "restic: Fatal: unable to open repository at /srv/backups/restic: permission denied"},
		{Time: at(0, -30), Level: "error", Kind: "catalog_locked", Message: "database is locked"},
		{Time: at(0, -20), Level: "warn", Target: "files", Kind: "backup_partial", Message: "1 file unreadable"},
	}
	for _, e := range events {
		if err := s.AddEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Build(t.Context(), l, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	r.AddServices(l, goldenHealth)
	r.AddStates(goldenStates)
	r.AddCerts(goldenCerts(t, l))
	return r
}

// goldenStates are the golden lab's runtime states (runtime.StatusAll):
// docs is stopped, redis restarts, and the runner's state is unknown.
var goldenStates = []runtime.Result{
	{Service: "gitlab", Status: runtime.Status{State: runtime.Running, Since: epoch.Add(-50*time.Hour - 7*time.Minute)}},
	{Service: "postgres", Status: runtime.Status{State: runtime.Running, Since: epoch.Add(-3*time.Hour - 12*time.Minute)}},
	{Service: "redis", Status: runtime.Status{State: runtime.Restarting, Detail: "activating (auto-restart)"}},
	{Service: "registry", Status: runtime.Status{State: runtime.Running}},
	{Service: "runner", Err: errors.New("status command \"/usr/local/bin/gitlab-runner run status\": exit status 127")},
	{Service: "docs", Status: runtime.Status{State: runtime.Stopped, Detail: "inactive (dead)"}},
}

// goldenCerts issues the golden lab's certificates with a fixed clock (the
// default 90-day leaves and 1/3 rotation window) and reads them at epoch:
// the CA and registry were issued 70 days ago (20 days left: inside the
// window), gitlab 10 days ago (80 days left), wiki never.
func goldenCerts(t *testing.T, l *lab.Lab) certs.Report {
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
	cr, err := certs.Status(l, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

// goldenHealth are the golden lab's probe results (as health.CheckAll
// gives them: sorted, services without a probe left out).
var goldenHealth = []health.Result{
	{Service: "gitlab", Kind: lab.ProbeHTTP, Healthy: true, Detail: "HTTP 200 in 35ms", Duration: 35 * time.Millisecond},
	{Service: "postgres", Kind: lab.ProbePostgres, Healthy: true, Detail: "query returned 1 in 4ms", Duration: 4200 * time.Microsecond},
	{Service: "redis", Kind: lab.ProbeTCP, Detail: "connection refused", Duration: 300 * time.Microsecond},
	{Service: "registry", Kind: lab.ProbeContainer, Detail: "timed out after 5s", Duration: 5 * time.Second},
	{Service: "runner", Kind: lab.ProbeCommand, Duration: 20 * time.Millisecond,
		Detail: "runner-ok: no job picked up since 2026-11-23 09:02 (queue gitlab-ci, 14 pending); see journalctl -u gitlab-runner (exit status 1)"},
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestRenderGolden(t *testing.T) {
	r := goldenReport(t)
	states := map[string]string{}
	for _, ts := range r.Targets {
		states[ts.Name] = ts.State
	}
	want := map[string]string{
		"files": StateOK, "gitlab-config": StateFailing, "gitlab-db": StateOverdue,
		"photos": StateOK, "scratch": StateManual, "wiki-db": StateNever,
	}
	for name, st := range want {
		if states[name] != st {
			t.Errorf("%s: state %q, want %q", name, states[name], st)
		}
	}
	var certStates []string
	for _, c := range r.Certs {
		certStates = append(certStates, c.Name+" "+c.State)
	}
	if got, want := strings.Join(certStates, ", "), "ca ok, gitlab ok, registry rotate, wiki missing"; got != want {
		t.Errorf("certificates: %s, want %s", got, want)
	}

	t.Run("text", func(t *testing.T) {
		var b bytes.Buffer
		if err := RenderText(&b, r, epoch); err != nil {
			t.Fatal(err)
		}
		golden(t, "status.txt", b.Bytes())
		// The TLS rows fit a terminal.
		_, tls, _ := strings.Cut(b.String(), "\nTLS\n")
		tls, _, _ = strings.Cut(tls, "\n\n")
		if tls == "" {
			t.Fatal("no TLS section")
		}
		for line := range strings.Lines(tls) {
			if n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n")); n > lineWidth {
				t.Errorf("TLS row of %d columns: %q", n, line)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		var b bytes.Buffer
		if err := RenderJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		golden(t, "status.json", b.Bytes())
		if n := bytes.Count(b.Bytes(), []byte("\n")); n != 1 || !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			t.Errorf("want one line, got %d newlines", n)
		}
		var m map[string]any
		if err := json.Unmarshal(b.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if m["message_type"] != "status" {
			t.Errorf("message_type %v", m["message_type"])
		}
	})
}

func TestRenderEmpty(t *testing.T) {
	r, err := Build(t.Context(), &lab.Lab{Name: "empty"}, openCatalog(t), epoch)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := RenderText(&b, r, epoch); err != nil {
		t.Fatal(err)
	}
	// A lab without certificates has no TLS section and "certs":null.
	r.AddCerts(certs.Report{Healthy: true})
	want := "lab empty — 2026-11-23 10:15 UTC\nhealthy: no backup targets\n\nSERVICES\nno services\n\nBACKUPS\nno backup targets\n\nRECENT FAILURES\nnone\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := RenderJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if want := `{"message_type":"status","lab":"empty","generated":"2026-11-23T10:15:00Z","healthy":true,"overdue":0,"services":[],"targets":[],"certs":null,"failures":[]}` + "\n"; b.String() != want {
		t.Errorf("got  %s\nwant %s", b.String(), want)
	}
}

func TestRenderTextZone(t *testing.T) {
	// Times are shown in the clock's zone; JSON stays in UTC.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	now := epoch.In(ny)
	r := Report{Lab: "devlab", Generated: now, Healthy: true,
		Failures: []catalog.Event{{Time: at(0, -15), Level: "error", Target: "db", Kind: "backup_failed", Message: "x"}}}
	var b bytes.Buffer
	if err := RenderText(&b, r, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lab devlab — 2026-11-23 05:15 EST\n", "2026-11-23 05:00  db  backup_failed  x\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := RenderJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"generated":"2026-11-23T10:15:00Z"`, `"time":"2026-11-23T10:00:00Z"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %s in %s", want, b.String())
		}
	}
}

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1m ago"},
		{12*time.Minute + 59*time.Second, "12m ago"},
		{time.Hour, "1h ago"},
		{3*time.Hour + 5*time.Minute, "3h 5m ago"},
		{24 * time.Hour, "1d ago"},
		{51*time.Hour + 59*time.Minute, "2d 3h ago"},
		{400 * 24 * time.Hour, "400d ago"},
		{-5 * time.Minute, "in 5m"},
		{-30 * time.Second, "in 30s"},
	}
	for _, tt := range tests {
		if got := Ago(epoch.Add(-tt.d), epoch); got != tt.want {
			t.Errorf("Ago(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestIEC(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{99_723_674, "95.1 MiB"},
		{310 << 20, "310 MiB"},
		{(100 << 20) - 1, "100 MiB"},
		{5 << 30, "5.0 GiB"},
		{1 << 62, "4.0 EiB"},
	}
	for _, tt := range tests {
		if got := IEC(tt.n); got != tt.want {
			t.Errorf("IEC(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{850 * time.Millisecond, "850ms"},
		{4200 * time.Millisecond, "4.2s"},
		{72 * time.Second, "1m12s"},
		{2*time.Hour + 5*time.Minute + 20*time.Second, "2h5m"},
	}
	for _, tt := range tests {
		if got := ShortDuration(tt.d); got != tt.want {
			t.Errorf("ShortDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	long := "pg_dump -h 127.0.0.1 -p 5432 -U gitlab -d gitlab -Fc: exit status 1: pg_dump: error: password authentication failed"
	tests := []struct {
		in, want string
		n        int
	}{
		{"short", "short", 20},
		{"two\n  lines", "two lines", 20},
		{long, "pg_dump ... error: password authentication failed", 51},
		{"abcdefghijklmnopqrstuvwxyz", "abcde ...tuvwxyz", 16},
	}
	for _, tt := range tests {
		got := truncate(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if n := len([]rune(got)); n > tt.n {
			t.Errorf("truncate(%q, %d) has %d runes", tt.in, tt.n, n)
		}
	}
}
