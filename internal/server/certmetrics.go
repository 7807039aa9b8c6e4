package server

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"homelab/internal/certs"
	"homelab/internal/lab"
)

var (
	descCertNotAfter = prometheus.NewDesc("homelab_cert_not_after_timestamp_seconds",
		"When the certificate expires, in seconds since the epoch; absent when it is not issued or not readable.",
		[]string{"cert", "kind"}, nil)
	descCertWindow = prometheus.NewDesc("homelab_cert_window_start_timestamp_seconds",
		"When the certificate's rotation window opens (certs.rotation_window of its lifetime before it expires), in seconds since the epoch.",
		[]string{"cert", "kind"}, nil)
	descCertIssued = prometheus.NewDesc("homelab_cert_issued",
		"1 when the certificate of the lab file is issued and readable, else 0.",
		[]string{"cert", "kind"}, nil)
)

// certCollector exports the lab's certificates (certs.Status). It reads
// them again only when the lab changed or a certificate or key file it
// read last changed (size or modification time): a scrape of unchanged
// files costs a stat of each. The figures are times, so they do not
// depend on when the scrape happens.
type certCollector struct {
	lab func() *lab.Lab
	now func() time.Time

	mu    sync.Mutex
	l     *lab.Lab
	key   string
	files []string
	certs []certs.Cert
	err   error
}

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCertNotAfter
	ch <- descCertWindow
	ch <- descCertIssued
}

// stamp is the size and modification time of files.
func stamp(files []string) string {
	var b strings.Builder
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s -\n", f)
		}
	}
	return b.String()
}

func (c *certCollector) read() ([]certs.Cert, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lab()
	if l == c.l && c.files != nil && stamp(c.files) == c.key {
		return c.certs, c.err
	}
	rep, err := certs.Status(l, c.now())
	c.l, c.err, c.certs, c.files = l, err, nil, []string{}
	if err == nil && rep.Configured {
		c.certs = append([]certs.Cert{rep.CA}, rep.Leaves...)
	}
	for _, x := range c.certs {
		c.files = append(c.files, x.CertFile, x.KeyFile)
	}
	c.key = stamp(c.files)
	return c.certs, c.err
}

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	cs, err := c.read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descCertIssued, err)
		return
	}
	for _, x := range cs {
		issued := 0.0
		if x.Exists && !x.NotAfter.IsZero() {
			issued = 1
			ch <- prometheus.MustNewConstMetric(descCertNotAfter, prometheus.GaugeValue, float64(x.NotAfter.Unix()), x.Name, x.Kind)
			ch <- prometheus.MustNewConstMetric(descCertWindow, prometheus.GaugeValue, float64(x.WindowStart.Unix()), x.Name, x.Kind)
		}
		ch <- prometheus.MustNewConstMetric(descCertIssued, prometheus.GaugeValue, issued, x.Name, x.Kind)
	}
}

// fqName finds a descriptor's metric name in its String form.
var fqName = regexp.MustCompile(`fqName: "([a-z0-9_]+)"`)

// MetricNames are the names of the metrics homelab's /metrics exports
// itself (not the Go and process collectors'), sorted: what
// contrib/prometheus's rules and contrib/grafana's dashboard may name.
func MetricNames() []string {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		(&Collector{}).Describe(ch)
		hostCollector{}.Describe(ch)
		windowCollector{}.Describe(ch)
		(&certCollector{}).Describe(ch)
		close(ch)
	}()
	var out []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
