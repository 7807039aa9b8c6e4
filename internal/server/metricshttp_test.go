package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/procfs"

	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/lab"
)

// dropped are the library process collector's metrics that
// processCollector leaves out.
var dropped = []string{"process_network_receive_bytes_total", "process_network_transmit_bytes_total"}

// TestMetricsLikePromhttp compares /metrics with what promhttp.HandlerFor
// serves over one registry of the Go collector, the library's process
// collector and the Collector, for several Accept and Accept-Encoding
// headers: the same content type and encoding, the same families in the
// same order with the same types and help (less dropped), and homelab's
// metrics the same to the byte. Each header is asked twice: the second
// answer comes from the cache.
func TestMetricsLikePromhttp(t *testing.T) {
	now := epoch
	clock := func() time.Time { return now }
	f := newFixture(t, "", nil, func(o *Options) { o.Now = clock })
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(func() *lab.Lab { return f.lab }, f.store, clock),
		&certCollector{lab: func() *lab.Lab { return f.lab }, now: clock})
	ref := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Registry: reg})

	protobuf := "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
	for _, tt := range []struct{ accept, encoding string }{
		{"", ""},
		{"", "gzip"},
		{"", "gzip, deflate, br"},
		{"", "gzip, *"},  // gzip no better than identity: not compressed
		{"", "gzip;q=0"}, // refused
		{"", "identity;q=0.5, gzip;q=0.9"},
		{protobuf, ""},
		{protobuf, "gzip"},
		{"text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "gzip"},
		{"application/openmetrics-text;version=1.0.0", ""}, // no OpenMetrics: text
	} {
		for i := range 2 {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			if tt.encoding != "" {
				req.Header.Set("Accept-Encoding", tt.encoding)
			}
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			f.srv.Handler().ServeHTTP(got, req)
			ref.ServeHTTP(want, req)
			name := "Accept " + tt.accept + ", Accept-Encoding " + tt.encoding
			if got.Code != http.StatusOK || want.Code != http.StatusOK {
				t.Fatalf("%s: %d, want %d", name, got.Code, want.Code)
			}
			for _, h := range []string{"Content-Type", "Content-Encoding"} {
				if g, w := got.Header().Get(h), want.Header().Get(h); g != w {
					t.Errorf("%s, scrape %d: %s %q, promhttp's %q", name, i, h, g, w)
				}
			}
			// Sent whole, in one write, with its length (not chunked).
			if cl, n := got.Header().Get("Content-Length"), got.Body.Len(); cl != strconv.Itoa(n) {
				t.Errorf("%s, scrape %d: Content-Length %q for a body of %d bytes", name, i, cl, n)
			}
			gf, wf := families(t, got), families(t, want)
			wf = slices.DeleteFunc(wf, func(mf *dto.MetricFamily) bool { return slices.Contains(dropped, mf.GetName()) })
			if expfmt.ResponseFormat(got.Header()).FormatType() != expfmt.TypeProtoDelim {
				// The text parser returns a map: no order to compare.
				byName := func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) }
				slices.SortFunc(gf, byName)
				slices.SortFunc(wf, byName)
			}
			if g, w := names(gf), names(wf); !slices.Equal(g, w) {
				t.Fatalf("%s, scrape %d: families\n%v\npromhttp's\n%v", name, i, g, w)
			}
			for j := range gf {
				g, w := gf[j], wf[j]
				if g.GetType() != w.GetType() || g.GetHelp() != w.GetHelp() {
					t.Errorf("%s: %s is a %v (%q), promhttp's a %v (%q)", name, g.GetName(), g.GetType(), g.GetHelp(), w.GetType(), w.GetHelp())
				}
				if strings.HasPrefix(g.GetName(), ownPrefix) && text(t, g) != text(t, w) {
					t.Errorf("%s, scrape %d: %s\n%s\npromhttp's\n%s", name, i, g.GetName(), text(t, g), text(t, w))
				}
			}
		}
	}
}

// families decodes a /metrics answer, gzipped or not, in its content type.
func families(t *testing.T, rec *httptest.ResponseRecorder) []*dto.MetricFamily {
	t.Helper()
	var body io.Reader = bytes.NewReader(rec.Body.Bytes())
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	dec := expfmt.NewDecoder(body, expfmt.ResponseFormat(rec.Header()))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decode %s: %v", rec.Header().Get("Content-Type"), err)
		}
		out = append(out, mf)
	}
}

func names(mfs []*dto.MetricFamily) []string {
	out := make([]string, len(mfs))
	for i, mf := range mfs {
		out[i] = mf.GetName()
	}
	return out
}

// text is mf in the text format.
func text(t *testing.T, mf *dto.MetricFamily) string {
	t.Helper()
	var b strings.Builder
	if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"deflate, gzip;q=0.8"}, true},
		{[]string{"br", "gzip"}, true}, // two header lines
		{[]string{"*"}, false},         // identity as good: not compressed (promhttp's choice)
		{[]string{"gzip, *"}, false},
		{[]string{"*;q=0.5, identity;q=0.1"}, false}, // * is identity's too
		{[]string{"*;q=0.1, gzip;q=0.5"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0.5, identity;q=0.5"}, false},
		{[]string{"identity;q=0.2, gzip ; q=0.3"}, true},
		{[]string{"deflate"}, false},
	} {
		h := http.Header{}
		for _, v := range tt.header {
			h.Add("Accept-Encoding", v)
		}
		if got := acceptsGzip(h); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

// TestProcessCollector compares processCollector's values with what
// /proc says, read just before and after.
func TestProcessCollector(t *testing.T) {
	p, err := procfs.Self()
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Stat()
	if err != nil {
		t.Fatal(err)
	}
	start, err := st.StartTime()
	if err != nil {
		t.Fatal(err)
	}
	lim, err := p.Limits()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newProcessCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	after, err := p.Stat()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if want := []string{"process_cpu_seconds_total", "process_max_fds", "process_open_fds", "process_resident_memory_bytes",
		"process_start_time_seconds", "process_virtual_memory_bytes", "process_virtual_memory_max_bytes"}; !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Fatalf("metrics %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	exact := map[string]float64{
		"process_start_time_seconds":       start,
		"process_max_fds":                  float64(lim.OpenFiles),
		"process_virtual_memory_max_bytes": float64(lim.AddressSpace),
	}
	for name, want := range exact {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if cpu := got["process_cpu_seconds_total"]; cpu < st.CPUTime() || cpu > after.CPUTime() {
		t.Errorf("process_cpu_seconds_total = %v, want from %v to %v", cpu, st.CPUTime(), after.CPUTime())
	}
	if rss := got["process_resident_memory_bytes"]; rss <= 0 {
		t.Errorf("process_resident_memory_bytes = %v", rss)
	}
	if fds := got["process_open_fds"]; fds < 3 {
		t.Errorf("process_open_fds = %v, want at least stdin, stdout and stderr", fds)
	}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	if got["process_max_fds"] != float64(r.Cur) {
		t.Errorf("process_max_fds = %v, getrlimit says %v", got["process_max_fds"], r.Cur)
	}
}

// TestScrapesSeeChanges scrapes the page and the metrics (each twice, so
// that the second comes from whatever is cached), then changes one thing
// at a time and expects the next scrape to show it: a backup recorded by
// another handle on the catalog (as the CLI records one), a certificate
// issued on disk, the clock moving to the next minute, and the clock
// passing a target's DueBy with nothing else changed (the metrics' cache
// holds until then, and not a nanosecond longer).
func TestScrapesSeeChanges(t *testing.T) {
	now := epoch
	f := newFixture(t, "", nil, func(o *Options) { o.Now = func() time.Time { return now } })
	h := f.srv.Handler()
	page := func() string {
		t.Helper()
		var out string
		for range 2 {
			code, body := serve(h, "/")
			if code != http.StatusOK {
				t.Fatalf("GET /: %d %s", code, body)
			}
			out = body
		}
		return out
	}
	metrics := func() string {
		t.Helper()
		var out string
		for range 2 {
			code, body := serve(h, "/metrics")
			if code != http.StatusOK {
				t.Fatalf("GET /metrics: %d %s", code, body)
			}
			out = homelabMetrics(body)
		}
		return out
	}
	expect := func(step, body string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in\n%s", step, w, body)
			}
		}
	}
	expect("start", page(), "2026-11-23 10:15 UTC", "1 cert missing, 1 cert expiring")
	expect("start", metrics(), `homelab_target_overdue{target="gitlab-db"} 1`, `homelab_backup_size_bytes{target="gitlab-db"} 3.2505856e+08`)

	// A good backup of gitlab-db, recorded by another handle.
	other, err := catalog.Open(t.Context(), f.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	r, err := other.StartRun(t.Context(), catalog.Run{RunID: "gitlab-db-new", Kind: catalog.KindBackup, Target: "gitlab-db",
		Provider: "postgres", Repository: "local", Start: at(0, -5)})
	if err != nil {
		t.Fatal(err)
	}
	r.End, r.SnapshotID, r.Bytes, r.Result = at(0, -4), "cafe0001", 4242, catalog.ResultOK
	if err := other.FinishRun(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	expect("after a backup", metrics(), `homelab_target_overdue{target="gitlab-db"} 0`, `homelab_backup_size_bytes{target="gitlab-db"} 4242`)
	expect("after a backup", page(), "2026-11-23 10:11", "4.1 KiB")

	// The wiki certificate, missing until now, issued.
	m := &certs.Manager{Lab: f.lab, Now: func() time.Time { return epoch }}
	if _, err := m.Issue(t.Context(), "wiki", false); err != nil {
		t.Fatal(err)
	}
	body := page()
	expect("after a certificate", body, "1 cert expiring")
	if strings.Contains(body, "not issued: run homelab cert issue wiki") || strings.Contains(body, "cert missing") {
		t.Errorf("after a certificate: wiki still shown missing:\n%s", body)
	}

	// The next minute.
	now = epoch.Add(time.Minute)
	expect("a minute later", page(), "2026-11-23 10:16 UTC")

	// files is due by its DueBy: not overdue at it, overdue just after.
	due := dueBy(t, h, "files")
	now = due
	expect("at files' due time", metrics(), `homelab_target_overdue{target="files"} 0`)
	now = due.Add(time.Nanosecond)
	expect("just after files' due time", metrics(), `homelab_target_overdue{target="files"} 1`)
	expect("just after files' due time", page(), "OVERDUE")
}

// dueBy is target's due_by in /api/v1/status.
func dueBy(t *testing.T, h http.Handler, target string) time.Time {
	t.Helper()
	code, body := serve(h, "/api/v1/status")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/status: %d %s", code, body)
	}
	var st struct {
		Targets []struct {
			Name  string     `json:"name"`
			DueBy *time.Time `json:"due_by"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	for _, tg := range st.Targets {
		if tg.Name == target && tg.DueBy != nil {
			return *tg.DueBy
		}
	}
	t.Fatalf("no due_by for %s in %s", target, body)
	return time.Time{}
}
