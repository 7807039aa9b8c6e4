package pgbackrest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/drillapp/drillapptest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
)

// TestAppDrill: drill.app starts the testapp against the restored
// throwaway cluster (HOMELAB_DRILL_PG*: 127.0.0.1, its port, the target's
// database, cluster.user and a password made for the drill); its probe
// passes while the check table has rows. An incr backup taken after the
// table was emptied fails the drill on the app's probe (ErrDrillFailed:
// exit 1), recorded with the app's words; the app and the instance are
// gone after both.
func TestAppDrill(t *testing.T) {
	e := newEnv(t, "", true)
	ctx := context.Background()
	e.pg.PSQL(t, "postgres", "create table drill_check (n int); insert into drill_check values (1)")
	// A role of the restored cluster other than the drill's: its password
	// works on the live server but not over TCP on the drill's instance.
	e.pg.PSQL(t, "postgres", "create role other login password 'other-pw'")
	app := drillapptest.New(t, "drill_check")
	app.Start = `PGPASSWORD=other-pw PGCONNECT_TIMEOUT=10 psql -X -h "$HOMELAB_DRILL_PGHOST" -p "$HOMELAB_DRILL_PGPORT" -U other -d postgres -Atc 'select 1' > other.out 2>&1; echo $? > other.rc; ` + app.Start
	spec := e.t.Spec
	spec.Drill = lab.Drill{Timeout: 10 * time.Minute, App: app.DrillApp,
		Checks: []lab.Check{{SQL: "select count(*) = 1 from drill_check"}}}
	m, store := e.manager(t)

	if rep := m.Backup(ctx, "db"); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	out := m.Verify(ctx, "db")
	if out.Err != nil || out.Drill.Result != catalog.ResultOK || len(out.Report.Checks) != 3 {
		t.Fatalf("app drill: %v %+v\n%s", out.Err, out.Drill, out.Report.Output())
	}
	if !strings.Contains(out.Drill.Output, "ok   app: http probe passed") {
		t.Errorf("recorded output:\n%s", out.Drill.Output)
	}
	app.Gone(t)
	assertGone(t, out.Report.Place)
	rc, _ := os.ReadFile(filepath.Join(app.Dir, "other.rc"))
	other, _ := os.ReadFile(filepath.Join(app.Dir, "other.out"))
	if strings.TrimSpace(string(rc)) != "2" || !strings.Contains(string(other), `no pg_hba.conf entry for host "127.0.0.1", user "other"`) {
		t.Errorf("role other over TCP: exit %q: %s", rc, other)
	}

	e.pg.PSQL(t, "postgres", "delete from drill_check")
	spec.Drill.Checks = nil // the app alone finds it
	if rep := m.Backup(ctx, "db"); rep.Err != nil || !strings.HasSuffix(rep.Run.SnapshotID, "I") {
		t.Fatalf("incr backup: %v %+v", rep.Err, rep.Run)
	}
	out = m.Verify(ctx, "db")
	if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed {
		t.Fatalf("app drill on emptied data: %v %+v\n%s", out.Err, out.Drill, out.Report.Output())
	}
	for _, want := range []string{`check "app": the http probe did not pass within 1m0s: HTTP 503`, "testapp: unhealthy: table drill_check is empty"} {
		if !strings.Contains(out.Drill.Error, want) {
			t.Errorf("recorded error %q lacks %q", out.Drill.Error, want)
		}
	}
	t.Logf("recorded error: %s", out.Drill.Error)
	app.Gone(t)
	assertGone(t, out.Report.Place)
	drills, err := store.Drills(ctx, catalog.DrillFilter{Target: "db"})
	if err != nil || len(drills) != 2 || drills[0].Result != catalog.ResultFailed || drills[1].Result != catalog.ResultOK {
		t.Fatalf("recorded drills %+v %v", drills, err)
	}
}
