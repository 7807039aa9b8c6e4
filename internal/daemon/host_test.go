package daemon

import (
	"testing"
	"time"

	"homelab/internal/app"
	"homelab/internal/catalog"
	"homelab/internal/host"
	"homelab/internal/notify"
	"homelab/internal/status"
)

// TestDiskFillingNotifiedOnce: the filesystem of the lab's state
// directory, read for real (statfs), with injected samples of the last
// three days whose free space shrinks to today's at a pace that fills it
// in about five days, is forecast to fill within warn_days (14): the
// sampler sends exactly one disk_filling over two rounds, records a
// warning event and its own samples, and Host shows the forecast.
func TestDiskFillingNotifiedOnce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.d.cfg.SampleHost = app.SampleHost
	l := f.d.Lab()
	fss, err := host.Filesystems("/proc/self/mountinfo", []string{l.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	mount, avail := fss[0].Mount, float64(fss[0].Avail)
	var ss []catalog.Sample
	for h := 72; h >= 1; h-- {
		ss = append(ss, catalog.Sample{Series: status.Series(mount), Time: f.now.Add(-time.Duration(h) * time.Hour),
			Value: avail + avail*float64(h)/(5*24)})
	}
	if err := f.store.AddSamples(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if f.d.Host() != nil {
		t.Fatal("a host status before the first round")
	}
	f.d.SampleHost(ctx)
	f.now = f.now.Add(10 * time.Minute)
	f.d.SampleHost(ctx)

	var filling []string
	for _, k := range f.notes.kinds() {
		if k == notify.DiskFilling+":"+mount {
			filling = append(filling, k)
		}
	}
	if len(filling) != 1 {
		t.Errorf("notifications %v, want one %s of %s", f.notes.kinds(), notify.DiskFilling, mount)
	}
	h := f.d.Host()
	var fs *status.FilesystemStatus
	for i := range h.Filesystems {
		if h.Filesystems[i].Mount == mount {
			fs = &h.Filesystems[i]
		}
	}
	// The line through the injected samples reaches zero 5 days after
	// the newest; other writers on the filesystem move it a little.
	if fs == nil || !fs.Filling || fs.DaysLeft == nil || *fs.DaysLeft < 4 || *fs.DaysLeft > 6 {
		t.Fatalf("host %+v: want %s filling in about 5 days", h, mount)
	}
	got, err := f.store.SamplesOf(ctx, status.Series(mount), f.now.Add(-time.Hour))
	if err != nil || len(got) != 2 {
		t.Errorf("samples recorded by the rounds: %d, %v; want 2", len(got), err)
	}
	evs, err := f.store.Events(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var warned int
	for _, e := range evs {
		if e.Kind == notify.DiskFilling && e.Level == "warn" {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("%d disk_filling events, want 1: %+v", warned, evs)
	}
}

// TestSampleRoundKeepsCatalogVersion: a sampling round records its
// samples without changing the catalog's version, so the caches keyed by
// it (catalog.Cache, the server's page and /metrics) stay, while Host
// and the samples show the new round.
func TestSampleRoundKeepsCatalogVersion(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.d.cfg.SampleHost = app.SampleHost
	v0, err := f.store.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.d.SampleHost(ctx)
	if v, err := f.store.Version(ctx); err != nil || v != v0 {
		t.Errorf("catalog version %d after a sampling round, want %d (%v)", v, v0, err)
	}
	h := f.d.Host()
	if h == nil || len(h.Filesystems) == 0 || !h.Sampled.Equal(f.now) {
		t.Fatalf("host after the round: %+v", h)
	}
	mount := h.Filesystems[0].Mount
	got, err := f.store.SamplesOf(ctx, status.Series(mount), f.now)
	if err != nil || len(got) != 1 || got[0].Value != float64(h.Filesystems[0].Avail) {
		t.Errorf("samples of %s recorded by the round: %+v, %v; want its free space %d", mount, got, err, h.Filesystems[0].Avail)
	}
}

// TestNoSamplerWithoutSampleHost: without Config.SampleHost a round does
// nothing.
func TestNoSamplerWithoutSampleHost(t *testing.T) {
	f := newFixture(t)
	f.d.SampleHost(t.Context())
	if f.d.Host() != nil || len(f.notes.kinds()) != 0 {
		t.Errorf("host %+v, notifications %v", f.d.Host(), f.notes.kinds())
	}
}
