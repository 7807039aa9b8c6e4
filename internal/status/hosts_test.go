package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"homelab/internal/host"
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
