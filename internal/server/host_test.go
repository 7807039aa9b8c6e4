package server

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"homelab/internal/runtime"
	"homelab/internal/status"
)

// fixtureHost is a host whose /srv fills in 3.5 days (warn_days 14) and
// whose / has no forecast.
func fixtureHost() *status.HostStatus {
	days, full := 3.5, epoch.Add(84*time.Hour)
	return &status.HostStatus{
		Sampled: epoch.Add(-5 * time.Minute), Hostname: "nas", Uptime: 51 * time.Hour,
		Load1: 0.5, Load5: 0.25, Load15: 0.125, CPUs: 4, MemTotal: 8 << 30, MemUsed: 3 << 30, WarnDays: 14,
		Filesystems: []status.FilesystemStatus{
			{Mount: "/", Source: "/dev/sda1", Type: "ext4", Paths: []string{"/var/lib/homelab"}, Total: 50 << 30, Used: 10 << 30, Avail: 40 << 30},
			{Mount: "/srv", Source: "/dev/sdb1", Type: "xfs", Paths: []string{"/srv/restic", "/srv/photos"}, Total: 400 << 30, Used: 380 << 30, Avail: 20 << 30,
				FullAt: &full, DaysLeft: &days, Filling: true},
		},
		Energy: &status.EnergyStatus{Source: "rapl", Span: 50 * time.Hour, KWh: 1.35, AvgWatts: 27, KWh30: 19.44, Cost30: 3.888,
			Currency: "EUR", PricePerKWh: 0.2, TotalJoules: 4.86e6},
		Containers: []runtime.ContainersResult{{Service: "gitlab", Containers: []runtime.Container{
			{Service: "gitlab", ID: "0123456789ab", Name: "devlab-gitlab-1", State: "running", Restarts: 3, StartedAt: epoch.Add(-5*time.Minute - 2*time.Hour), Memory: 1536 << 20},
		}}},
	}
}

// fixtureAlerts: one alert firing, one silenced, one resolved in the
// last 24 hours.
func fixtureAlerts() *status.AlertsStatus {
	return &status.AlertsStatus{URL: "http://127.0.0.1:9093",
		Firing: []status.Alert{{Name: "NodeDown", Severity: "critical", Summary: "nas is down", Since: epoch.Add(-20 * time.Minute)}},
		Silenced: []status.Alert{{Name: "DiskFull", Severity: "warning", Summary: "/srv 95% full", Since: epoch.Add(-2 * time.Hour),
			SilencedBy: []status.Silence{{ID: "8de59e92", CreatedBy: "alice", Comment: "swapping the disk", EndsAt: epoch.Add(time.Hour)}}}},
		Resolved: []status.Alert{{Name: "HighLoad", Severity: "warning", Summary: "load above 8", Resolved: epoch.Add(-3 * time.Hour)}}}
}

// withFixtureHost gives the server fixtureHost and fixtureAlerts as the
// daemon's.
func withFixtureHost(o *Options) { o.Host, o.Alerts = fixtureHost, fixtureAlerts }

// TestAlertsOnPage: the Alerts card shows the firing alert with its
// severity, the silenced one with who silenced it (also in the API),
// the resolved one, and a warning when the Alertmanager did not
// answer; the verdict does not change.
func TestAlertsOnPage(t *testing.T) {
	a := fixtureAlerts()
	f := newFixture(t, "", fixtureJobs, func(o *Options) { o.Alerts = func() *status.AlertsStatus { return a } })
	_, body := get(t, f.url+"/")
	for _, want := range []string{`<h2 id="alerts">Alerts</h2>`, "NodeDown", `<span class="badge bad">critical</span>`, "since 20m ago", "nas is down",
		"HighLoad", `<span class="badge muted">warning</span>`, "resolved 3h ago",
		"DiskFull", `<span class="badge muted">silenced</span>`, "since 2h ago", `/srv 95% full<span class="sub">silenced by alice, ends in 1h: swapping the disk</span>`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	_, body = get(t, f.url+"/api/v1/status")
	if !strings.Contains(string(body), `"silenced":[{"name":"DiskFull","severity":"warning","summary":"/srv 95% full","since":"`) ||
		!strings.Contains(string(body), `"silenced_by":[{"id":"8de59e92","created_by":"alice","comment":"swapping the disk","ends_at":"`) {
		t.Errorf("api: %s", body)
	}
	a = &status.AlertsStatus{URL: "http://127.0.0.1:9093", Error: "alertmanager: connection refused"}
	_, body = get(t, f.url+"/")
	if !strings.Contains(string(body), `<p class="warn-line">Alertmanager http://127.0.0.1:9093 did not answer: alertmanager: connection refused</p>`) {
		t.Errorf("no warning line:\n%s", body)
	}
	_, body = get(t, f.url+"/api/v1/status")
	if !strings.Contains(string(body), `"alerts":{"url":"http://127.0.0.1:9093","error":"alertmanager: connection refused","firing":[],"silenced":[],"resolved":[]}`) {
		t.Errorf("api: %s", body)
	}
}

// TestHostOnPageAPIAndMetrics: the daemon's host status is on the page
// (the Host card, the summary), in /api/v1/status and in /metrics, and
// a newer sample reaches all three.
func TestHostOnPageAPIAndMetrics(t *testing.T) {
	var h atomic.Pointer[status.HostStatus]
	h.Store(fixtureHost())
	f := newFixture(t, "", fixtureJobs, func(o *Options) { o.Host = h.Load })
	_, body := get(t, f.url+"/")
	page := string(body)
	for _, want := range []string{
		`<h2 id="host">Host</h2>`, "nas · up 2d 3h · load 0.50 0.25 0.12 · 4 CPUs · memory 3.0 GiB of 8.0 GiB",
		"sampled 2026-11-23 10:10", `<tr class="bad">`, "/srv/restic, /srv/photos", "380 GiB of 400 GiB",
		`<span style="width: 95%">`, `<span class="badge bad">FILLING</span> 3.5 days`, "; 1 filesystem filling",
		"devlab-gitlab-1", `<span class="badge ok">up 2h</span>`, "3 restarts", "1.5 GiB",
		"Energy ≈ 19.4 kWh, 3.89 EUR for 30 days (estimated from 2d 2h of rapl samples, avg 27 W)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	_, body = get(t, f.url+"/api/v1/status")
	var rep struct {
		Healthy bool
		Host    struct {
			Hostname    string
			Filesystems []struct {
				Mount    string
				DaysLeft *float64 `json:"days_left"`
				Filling  bool
			}
		}
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Healthy || rep.Host.Hostname != "nas" || len(rep.Host.Filesystems) != 2 || !rep.Host.Filesystems[1].Filling || *rep.Host.Filesystems[1].DaysLeft != 3.5 {
		t.Errorf("api: %s", body)
	}
	_, body = get(t, f.url+"/metrics")
	for _, want := range []string{
		`homelab_filesystem_avail_bytes{mount="/srv"} 2.147483648e+10`,
		`homelab_filesystem_size_bytes{mount="/"} 5.36870912e+10`,
		`homelab_filesystem_days_until_full{mount="/srv"} 3.5`,
		`homelab_filesystem_filling{mount="/srv"} 1`,
		`homelab_filesystem_filling{mount="/"} 0`,
		`homelab_energy_joules_total{source="rapl"} 4.86e+06`,
		`homelab_energy_cost_30d{currency="EUR"} 3.888`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), `homelab_filesystem_days_until_full{mount="/"}`) {
		t.Error("/metrics has a forecast for / that has none")
	}

	// The sampler's next round: /srv cleaned up.
	next := fixtureHost()
	next.Filesystems[1].Filling, next.Filesystems[1].DaysLeft, next.Filesystems[1].FullAt = false, nil, nil
	h.Store(next)
	_, body = get(t, f.url+"/")
	if strings.Contains(string(body), "FILLING") || strings.Contains(string(body), "filesystem filling") {
		t.Error("the page still shows /srv filling after the next sample")
	}
	_, body = get(t, f.url+"/metrics")
	if !strings.Contains(string(body), `homelab_filesystem_filling{mount="/srv"} 0`) {
		t.Error("/metrics still has /srv filling after the next sample")
	}
}

// TestNoHostWithoutDaemon: without Options.Host there is no Host card and
// no filesystem metrics.
func TestNoHostWithoutDaemon(t *testing.T) {
	f := newFixture(t, "", fixtureJobs)
	_, body := get(t, f.url+"/")
	if strings.Contains(string(body), `id="host"`) {
		t.Error("a Host card without a host")
	}
	_, body = get(t, f.url+"/metrics")
	if strings.Contains(string(body), "homelab_filesystem_") {
		t.Error("filesystem metrics without a host")
	}
}

// TestSilenceTextEscaped: a silence's author and comment, and an
// inhibiting alert's name, are text anyone with access to the
// Alertmanager writes: the page shows them escaped, on a first rendering
// and on the page cache's refill of its relative texts (the "why" is
// one) a minute later, as the template itself would.
func TestSilenceTextEscaped(t *testing.T) {
	var mu sync.Mutex
	now := epoch
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	evil := `<script>alert("x")</script> & 'y' +1`
	a := &status.AlertsStatus{URL: "http://127.0.0.1:9093",
		Silenced: []status.Alert{{Name: "DiskFull", Severity: "warning", Summary: "full", Since: epoch.Add(-time.Hour),
			SilencedBy:  []status.Silence{{ID: "s1", CreatedBy: "<b>eve</b>", Comment: evil, EndsAt: epoch.Add(time.Hour)}},
			InhibitedBy: []string{"<i>NodeDown</i>"}}}}
	f := newFixture(t, "", fixtureJobs, func(o *Options) { o.Now = clock; o.Alerts = func() *status.AlertsStatus { return a } })
	for _, step := range []string{"first page", "a minute later"} {
		_, body := get(t, f.url+"/")
		for _, bad := range []string{"<script>", "<b>eve", "<i>NodeDown"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("%s: the page holds %q unescaped", step, bad)
			}
		}
		want := `silenced by &lt;b&gt;eve&lt;/b&gt;, ends in 1h: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;y&#39; &#43;1; inhibited by &lt;i&gt;NodeDown&lt;/i&gt;`
		if step != "first page" {
			want = strings.Replace(want, "in 1h", "in 59m", 1)
		}
		if !strings.Contains(string(body), want) {
			t.Errorf("%s: the page lacks %q", step, want)
		}
		if plain := plainPage(t, f.srv, clock()); string(body) != plain {
			t.Errorf("%s: the page sent differs from the template's rendering:\n%s", step, firstDiff(string(body), plain))
		}
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
	}
}
