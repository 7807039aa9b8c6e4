package server

import (
	"strings"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
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
		`<strong>Needs attention</strong><span>1 overdue, 1 drill failed of 4 targets; 1 of 2 services failing</span>`,
		`>OVERDUE</span>`,
		`>FAILED</span>`, indexMissing,
		`>backup running</span>`, `>drill queued</span>`,
		`<span class="num">2026-11-23 11:00</span><span class="sub">in 45m</span>`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; friends`,
		"<tr class=\"bad\">\n  <td class=\"name\">postgres</td>\n  <td class=\"health\"><span class=\"badge bad\">FAILING</span></td>\n" +
			"  <td class=\"probe\">postgres</td>\n  <td class=\"runtime\">compose</td>\n  <td class=\"detail fail-detail\">dsn_env PG_DSN is not set</td>",
		"<td class=\"name\">queue</td>\n  <td class=\"health\"><span class=\"badge ok\">OK</span></td>\n  <td class=\"probe\">command</td>\n  <td class=\"runtime\">exec</td>\n  <td class=\"detail\">exit 0 in ",
		"<td class=\"name\">wiki</td>\n  <td class=\"health\"><span class=\"badge muted\">no probe</span></td>\n  <td class=\"probe\">-</td>\n  <td class=\"runtime\">systemd</td>",
		`<b>Last drill failed:</b> check /srv/photos/index.db: missing`,
		`as of 2026-11-23 10:15 UTC`,
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
}
