package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
)

// conformance describes one probe kind for the shared suite that every
// kind runs (runConformance): a healthy target, an unhealthy one and, when
// the kind can be made to, one that never answers.
type conformance struct {
	kind string
	// healthy returns a probe of a healthy target.
	healthy func(t *testing.T) *lab.Health
	// unhealthy returns a probe of an unhealthy target and a text its
	// detail must contain.
	unhealthy func(t *testing.T) (*lab.Health, string)
	// hang returns a probe, with the given timeout, of a target that
	// never answers, and the options to run it with; nil when the kind
	// has none.
	hang func(t *testing.T, timeout time.Duration) (*lab.Health, Options)
	// secrets must never appear in any detail.
	secrets []string
	opts    Options
}

func service(name string, h *lab.Health) *lab.Service {
	return &lab.Service{Name: name, Health: h}
}

// runConformance runs the suite for c.
func runConformance(t *testing.T, c conformance) {
	t.Helper()
	var details []string
	check := func(t *testing.T, r Result, healthy bool) {
		t.Helper()
		details = append(details, r.Detail)
		t.Logf("%s: healthy=%v detail=%q in %v", r.Service, r.Healthy, r.Detail, r.Duration)
		if r.Healthy != healthy {
			t.Errorf("healthy = %v, want %v (detail %q)", r.Healthy, healthy, r.Detail)
		}
		if r.Kind != c.kind {
			t.Errorf("kind = %q, want %q", r.Kind, c.kind)
		}
		if r.Detail == "" || strings.ContainsAny(r.Detail, "\n\r") || len([]rune(r.Detail)) > maxDetail {
			t.Errorf("detail %q: want one non-empty line of at most %d runes", r.Detail, maxDetail)
		}
		if r.Duration <= 0 {
			t.Errorf("duration %v", r.Duration)
		}
	}

	t.Run("healthy", func(t *testing.T) {
		r := Probe(t.Context(), service("up", c.healthy(t)), c.opts)
		check(t, r, true)
		if r.Service != "up" {
			t.Errorf("service = %q", r.Service)
		}
	})
	t.Run("unhealthy", func(t *testing.T) {
		h, want := c.unhealthy(t)
		r := Probe(t.Context(), service("down", h), c.opts)
		check(t, r, false)
		if !strings.Contains(r.Detail, want) {
			t.Errorf("detail %q lacks %q", r.Detail, want)
		}
	})
	// A target that cannot be made to hang (a tcp dial on loopback) has no
	// hang case, and so no timeout subtest.
	if c.hang != nil {
		t.Run("timeout", func(t *testing.T) {
			const timeout = time.Second
			start := time.Now()
			h, opts := c.hang(t, timeout)
			r := Probe(t.Context(), service("hung", h), opts)
			took := time.Since(start)
			check(t, r, false)
			if r.Detail != "timed out after 1s" {
				t.Errorf("detail %q, want %q", r.Detail, "timed out after 1s")
			}
			if took < timeout || took > 2*timeout {
				t.Errorf("took %v with a timeout of %v", took, timeout)
			}
		})
	}
	t.Run("interrupted", func(t *testing.T) {
		// A cancelled caller is not the service's fault: the detail says
		// so rather than blaming the target.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := Probe(ctx, service("up", c.healthy(t)), c.opts)
		if r.Healthy || r.Detail != "interrupted" {
			t.Errorf("cancelled probe: healthy=%v detail=%q, want unhealthy \"interrupted\"", r.Healthy, r.Detail)
		}
	})
	t.Run("no secrets", func(t *testing.T) {
		for _, d := range details {
			for _, s := range c.secrets {
				if s != "" && strings.Contains(d, s) {
					t.Errorf("detail %q holds a secret", d)
				}
			}
		}
	})
}
