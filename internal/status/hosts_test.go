package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"homelab/internal/host"
	"homelab/internal/runtime"
)

const gib = 1 << 30

// fillingSamples: /srv had 100 GiB free 3 days before now and loses 5
// GiB a day, hourly samples: 85 GiB free at now, full in 17 days.
func fillingSamples(now time.Time) []host.Sample {
	var ss []host.Sample
	for h := 72; h > 0; h-- {
		ss = append(ss, host.Sample{Time: now.Add(-time.Duration(h) * time.Hour), Avail: uint64(85*gib + h*5*gib/24)})
	}
	return ss
}

func TestHostForecast(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	in := host.Info{Hostname: "box", Uptime: 50 * time.Hour, Load1: 0.5, Load5: 0.25, Load15: 0.125, CPUs: 4, MemTotal: 8 * gib, MemUsed: 2 * gib}
	fss := []host.FS{
		{Mount: "/", Source: "/dev/sda1", Type: "ext4", Total: 50 * gib, Used: 10 * gib, Avail: 40 * gib, Paths: []string{"/var/lib/homelab"}},
		{Mount: "/srv", Source: "/dev/sdb1", Type: "xfs", Total: 200 * gib, Used: 115 * gib, Avail: 85 * gib, Paths: []string{"/srv/repo", "/srv/data"}},
	}
	samples := map[string][]host.Sample{
		Series("/srv"): fillingSamples(now),
		// Steady: no forecast.
		Series("/"): {{Time: now.Add(-48 * time.Hour), Avail: 40 * gib}, {Time: now.Add(-time.Hour), Avail: 40 * gib}},
	}
	for _, tc := range []struct {
		warn    int
		filling bool
	}{{14, false}, {17, true}, {30, true}} {
		h := HostOf(in, nil, fss, samples, tc.warn, now)
		srv := h.Filesystems[1]
		if srv.DaysLeft == nil || *srv.DaysLeft != 17 || !srv.FullAt.Equal(now.Add(17*24*time.Hour)) {
			t.Fatalf("forecast of /srv: %v %v, want 17 days", srv.DaysLeft, srv.FullAt)
		}
		if h.Filesystems[0].DaysLeft != nil {
			t.Errorf("steady / has a forecast: %v", *h.Filesystems[0].DaysLeft)
		}
		r := Report{Lab: "l", Generated: now, Healthy: true}
		r.AddHost(&h)
		if srv.Filling != tc.filling || r.Healthy == tc.filling {
			t.Errorf("warn_days %d: filling %t, healthy %t; want filling %t", tc.warn, srv.Filling, r.Healthy, tc.filling)
		}
		var txt, js bytes.Buffer
		if err := RenderText(&txt, r, now); err != nil {
			t.Fatal(err)
		}
		if err := RenderJSON(&js, r); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nHOST\nbox  up 2d 2h  load 0.50 0.25 0.12 (4 CPUs)  memory 2.0 GiB of 8.0 GiB\n", "/srv/repo, /srv/data"} {
			if !strings.Contains(txt.String(), want) {
				t.Errorf("text lacks %q:\n%s", want, txt.String())
			}
		}
		if got := strings.Contains(txt.String(), "FILLING 17.0d") && strings.Contains(txt.String(), "NEEDS ATTENTION: 1 filesystem filling"); got != tc.filling {
			t.Errorf("warn_days %d: FILLING shown %t:\n%s", tc.warn, got, txt.String())
		}
		var out struct {
			Healthy bool
			Host    struct {
				CPUs        int `json:"cpus"`
				Filesystems []struct {
					Mount    string
					DaysLeft *float64 `json:"days_left"`
					FullAt   *string  `json:"full_at"`
					Filling  bool
				}
			}
		}
		if err := json.Unmarshal(js.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		f := out.Host.Filesystems[1]
		if out.Host.CPUs != 4 || f.Mount != "/srv" || f.DaysLeft == nil || *f.DaysLeft != 17 || f.FullAt == nil || *f.FullAt != "2026-03-27T12:00:00Z" || f.Filling != tc.filling {
			t.Errorf("json host: %s", js.String())
		}
		if out.Host.Filesystems[0].DaysLeft != nil {
			t.Errorf("json: / has days_left: %s", js.String())
		}
	}
}

func TestHostNotRead(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	h := HostOf(host.Info{}, errors.New("read /proc/uptime: no such file"), nil, nil, 14, now)
	r := Report{Lab: "l", Generated: now, Healthy: true}
	r.AddHost(&h)
	var txt bytes.Buffer
	RenderText(&txt, r, now)
	if !r.Healthy || !strings.Contains(txt.String(), "host not read: read /proc/uptime: no such file") {
		t.Errorf("healthy %t:\n%s", r.Healthy, txt.String())
	}
}

func TestHostContainers(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	h := HostOf(host.Info{Hostname: "box", CPUs: 1}, nil, nil, nil, 14, now)
	h.Containers = []runtime.ContainersResult{
		{Service: "app", Containers: []runtime.Container{
			{Service: "app", ID: "0123456789ab", Name: "lab-app-1", State: "running", Restarts: 2, StartedAt: now.Add(-3*time.Hour - 5*time.Minute), Memory: 12 << 20},
			{Service: "app", ID: "ba9876543210", Name: "lab-app-2", State: "exited", StartedAt: now.Add(-time.Hour)},
		}},
		{Service: "db", Err: errors.New("service db: docker compose ps: Cannot connect to the Docker daemon")},
	}
	r := Report{Lab: "l", Generated: now, Healthy: true}
	r.AddHost(&h)
	var txt, js bytes.Buffer
	RenderText(&txt, r, now)
	RenderJSON(&js, r)
	for _, want := range []string{
		"SERVICE  CONTAINER  STATE     RESTARTS  MEMORY\n",
		"app      lab-app-1  up 3h 5m  2         12.0 MiB\n",
		"app      lab-app-2  EXITED    0         -\n",
		"db       -          UNKNOWN   -         service db: docker compose ps: Cannot connect ...\n",
	} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	for _, want := range []string{
		`"containers":[{"service":"app","containers":[{"id":"0123456789ab","name":"lab-app-1","state":"running","restarts":2,"started_at":"2026-03-10T08:55:00Z","uptime_seconds":11100,"memory_bytes":12582912},{"id":"ba9876543210","name":"lab-app-2","state":"exited","restarts":0,"started_at":"2026-03-10T11:00:00Z","uptime_seconds":null,"memory_bytes":0}]},`,
		`{"service":"db","error":"service db: docker compose ps: Cannot connect to the Docker daemon","containers":[]}]`,
	} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("json lacks %s:\n%s", want, js.String())
		}
	}
}
