package serve

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"homelab/e2e/e2etest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// TestServeS3 runs `homelab serve` with a restic repository on S3 (a real
// versitygw; the key ID by file, the secret key by environment) and
// schedules every few seconds: scheduled backups and repository checks
// land in the catalog as ok, and /metrics, once the daemon is quiet,
// agrees with the catalog.
func TestServeS3(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" { // CI runs it whatever flags it gets
		t.Skip("end to end: runs the daemon until an S3 backup and check are done")
	}
	testenv.Restic(t)
	srv := testenv.S3(t)
	bucket := srv.Bucket(t, "serve")
	dir := t.TempDir()
	t.Setenv(lab.EnvMinEvery, "1s")
	t.Setenv("S3_SECRET", srv.SecretAccessKey) // the daemon inherits it
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const resticPass = "e2e s3 restic passphrase 5512"
	must(os.WriteFile(filepath.Join(dir, "restic.pass"), []byte(resticPass+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "s3-id"), []byte(srv.AccessKeyID+"\n"), 0o600))
	must(os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("alpha\n"), 0o644))
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	write := func(backupEvery, checkEvery string) {
		t.Helper()
		must(os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(fmt.Sprintf(`name: e2e-s3
repositories:
  offsite:
    url: %s
    password_file: restic.pass
    access_key_id_file: s3-id
    secret_access_key_env: S3_SECRET
    region: %s
    check: {schedule: %q}
backups:
  files:
    provider: restic
    repository: offsite
    source: {paths: [data]}
    schedule: %q
serve:
  listen: %s
  shutdown_timeout: 20s
`, srv.ResticURL(bucket, "lab"), srv.Region, checkEvery, backupEvery, listen)), 0o644))
	}
	write("@every 2s", "@every 3s")
	store := initLab(t, dir)

	d := startServe(t, dir)
	dump := func() string { return d.logText() + "\nS3 server:\n" + srv.Log() }
	e2etest.Eventually(t, longWait, "scheduled backups of files and a check of offsite, on S3", func() bool {
		return len(runs(t, store, "files", catalog.KindBackup, catalog.ResultOK)) >= 2 &&
			len(runs(t, store, "offsite", catalog.KindCheck, catalog.ResultOK)) >= 1
	}, dump)
	// The members are in the bucket, as restic wrote them.
	if snaps, err := os.ReadDir(filepath.Join(srv.Dir, bucket, "lab", "snapshots")); err != nil || len(snaps) < 2 {
		t.Errorf("restic snapshots in the bucket: %d, %v; want the scheduled backups'", len(snaps), err)
	}

	// Quiet (no schedules), then /metrics agrees with the catalog.
	write("", "")
	d.cmd.Process.Signal(syscall.SIGHUP)
	e2etest.Eventually(t, shortWait, "the reload", func() bool { return strings.Contains(d.logText(), "lab file reloaded") }, dump)
	quiet(t, d, store, dump)
	value := scrape(t, "http://"+listen+"/metrics")
	good := runs(t, store, "files", catalog.KindBackup, catalog.ResultOK)
	lb := map[string]string{"target": "files"}
	for name, want := range map[string]float64{
		"homelab_backup_last_success_timestamp_seconds": float64(good[0].End.UnixNano()) / 1e9,
		"homelab_backup_size_bytes":                     float64(good[0].Bytes),
	} {
		if got, ok := value(name, lb); !ok || math.Abs(got-want) > 1e-3 {
			t.Errorf("%s{target=\"files\"} = %v (present %v), catalog says %v", name, got, ok, want)
		}
	}
	for _, kind := range []catalog.Kind{catalog.KindBackup, catalog.KindCheck} {
		target := map[catalog.Kind]string{catalog.KindBackup: "files", catalog.KindCheck: "offsite"}[kind]
		failed := len(runs(t, store, target, kind, catalog.ResultFailed))
		if got, ok := value("homelab_job_failures_total", map[string]string{"target": target, "kind": string(kind)}); !ok || got != float64(failed) {
			t.Errorf("homelab_job_failures_total{target=%q,kind=%q} = %v (present %v), catalog has %d failed runs", target, kind, got, ok, failed)
		}
	}
	if err := d.stop(t); err != nil {
		t.Errorf("homelab serve exited with %v after SIGTERM, want 0\n%s", err, d.logText())
	}
	shutdownClean(t, d)
	for _, secret := range []string{srv.SecretAccessKey, resticPass} {
		if strings.Contains(d.logText(), secret) {
			t.Errorf("a secret appears in the daemon's log")
		}
	}
}
