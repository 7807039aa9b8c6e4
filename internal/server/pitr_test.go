package server

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"homelab/internal/app"
	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/lab"
	"homelab/internal/status"
	"homelab/internal/testenv"
)

// TestRecoverableWindow runs real pgBackRest against a real cluster
// archiving WAL: after a full backup and a WAL switch, the window the
// daemon reads (app.ReadWindows) starts at the backup's start and ends
// when the switched segment reached the repository, at or after the
// switch; the page, /api/v1/status and /metrics show it. Then
// archive_command fails: the next switch's segment waits in
// archive_status, the window's end stays, and a reading made past
// archive_timeout (the clock two minutes on) says ARCHIVING STUCK on the
// page, in the API (unhealthy) and in the metrics.
func TestRecoverableWindow(t *testing.T) {
	testenv.PgBackRest(t)
	ctx := t.Context()
	state := testenv.SearchableDir(t)
	repo := filepath.Join(testenv.OwnedDir(t), "repo")
	pg := testenv.PostgresArchiving(t, pgbackrest.ArchiveCommand(state, &lab.Backup{Name: "db", PgBackRest: &lab.PgBackRest{Stanza: "main"}}))
	l := parseLab(t, fmt.Sprintf(`name: pitr
state_dir: %s
backups:
  db:
    provider: pgbackrest
    pgbackrest:
      stanza: main
      cluster: {data_dir: %s, port: %d, socket_dir: %s, os_user: %s, user: %s}
      repo: {path: %s}
`, state, filepath.Join(pg.Dir, "data"), pg.Port, pg.Dir, testenv.ClusterOSUser(t), pg.User, repo))
	p := &pgbackrest.Provider{StateDir: state}
	tg := backup.Target{Spec: l.Backups["db"], Type: pgbackrest.TypeFull}
	if err := p.Setup(ctx, tg); err != nil {
		t.Fatal(err)
	}
	full, err := p.Backup(ctx, tg, "run-full", nil)
	if err != nil {
		t.Fatal(err)
	}

	// switchWAL writes a row, switches the WAL segment and returns the
	// segment switched and the server's time just before the switch.
	switchWAL := func() (string, time.Time) {
		pg.PSQL(t, "postgres", "create table if not exists marks (at timestamptz); insert into marks values (clock_timestamp())")
		at, err := time.Parse(time.RFC3339Nano, pg.PSQL(t, "postgres", `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`))
		if err != nil {
			t.Fatal(err)
		}
		return pg.PSQL(t, "postgres", "select pg_walfile_name(pg_switch_wal())"), at
	}
	seg, switched := switchWAL()
	testenv.Await(t, "segment "+seg+" archived", func() bool {
		return pg.PSQL(t, "postgres", "select coalesce(last_archived_wal, '') >= '"+seg+"' from pg_stat_archiver") == "t"
	})
	ws := app.ReadWindows(ctx, l, time.Now)
	w := ws["db"]
	if w.Error != "" || !w.From.Equal(full.Time) || w.WAL < seg || w.To.Before(switched.Truncate(time.Second)) || w.Waiting != 0 || w.Stuck() {
		t.Fatalf("window %+v; want from %s (the full backup's start), WAL %s or later at or after %s, nothing waiting", w, full.Time, seg, switched)
	}

	serve := func(ws map[string]status.Window) string {
		srv, err := New(Options{Lab: func() *lab.Lab { return l }, Catalog: openCatalog(t), Now: func() time.Time { return time.Now().UTC() },
			Windows: func() map[string]status.Window { return ws }})
		if err != nil {
			t.Fatal(err)
		}
		return newTestServer(t, srv)
	}
	url := serve(ws)
	_, page := get(t, url+"/")
	if want := "Recoverable window:</b> from " + full.Time.UTC().Format("2006-01-02 15:04:05") + " to " + w.To.UTC().Format("2006-01-02 15:04:05"); !strings.Contains(string(page), want) {
		t.Errorf("page has no %q:\n%s", want, page)
	}
	checkMetrics(t, url, map[string]float64{
		"homelab_pitr_window_start_timestamp_seconds": float64(full.Time.Unix()),
		"homelab_pitr_window_end_timestamp_seconds":   float64(w.To.Unix()),
		"homelab_pitr_wal_waiting_segments":           0,
		"homelab_pitr_archiving_stuck":                0,
	})
	api := apiWindow(t, url)
	if !api.Healthy || api.Window.WAL != w.WAL || !api.Window.From.Equal(full.Time) || !api.Window.To.Equal(w.To) || api.Window.Stuck {
		t.Errorf("api status %+v, want healthy with the window %+v", api, w)
	}

	// archive_command fails from now on: the next segment waits.
	pg.PSQL(t, "postgres", "alter system set archive_command = 'false'")
	pg.PSQL(t, "postgres", "select pg_reload_conf()")
	testenv.Await(t, "archive_command reloaded", func() bool {
		return pg.PSQL(t, "postgres", "show archive_command") == "false"
	})
	stuck, _ := switchWAL()
	testenv.Await(t, "archiving of "+stuck+" failed", func() bool {
		return pg.PSQL(t, "postgres", "select coalesce(last_failed_wal, '') = '"+stuck+"' from pg_stat_archiver") == "t"
	})
	later := func() time.Time { return time.Now().Add(2 * time.Minute) } // past archive_timeout (60s)
	ws = app.ReadWindows(ctx, l, later)
	w2 := ws["db"]
	if w2.Error != "" || !w2.To.Equal(w.To) || w2.Waiting < 1 || w2.Oldest != stuck || !w2.WaitingSince.After(w.To) || !w2.Stuck() {
		t.Fatalf("window with archiving broken %+v; want the end %s kept, %s waiting since after it, stuck", w2, w.To, stuck)
	}
	url = serve(ws)
	if _, page := get(t, url+"/"); !strings.Contains(string(page), "ARCHIVING STUCK: 1 WAL segments waiting, "+stuck) || !strings.Contains(string(page), "1 archiving stuck") {
		t.Errorf("page does not say archiving is stuck:\n%s", page)
	}
	checkMetrics(t, url, map[string]float64{
		"homelab_pitr_window_end_timestamp_seconds": float64(w.To.Unix()),
		"homelab_pitr_wal_waiting_segments":         1,
		"homelab_pitr_archiving_stuck":              1,
	})
	if api := apiWindow(t, url); api.Healthy || !api.Window.Stuck || api.Window.Oldest != stuck || api.Window.LagSeconds <= 0 {
		t.Errorf("api status %+v, want unhealthy, stuck on %s, a lag", api, stuck)
	}
}

// checkMetrics checks the db series of each named gauge of /metrics.
func checkMetrics(t *testing.T, url string, want map[string]float64) {
	t.Helper()
	fams := scrape(t, url)
	for name, v := range want {
		if got, ok := series(t, fams, name, dto.MetricType_GAUGE)["db"]; !ok || got != v {
			t.Errorf("%s{target=\"db\"} = %v (present %v), want %v", name, got, ok, v)
		}
	}
}

// apiWindow is /api/v1/status's verdict and its one target's window.
type apiTargetWindow struct {
	Healthy bool
	Window  struct {
		From, To   time.Time
		WAL        string
		Oldest     string `json:"oldest_waiting"`
		Stuck      bool
		LagSeconds float64 `json:"lag_seconds"`
	}
}

func apiWindow(t *testing.T, url string) apiTargetWindow {
	t.Helper()
	_, body := get(t, url+"/api/v1/status")
	var rep struct {
		Healthy bool
		Targets []struct {
			Window json.RawMessage
		}
	}
	if err := json.Unmarshal(body, &rep); err != nil || len(rep.Targets) != 1 {
		t.Fatalf("api status %s: %v", body, err)
	}
	out := apiTargetWindow{Healthy: rep.Healthy}
	if err := json.Unmarshal(rep.Targets[0].Window, &out.Window); err != nil {
		t.Fatalf("window %s: %v", rep.Targets[0].Window, err)
	}
	return out
}
