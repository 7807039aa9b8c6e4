package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/saga"
)

// TestBuildUnfinished: an unfinished upgrade in the catalog's journal makes
// the lab unhealthy and is shown with the command that finishes it; a
// finished one is not.
func TestBuildUnfinished(t *testing.T) {
	store := openCatalog(t)
	ctx := t.Context()
	for _, s := range []catalog.Saga{
		{ID: "20261123T090000Z-00000001", Kind: "upgrade", Subject: "web", Plan: []string{"set version 1.1.0"}, State: catalog.SagaCompensated, Start: epoch.Add(-2 * time.Hour), End: epoch.Add(-time.Hour)},
		{ID: "20261123T100000Z-00000002", Kind: "upgrade", Subject: "web", Plan: []string{"set version 2.0.0"}, State: catalog.SagaRunning, Start: epoch.Add(-10 * time.Minute)},
	} {
		if err := store.CreateSaga(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	stateDir := t.TempDir()
	r, err := Build(ctx, &lab.Lab{Name: "up", StateDir: stateDir}, store, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if r.Healthy || len(r.Unfinished) != 1 || r.Unfinished[0].ID != "20261123T100000Z-00000002" {
		t.Fatalf("healthy %v, unfinished %+v", r.Healthy, r.Unfinished)
	}
	var b bytes.Buffer
	if err := RenderText(&b, r, epoch); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nNEEDS ATTENTION: 1 unfinished upgrade\n",
		"\nUNFINISHED CHANGES\nUNFINISHED: upgrade web (saga 20261123T100000Z-00000002): running since 2026-11-23 10:05:00 UTC\n  finish it with: homelab upgrade --resume 20261123T100000Z-00000002\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := RenderJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if want := `"unfinished":[{"id":"20261123T100000Z-00000002","kind":"upgrade","subject":"web","state":"running","describe":"upgrade web (saga 20261123T100000Z-00000002): running since 2026-11-23 10:05:00 UTC","in_progress":false,"resume":"homelab upgrade --resume 20261123T100000Z-00000002"}]`; !strings.Contains(b.String(), want) {
		t.Errorf("JSON lacks %s:\n%s", want, b.String())
	}
}

// TestBuildInProgress: an upgrade whose process is at work (it holds the
// service's saga lock) is shown in progress, with its holder, and is no
// problem: the lab stays healthy.
func TestBuildInProgress(t *testing.T) {
	store := openCatalog(t)
	ctx := t.Context()
	if err := store.CreateSaga(ctx, catalog.Saga{ID: "20261123T100000Z-00000003", Kind: "upgrade", Subject: "web",
		Plan: []string{"set version 2.0.0"}, State: catalog.SagaRunning, Start: epoch.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	l, err := lock.Acquire(ctx, stateDir, saga.LockName("web"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r, err := Build(ctx, &lab.Lab{Name: "up", StateDir: stateDir}, store, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Healthy || len(r.Unfinished) != 1 || !r.Unfinished[0].InProgress || r.Unfinished[0].Resume != "" || r.Stalled() != 0 {
		t.Fatalf("healthy %v, unfinished %+v", r.Healthy, r.Unfinished)
	}
	var b bytes.Buffer
	if err := RenderText(&b, r, epoch); err != nil {
		t.Fatal(err)
	}
	if want := "\nUNFINISHED CHANGES\nupgrade web (saga 20261123T100000Z-00000003): running since 2026-11-23 10:14:00 UTC\n  in progress: pid "; !strings.Contains(b.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, b.String())
	}
	if strings.Contains(b.String(), "NEEDS ATTENTION") {
		t.Errorf("an upgrade in progress needs attention:\n%s", b.String())
	}
}

// TestBuildAbandonedRun: a backup run the catalog has as running is shown
// running while a process holds its target's lock, and interrupted once
// none does (the homelab running it was killed); the catalog keeps it.
func TestBuildAbandonedRun(t *testing.T) {
	store := openCatalog(t)
	ctx := t.Context()
	if _, err := store.StartRun(ctx, catalog.Run{RunID: "20261123T100000Z-0000abcd", Kind: catalog.KindBackup, Target: "files",
		Provider: lab.ProviderRestic, Repository: "local", Start: epoch.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	l := oneTarget("")
	l.StateDir = t.TempDir()
	held, err := lock.Acquire(ctx, l.StateDir, "files", false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(ctx, l, store, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Targets[0].LastRun; got == nil || got.Result != catalog.ResultRunning {
		t.Fatalf("with its lock held: %+v", got)
	}
	held.Release()
	if r, err = Build(ctx, l, store, epoch); err != nil {
		t.Fatal(err)
	}
	if got := r.Targets[0].LastRun; got == nil || got.Result != catalog.ResultInterrupted || got.Error != "the homelab process running it is gone" {
		t.Fatalf("with no process on it: %+v", got)
	}
	runs, err := store.Runs(ctx, catalog.RunFilter{Target: "files"})
	if err != nil || len(runs) != 1 || runs[0].Result != catalog.ResultRunning {
		t.Errorf("the catalog's run: %+v, %v", runs, err)
	}
}
