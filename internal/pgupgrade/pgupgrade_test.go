package pgupgrade_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"homelab/internal/pgupgrade"
	"homelab/internal/testenv"
)

// pgctl runs a wrapper tool of bin and fails the test on error.
func pgctl(t *testing.T, bin, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// psqlOf runs sql in database postgres of a running cluster with tools,
// failing the test on error.
func psqlOf(t *testing.T, tools *pgupgrade.Tools) func(c pgupgrade.Cluster, sql string) string {
	return func(c pgupgrade.Cluster, sql string) string {
		t.Helper()
		out, err := tools.PSQL(context.Background(), c, "postgres", sql)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// TestUpgradeRealCluster upgrades a real PostgreSQL 15 cluster with data
// (pgbench, an ICU collation column, citext) to 17 with the package's
// steps and compares the data.
func TestUpgradeRealCluster(t *testing.T) {
	bins := testenv.PGMajors(t)
	dir := testenv.OwnedDir(t)
	port := testenv.FreePort(t)
	old := pgupgrade.Cluster{Major: "15", Bin: bins.Old, Data: filepath.Join(dir, "15")}
	new := pgupgrade.Cluster{Major: "17", Bin: bins.New, Data: filepath.Join(dir, "17")}
	pgctl(t, old.Bin, "initdb", "-D", old.Data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--data-checksums", "--no-sync")
	start := func(c pgupgrade.Cluster) {
		pgctl(t, c.Bin, "pg_ctl", "-D", c.Data, "-o", "-c listen_addresses='' -c port="+strconv.Itoa(port)+" -c unix_socket_directories="+dir, "-l", filepath.Join(dir, "log"+c.Major), "-w", "start")
	}
	stop := func(c pgupgrade.Cluster) { pgctl(t, c.Bin, "pg_ctl", "-D", c.Data, "-m", "fast", "-w", "stop") }
	start(old)
	t.Cleanup(func() {
		for _, c := range []pgupgrade.Cluster{old, new} {
			exec.Command(filepath.Join(c.Bin, "pg_ctl"), "-D", c.Data, "-m", "immediate", "-w", "stop").Run()
		}
	})
	owner, err := pgupgrade.Owner(old.Data)
	if err != nil {
		t.Fatal(err)
	}
	tools := &pgupgrade.Tools{User: "postgres", Owner: owner, Note: func(l string) { t.Log(l) }}
	ctx := context.Background()
	psql := psqlOf(t, tools)
	pgctl(t, old.Bin, "pgbench", "-i", "-s", "1", "-q", "-h", dir, "-p", strconv.Itoa(port), "-U", "postgres", "postgres")
	psql(old, `CREATE EXTENSION citext; CREATE TABLE words (w text COLLATE "de-x-icu", c citext); INSERT INTO words SELECT 'wört' || i, 'Ä' || i FROM generate_series(1, 500) i`)
	fingerprint := func(c pgupgrade.Cluster) string {
		t.Helper()
		var b strings.Builder
		for _, tbl := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "words"} {
			b.WriteString(psql(c, "SELECT '"+tbl+"', count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM "+tbl+" t") + "\n")
		}
		return b.String()
	}
	before := fingerprint(old)

	var s pgupgrade.Settings
	s, err = tools.ReadSettings(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if s.Encoding != "UTF8" || s.Collate != "C.UTF-8" || !s.Checksums || s.Provider != "libc" {
		t.Fatalf("settings: %+v", s)
	}
	exts, err := tools.Extensions(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(exts, func(e pgupgrade.Extension) bool { return e.Name == "citext" && e.Database == "postgres" }) {
		t.Fatalf("extensions: %+v", exts)
	}
	if err := tools.Initdb(ctx, new, s); err != nil {
		t.Fatal(err)
	}
	avail, err := tools.Available(ctx, new)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(avail, "citext") || slices.Contains(avail, "adminpack") {
		t.Fatalf("PostgreSQL 17 available extensions: %v", avail)
	}
	work := filepath.Join(dir, "work")
	if err := tools.MkdirOwned(work); err != nil {
		t.Fatal(err)
	}
	os.Chmod(work, 0o755)
	up := pgupgrade.Upgrade{Old: old, New: new, Mode: pgupgrade.ModeCopy, Port: testenv.FreePort(t), WorkDir: work}
	if err := tools.Check(ctx, up); err != nil {
		t.Fatal(err)
	}
	if err := tools.Run(ctx, up); err == nil {
		t.Fatal("pg_upgrade ran while the old cluster runs")
	}
	stop(old)
	if err := tools.Run(ctx, up); err != nil {
		t.Fatal(err)
	}
	if _, err := tools.CarryConfig(ctx, old, new); err != nil {
		t.Fatal(err)
	}
	start(new)
	if v := psql(new, "SHOW server_version_num"); !strings.HasPrefix(v, "17") {
		t.Fatalf("server_version_num %s", v)
	}
	if err := tools.Analyze(ctx, new); err != nil {
		t.Fatal(err)
	}
	if _, err := tools.UpdateExtensions(ctx, new, work); err != nil {
		t.Fatal(err)
	}
	if after := fingerprint(new); after != before {
		t.Fatalf("data changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	if m, _ := pgupgrade.Major(old.Data); m != "15" {
		t.Fatalf("old cluster PG_VERSION %q", m)
	}
}
