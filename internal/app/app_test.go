package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"homelab/internal/app"
	"homelab/internal/catalog"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/saga"
	"homelab/internal/testenv"
	"homelab/internal/upgrade"
)

var epoch = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// newApp writes text as lab.yaml in a new directory (with a restic
// password file p) and returns the App of it on a fixed clock.
func newApp(t *testing.T, text string) *app.App {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p"), []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return &app.App{Lab: l, Now: func() time.Time { return epoch }}
}

const reposLab = `name: applab
state_dir: ./state
repositories:
  byenv: {url: ./repo, password_env: APP_TEST_RESTIC_PASSWORD}
  byfile: {url: ./repo, password_file: ./p}
backups:
  files: {provider: restic, repository: byfile, source: {paths: [.]}}
`

// TestRepo opens one restic repository with its password from the
// environment and from a file, and names what is missing.
func TestRepo(t *testing.T) {
	testenv.Restic(t)
	ctx := context.Background()
	a := newApp(t, reposLab)

	t.Setenv("APP_TEST_RESTIC_PASSWORD", "correct horse")
	c, err := a.Repo(ctx, "byenv", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = a.Repo(ctx, "byfile", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Snapshots(ctx); err != nil {
		t.Errorf("the same repository by password_file: %v", err)
	}

	t.Setenv("APP_TEST_RESTIC_PASSWORD", "")
	if _, err := a.Repo(ctx, "byenv", 0); err == nil || err.Error() != "repository byenv: password_env APP_TEST_RESTIC_PASSWORD is empty" {
		t.Errorf("empty password_env: %v", err)
	}
	os.Unsetenv("APP_TEST_RESTIC_PASSWORD")
	if _, err := a.Repo(ctx, "byenv", 0); err == nil || err.Error() != "repository byenv: password_env APP_TEST_RESTIC_PASSWORD is not set" {
		t.Errorf("unset password_env: %v", err)
	}
	if _, err := a.Repo(ctx, "nope", 0); err == nil || err.Error() != `unknown repository "nope"` {
		t.Errorf("unknown repository: %v", err)
	}
}

// TestRepoS3 opens a repository on a real S3 server with its keys from a
// file and from the environment: restic gets them (init and a listing
// work), and a wrong key fails with the cause and the repository's name,
// never the key, and also an unset key's variable is named, not guessed.
func TestRepoS3(t *testing.T) {
	testenv.Restic(t)
	s := testenv.S3(t)
	bucket := s.Bucket(t, "app")
	ctx := context.Background()
	a := newApp(t, `name: applab
state_dir: ./state
repositories:
  offsite:
    url: `+s.ResticURL(bucket, "restic")+`
    password_file: ./p
    access_key_id_file: ./s3-id
    secret_access_key_env: APP_TEST_S3_SECRET
    region: `+s.Region+`
`)
	if err := os.WriteFile(filepath.Join(filepath.Dir(a.Lab.Path), "s3-id"), []byte(s.AccessKeyID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APP_TEST_S3_SECRET", s.SecretAccessKey)
	c, err := a.Repo(ctx, "offsite", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(ctx); err != nil {
		t.Fatalf("init: %v", err)
	}
	if _, err := c.Snapshots(ctx); err != nil {
		t.Fatalf("snapshots: %v", err)
	}

	t.Setenv("APP_TEST_S3_SECRET", "wrong-secret-1234")
	c, err = a.Repo(ctx, "offsite", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Snapshots(ctx)
	if !errors.Is(err, restic.ErrBackendAuth) || !strings.Contains(err.Error(), "repository offsite: ") {
		t.Errorf("wrong secret key: %v", err)
	}
	if err != nil && (strings.Contains(err.Error(), "wrong-secret-1234") || strings.Contains(err.Error(), s.AccessKeyID)) {
		t.Errorf("a key in the error: %v", err)
	}
	os.Unsetenv("APP_TEST_S3_SECRET")
	if _, err := a.Repo(ctx, "offsite", 0); err == nil || err.Error() != "repository offsite: secret_access_key_env APP_TEST_S3_SECRET is not set" {
		t.Errorf("unset secret_access_key_env: %v", err)
	}
}

// TestManager opens the catalog in the state directory and gives the
// manager every provider and the lab's clock.
func TestManager(t *testing.T) {
	a := newApp(t, reposLab)
	for _, wait := range []bool{false, true} {
		m, closeFn, err := a.Manager(context.Background(), wait)
		if err != nil {
			t.Fatal(err)
		}
		if m.Lab != a.Lab || m.Wait != wait || m.Now == nil || !m.Now().Equal(epoch) {
			t.Errorf("wait %v: manager %+v", wait, m)
		}
		var kinds []string
		for k := range m.Providers {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		if !slices.Equal(kinds, []string{lab.ProviderPgBackRest, lab.ProviderPostgres, lab.ProviderRestic, lab.ProviderS3Mirror}) {
			t.Errorf("providers %v", kinds)
		}
		closeFn()
	}
	if _, err := os.Stat(a.CatalogPath()); err != nil || a.CatalogPath() != filepath.Join(a.Lab.StateDir, "catalog.db") {
		t.Errorf("catalog %s: %v", a.CatalogPath(), err)
	}
}

// TestUnfinished: AtStart reads unfinished sagas without creating a
// catalog that is not there.
func TestUnfinished(t *testing.T) {
	ctx := context.Background()
	a := newApp(t, reposLab)
	open, _, err := a.AtStart(ctx, true, true)
	if err != nil || open != nil {
		t.Fatalf("no catalog: %v, %v", open, err)
	}
	if _, err := os.Stat(a.CatalogPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the catalog was created: %v", err)
	}

	store, err := a.OpenCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []catalog.Saga{
		{ID: "s1", Kind: upgrade.Kind, Subject: "web", State: saga.Done, Start: epoch},
		{ID: "s2", Kind: upgrade.Kind, Subject: "db", State: saga.Running, Start: epoch.Add(time.Minute)},
	} {
		if err := store.CreateSaga(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	open, _, err = a.AtStart(ctx, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != "s2" || open[0].InProgress || open[0].Holder != "" {
		t.Errorf("unfinished = %+v, want s2 alone, no process at work", open)
	}
}

const probedLab = `name: applab
state_dir: ./state
services:
  web:
    runtime: {exec: {start: "true", stop: "true", status: "exit 0"}}
    health: {tcp: {address: "127.0.0.1:1"}}
`

// TestReport puts the probe's results into the catalog's report, and
// cancels and waits for the probe when the report fails.
func TestReport(t *testing.T) {
	ctx := context.Background()
	a := newApp(t, probedLab)
	store, err := a.OpenCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	probe := func(ctx context.Context, l *lab.Lab) (app.Live, error) {
		if l != a.Lab {
			t.Errorf("probed lab %p, want %p", l, a.Lab)
		}
		return app.Live{Health: []health.Result{{Service: "web", Kind: lab.ProbeTCP, Detail: "connection refused"}}}, nil
	}
	rep, err := app.Report(ctx, a.Lab, store, epoch, probe)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Healthy || len(rep.Services) != 1 || rep.Services[0].Name != "web" || rep.Services[0].Detail != "connection refused" {
		t.Errorf("report: healthy %v, services %+v", rep.Healthy, rep.Services)
	}

	_, err = app.Report(ctx, a.Lab, store, epoch, func(context.Context, *lab.Lab) (app.Live, error) {
		return app.Live{}, errors.New("probes gone")
	})
	if err == nil || err.Error() != "health probes: probes gone" {
		t.Errorf("failing probe: %v", err)
	}

	// A catalog that cannot be read fails the report; the probe, which
	// runs until cancelled, has returned by then.
	closed, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	done := make(chan struct{})
	_, err = app.Report(ctx, a.Lab, closed, epoch, func(ctx context.Context, _ *lab.Lab) (app.Live, error) {
		defer close(done)
		<-ctx.Done()
		return app.Live{}, ctx.Err()
	})
	if err == nil {
		t.Fatal("a closed catalog gave a report")
	}
	select {
	case <-done:
	default:
		t.Error("Report returned before its probe")
	}
}

// hook receives generic webhook notifications.
type hook struct {
	mu     sync.Mutex
	bodies []string
	srv    *httptest.Server
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) url() string {
	return "generic://" + strings.TrimPrefix(h.srv.URL, "http://") + "/hook?template=json&disabletls=yes"
}

func (h *hook) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies)
}

// upgradeRec is an upgrade saga of web from 1.0.0 to 2.0.0 in state,
// past its set version step, with steps before it.
func upgradeRec(t *testing.T, state catalog.SagaState, afterRollback string, steps ...saga.StepRecord) saga.Record {
	t.Helper()
	steps = append(steps, saga.StepRecord{Seq: len(steps) + 1, Name: "set version 2.0.0", Phase: catalog.PhaseForward,
		State: catalog.StepDone, Data: map[string]string{"previous": "1.0.0"}})
	params, err := json.Marshal(upgrade.Plan{Service: "web", From: "1.0.0", To: "2.0.0", Path: []string{"2.0.0"},
		BackupBefore: []string{"files"}, AfterRollback: afterRollback})
	if err != nil {
		t.Fatal(err)
	}
	return saga.Record{ID: "20261123T100000Z-0000abcd", Kind: upgrade.Kind, Subject: "web", State: state,
		Start: epoch, End: epoch.Add(90 * time.Second), Params: params, Error: "web not healthy within 1m", Steps: steps}
}

// TestEndUpgrade: a failed upgrade is notified (once, delivered before
// EndUpgrade returns), a done one is not; a service left stopped comes
// with its restore points.
func TestEndUpgrade(t *testing.T) {
	h := newHook(t)
	a := newApp(t, reposLab+"notify:\n  - {url: \""+h.url()+"\", on: [upgrade_failed]}\n")
	ctx := context.Background()
	u, closeFn, err := a.Upgrader(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	failed := errors.New("web not healthy within 1m")

	if _, ok := a.EndUpgrade(u, saga.Record{}, failed); ok {
		t.Error("no saga, but an end")
	}

	end, ok := a.EndUpgrade(u, upgradeRec(t, saga.Done, ""), nil)
	if !ok || end.Notified || end.Stopped || end.Verdict != "web upgraded from 1.0.0 to 2.0.0 in 1m30s (saga 20261123T100000Z-0000abcd)" {
		t.Errorf("done: ok %v, %+v", ok, end)
	}
	if got := h.received(); len(got) != 0 {
		t.Errorf("done, but notified: %q", got)
	}

	end, ok = a.EndUpgrade(u, upgradeRec(t, saga.Compensated, ""), failed)
	want := "upgrade of web to 2.0.0 failed and was rolled back: web runs 1.0.0 again, with its data, healthy (saga 20261123T100000Z-0000abcd)"
	if !ok || !end.Notified || end.NotifyErr != nil || end.Stopped || end.Verdict != want {
		t.Errorf("rolled back: ok %v, %+v", ok, end)
	}
	got := h.received()
	if len(got) != 1 || !strings.Contains(got[0], "upgrade of web failed") || !strings.Contains(got[0], want) {
		t.Errorf("rolled back: notifications %q", got)
	}

	snap := strings.Repeat("0a", 32)
	rec := upgradeRec(t, saga.NeedsAttention, "", saga.StepRecord{Seq: 1, Name: "restore point before 2.0.0", Phase: catalog.PhaseForward,
		State: catalog.StepDone, Data: map[string]string{saga.SnapshotKey("files"): snap}})
	end, ok = a.EndUpgrade(u, rec, failed)
	if !ok || !end.Stopped || end.RestorePointsErr != nil || len(end.RestorePoints) != 1 || end.RestorePoints[0].Snapshot != snap ||
		len(end.RestorePoints[0].Commands) == 0 || !strings.Contains(end.Verdict, "ROLLBACK FAILED") {
		t.Errorf("rollback failed: ok %v, %+v", ok, end)
	}
	if n := len(h.received()); n != 2 {
		t.Errorf("%d notifications after two failed upgrades", n)
	}

	end, _ = a.EndUpgrade(u, upgradeRec(t, saga.Compensated, "stopped"), failed)
	if !end.Stopped || !strings.Contains(end.Verdict, "rolled back: data restored and 1.0.0 set again, service left STOPPED") {
		t.Errorf("after_rollback stopped: %+v", end)
	}

	// No notify entries: nothing sent; a URL that cannot be read is
	// reported, naming the entry.
	quiet := newApp(t, reposLab)
	if end, _ := quiet.EndUpgrade(u, upgradeRec(t, saga.Compensated, ""), failed); end.Notified || end.NotifyErr != nil {
		t.Errorf("no notify entries: %+v", end)
	}
	broken := newApp(t, reposLab+"notify:\n  - {url_env: APP_TEST_UNSET_URL}\n")
	end, _ = broken.EndUpgrade(u, upgradeRec(t, saga.Compensated, ""), failed)
	if !end.Notified || end.NotifyErr == nil || end.NotifyErr.Error() != "notify[0]: url_env APP_TEST_UNSET_URL is not set" {
		t.Errorf("unset url_env: %+v", end)
	}
}
