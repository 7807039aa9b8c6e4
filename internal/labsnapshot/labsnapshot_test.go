package labsnapshot

import (
	"slices"
	"strings"
	"testing"

	"homelab/internal/lab"
)

func TestStopOrder(t *testing.T) {
	l := &lab.Lab{Backups: map[string]*lab.Backup{
		"config": {Stop: []string{"web", "worker"}},
		"db":     {Stop: []string{"worker", "db"}},
		"media":  {},
	}}
	for _, tc := range []struct {
		targets, want []string
	}{
		{[]string{"config", "db", "media"}, []string{"web", "worker", "db"}},
		{[]string{"db", "config"}, []string{"worker", "db", "web"}},
		{[]string{"media"}, nil},
	} {
		if got := StopOrder(l, tc.targets); !slices.Equal(got, tc.want) {
			t.Errorf("StopOrder(%v) = %v, want %v (each service once, first stop list first)", tc.targets, got, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"before": true, "pre-restore-before-20261123T101500Z": true, "v1.2_x": true,
		"": false, "-x": false, ".x": false, "a b": false, "a/b": false, string(make([]byte, 101)): false,
	} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// TestConflicts: a postgres target whose server is a service (its
// health probe's host:port) that another target's stop list stops is a
// conflict, warned of by the create's params and the restore's plan; a
// server stopped only by its own target's stop list, or by no stop list,
// or at another address, is not.
func TestConflicts(t *testing.T) {
	m, _, _ := newTestManager(t, `name: t
state_dir: state
repositories:
  local: {url: ./repo, password_file: ./pass}
services:
  db:
    runtime: {exec: {start: "true", stop: "true", status: "true"}}
    health: {postgres: {host: localhost, port: 5433, database: postgres, user: u}}
  cache:
    runtime: {exec: {start: "true", stop: "true", status: "true"}}
    health: {tcp: {address: "127.0.0.1:6379"}}
  app:
    runtime: {exec: {start: "true", stop: "true", status: "true"}}
    health: {tcp: {address: "127.0.0.1:5433"}}
backups:
  files:
    provider: restic
    repository: local
    source: {paths: [./data]}
    stop: [app, db]
  shop:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: 5433, database: shop, user: u, password_env: PGPASSWORD}
  other:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: 5434, database: other, user: u, password_env: PGPASSWORD}
    stop: [cache]
`)
	got := Conflicts(m.Lab, []string{"files", "shop", "other"})
	want := []Conflict{
		{Target: "shop", Address: "127.0.0.1:5433", Service: "app", StoppedBy: "files"},
		{Target: "shop", Address: "127.0.0.1:5433", Service: "db", StoppedBy: "files"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Conflicts = %+v\nwant %+v", got, want)
	}
	if got := Conflicts(m.Lab, []string{"shop", "other"}); len(got) != 0 {
		t.Errorf("Conflicts without files = %+v, want none", got)
	}
	p, err := m.PlanCreate(t.Context(), "new", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 2 || !strings.Contains(p.Warnings[1], "target shop dumps PostgreSQL at 127.0.0.1:5433, which is service db, and the stop list of target files stops db") {
		t.Errorf("create warnings %q", p.Warnings)
	}
	if p, err := m.PlanCreate(t.Context(), "new", "", []string{"shop", "other"}); err != nil || len(p.Warnings) != 0 {
		t.Errorf("create of shop and other: warnings %q, %v; want none", p.Warnings, err)
	}
}

// TestCreateLeavesOutPgBackRest: a pgbackrest target has no in-place
// restore, so a lab snapshot of every target leaves it out with a
// warning, and one that names it is refused: a lab snapshot holds only
// what its restore can put back.
func TestCreateLeavesOutPgBackRest(t *testing.T) {
	m, _, _ := newTestManager(t, `name: t
state_dir: state
repositories:
  local: {url: ./repo, password_file: ./pass}
backups:
  files:
    provider: restic
    repository: local
    source: {paths: [./data]}
  main-db:
    provider: pgbackrest
    pgbackrest:
      stanza: main
      cluster: {data_dir: /var/lib/postgresql/15/main}
      repo: {path: /srv/pgbackrest}
    drill: {checks: [{sql: "select true"}]}
`)
	p, err := m.PlanCreate(t.Context(), "new", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Targets, []string{"files"}) || len(p.Warnings) != 1 ||
		!strings.Contains(p.Warnings[0], "target main-db (pgbackrest) is left out: homelab cannot restore it in place") {
		t.Errorf("create of every target: targets %v, warnings %q", p.Targets, p.Warnings)
	}
	if _, err := m.PlanCreate(t.Context(), "new", "", []string{"files", "main-db"}); err == nil ||
		!strings.Contains(err.Error(), "target main-db (pgbackrest): homelab cannot restore it in place") {
		t.Errorf("create naming main-db: %v, want a refusal", err)
	}
}
