package health

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"homelab/internal/lab"
)

// TestCheckAllConcurrent probes 20 services of which one never answers:
// CheckAll must take about that one probe's timeout, not the sum.
func TestCheckAllConcurrent(t *testing.T) {
	t.Parallel()
	ts := webServer(t, false)
	const timeout = 2 * time.Second
	services := map[string]*lab.Service{}
	for i := range 19 {
		name := fmt.Sprintf("web-%02d", i)
		services[name] = service(name, httpProbe(ts.URL+"/ok", timeout))
	}
	services["stuck"] = service("stuck", httpProbe(ts.URL+"/hang", timeout))
	services["no-probe"] = service("no-probe", nil)

	start := time.Now()
	results := CheckAll(t.Context(), services, Options{})
	took := time.Since(start)
	t.Logf("20 probes in %v", took)
	if took >= 2*timeout {
		t.Errorf("CheckAll took %v: not concurrent (timeout %v each)", took, timeout)
	}
	if len(results) != 20 {
		t.Fatalf("got %d results, want 20 (the service without a probe left out)", len(results))
	}
	if !slices.IsSortedFunc(results, func(a, b Result) int { return strings.Compare(a.Service, b.Service) }) {
		t.Errorf("results not sorted by service")
	}
	for _, r := range results {
		switch {
		case r.Service == "stuck":
			if r.Healthy || r.Detail != "timed out after 2s" {
				t.Errorf("stuck: healthy=%v detail=%q", r.Healthy, r.Detail)
			}
		case !r.Healthy:
			t.Errorf("%s: %q", r.Service, r.Detail)
		}
	}
}

func TestCheckAllEmpty(t *testing.T) {
	if got := CheckAll(t.Context(), nil, Options{}); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}

func TestProbeWithoutProbe(t *testing.T) {
	r := Probe(t.Context(), service("plain", nil), Options{})
	if r.Healthy || r.Kind != "" || r.Detail != "no health probe" {
		t.Errorf("got %+v", r)
	}
}

func TestDefaultTimeout(t *testing.T) {
	// A probe built without Load's defaults still has a deadline.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	h := &lab.Health{Command: &lab.CommandProbe{Run: "true"}}
	if r := Probe(ctx, service("x", h), Options{}); !r.Healthy {
		t.Errorf("got %+v", r)
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{unhealthy("HTTP 503"), "HTTP 503"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "connection refused"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "connection reset"},
		{&url.Error{Op: "Get", URL: "https://x/?token=abc", Err: errors.New("EOF")}, "EOF"},
		{errors.New("something else"), "something else"},
	}
	for _, tt := range tests {
		if got := describe(tt.err); got != tt.want {
			t.Errorf("describe(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := clip("a\n  b\tc", 10); got != "a b c" {
		t.Errorf("got %q", got)
	}
	if got := clip(strings.Repeat("é", 20), 10); got != strings.Repeat("é", 9)+"…" {
		t.Errorf("got %q", got)
	}
}
