package server

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"homelab/internal/certs"
	"homelab/internal/lab"
)

// TestCertMetrics: /metrics has each certificate's expiry and window
// start (those certs.Status reads) and whether it is issued; issuing the
// missing leaf shows on the next scrape.
func TestCertMetrics(t *testing.T) {
	f := newFixture(t, "", fixtureJobs)
	rep, err := certs.Status(f.lab, epoch)
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, f.url+"/metrics")
	m := string(body)
	for _, c := range append([]certs.Cert{rep.CA}, rep.Leaves...) {
		if !c.Exists {
			continue
		}
		for _, want := range []string{
			fmt.Sprintf(`homelab_cert_not_after_timestamp_seconds{cert=%q,kind=%q} %s`, c.Name, c.Kind, promFloat(c.NotAfter.Unix())),
			fmt.Sprintf(`homelab_cert_window_start_timestamp_seconds{cert=%q,kind=%q} %s`, c.Name, c.Kind, promFloat(c.WindowStart.Unix())),
			fmt.Sprintf(`homelab_cert_issued{cert=%q,kind=%q} 1`, c.Name, c.Kind),
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	}
	if !strings.Contains(m, `homelab_cert_issued{cert="wiki",kind="leaf"} 0`) {
		t.Error("/metrics does not say wiki is not issued")
	}
	mgr := &certs.Manager{Lab: f.lab, Now: func() time.Time { return epoch }}
	if _, err := mgr.Issue(t.Context(), "wiki", false); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, f.url+"/metrics")
	if !strings.Contains(string(body), `homelab_cert_issued{cert="wiki",kind="leaf"} 1`) ||
		!regexp.MustCompile(`homelab_cert_not_after_timestamp_seconds\{cert="wiki",kind="leaf"\} `).Match(body) {
		t.Error("the issued wiki leaf is not on the next scrape")
	}
}

// promFloat is how the text format writes a whole number of seconds.
func promFloat(v int64) string {
	return strconv.FormatFloat(float64(v), 'g', -1, 64)
}

func TestMetricNames(t *testing.T) {
	names := MetricNames()
	for _, want := range []string{"homelab_backup_last_success_timestamp_seconds", "homelab_cert_issued", "homelab_energy_joules_total", "homelab_filesystem_filling", "homelab_target_overdue"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("MetricNames lacks %s: %v", want, names)
		}
	}
}

// BenchmarkCertMetrics compares a collection of the certificate metrics
// over unchanged files (cached: a stat of each file) with reading them
// every time (certs.Status), and reports the ratio.
func BenchmarkCertMetrics(b *testing.B) {
	l := parseLab(b, fixtureLab)
	issueCerts(b, l)
	c := &certCollector{lab: func() *lab.Lab { return l }, now: func() time.Time { return epoch }}
	collect := func() {
		ch := make(chan prometheus.Metric, 64)
		c.Collect(ch)
		close(ch)
		for range ch {
		}
	}
	collect()
	const n = 200
	start := time.Now()
	for range n {
		collect()
	}
	cached := time.Since(start)
	start = time.Now()
	for range n {
		if _, err := certs.Status(l, epoch); err != nil {
			b.Fatal(err)
		}
	}
	fresh := time.Since(start)
	for b.Loop() {
		collect()
	}
	b.ReportMetric(float64(fresh)/float64(max(1, cached)), "uncached/cached")
}
