package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"homelab/internal/lab"
)

// probeCounter is a real HTTP service that counts the probes it gets and
// takes delay to answer each: "ok" on /healthz, 404 elsewhere.
func probeCounter(t *testing.T, delay time.Duration) (url string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(delay)
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(ts.Close)
	return ts.URL, hits
}

const probedLab = `
name: probed
services:
  web:
    health: {http: {url: "%s/healthz", body: ok}}
`

func TestHealthShared(t *testing.T) {
	url, hits := probeCounter(t, 300*time.Millisecond)
	l := parseLab(t, fmt.Sprintf(probedLab, url))
	current := l
	var mu sync.Mutex
	s, err := New(Options{
		Lab: func() *lab.Lab {
			mu.Lock()
			defer mu.Unlock()
			return current
		},
		Catalog:   openCatalog(t),
		Now:       func() time.Time { return epoch },
		HealthTTL: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	base := newTestServer(t, s)

	// Ten page loads and API calls at once: one probe, same verdict for all.
	var wg sync.WaitGroup
	for i := range 10 {
		path := "/api/v1/status"
		if i%2 == 0 {
			path = "/"
		}
		wg.Go(func() {
			_, body := get(t, base+path)
			if !strings.Contains(string(body), "HTTP 200 in ") {
				t.Errorf("%s lacks the probe's detail: %s", path, body)
			}
		})
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Errorf("10 concurrent requests made %d probes, want 1", n)
	}
	// Within the TTL the results are reused...
	get(t, base+"/api/v1/status")
	if n := hits.Load(); n != 1 {
		t.Errorf("a request within the TTL probed again (%d probes)", n)
	}
	// ...after it they are not...
	time.Sleep(1100 * time.Millisecond)
	get(t, base+"/api/v1/status")
	if n := hits.Load(); n != 2 {
		t.Errorf("%d probes after the TTL, want 2", n)
	}
	// ...and a reloaded lab is probed at once.
	mu.Lock()
	current = parseLab(t, fmt.Sprintf(probedLab, url))
	mu.Unlock()
	get(t, base+"/")
	if n := hits.Load(); n != 3 {
		t.Errorf("%d probes after a reload, want 3", n)
	}
}

func TestHealthEveryRequest(t *testing.T) {
	url, hits := probeCounter(t, 0)
	l := parseLab(t, fmt.Sprintf(probedLab, url))
	s, err := New(Options{Lab: func() *lab.Lab { return l }, Catalog: openCatalog(t), HealthTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	base := newTestServer(t, s)
	for range 3 {
		get(t, base+"/api/v1/status")
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d probes for 3 requests with a negative TTL, want 3", n)
	}
}

func TestPageServices(t *testing.T) {
	// Services only, all healthy: the page says so; a failing one turns
	// the verdict and the API's healthy flag.
	url, _ := probeCounter(t, 0)
	l := parseLab(t, fmt.Sprintf(probedLab, url)+`
  db:
    runtime: {exec: {start: "true", stop: "true", status: "exit 0"}}
    health: {tcp: {address: "`+strings.TrimPrefix(url, "http://")+`"}}
`)
	s, err := New(Options{Lab: func() *lab.Lab { return l }, Catalog: openCatalog(t), Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	base := newTestServer(t, s)
	_, body := get(t, base+"/")
	for _, want := range []string{
		`<strong>Healthy</strong><span>no backup targets; 2 services, all ok</span>`,
		`<span class="badge ok">OK</span>`, `connected in `, `HTTP 200 in `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}

	l2 := parseLab(t, fmt.Sprintf(probedLab, url+"/nothing")) // 404
	s2, err := New(Options{Lab: func() *lab.Lab { return l2 }, Catalog: openCatalog(t), Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	base2 := newTestServer(t, s2)
	_, body = get(t, base2+"/")
	for _, want := range []string{
		`<strong>Needs attention</strong><span>no backup targets; 1 of 1 service failing</span>`,
		`<span class="badge bad">FAILING</span>`, `HTTP 404 in `, `, want 200-399`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	_, body = get(t, base2+"/api/v1/status")
	if !strings.Contains(string(body), `"healthy":false`) || !strings.Contains(string(body), `"probe":"http","healthy":false`) {
		t.Errorf("api: %s", body)
	}
}
