package postgres_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"homelab/internal/backup"
	"homelab/internal/backup/postgres"
	"homelab/internal/backup/providertest"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// shared is the one PostgreSQL cluster of the suite's cases, started on
// first use and stopped by TestMain.
var shared struct {
	once sync.Once
	pg   *testenv.PG
	stop func()
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// sharedCluster returns the shared cluster, starting it on first use.
func sharedCluster(t *testing.T) *testenv.PG {
	t.Helper()
	bin := testenv.PGBinDir(t)
	if _, err := exec.LookPath("pg_dump"); err != nil {
		testenv.Missing(t, "pg_dump not found")
	}
	shared.once.Do(func() { shared.pg, shared.stop, shared.err = testenv.StartPostgres(bin) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.pg
}

// TestProvider runs the provider conformance suite, each case on a
// database of its own in the shared cluster.
func TestProvider(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		Kinds:    []providertest.RepoKind{providertest.Local, providertest.S3},
		Commands: []string{"pg_dump", "pg_restore"},
		New: func(t *testing.T, _ string) (backup.Provider, providertest.Source) {
			return &postgres.Provider{}, newSource(t, sharedCluster(t))
		},
	})
}

var sources atomic.Int64

// source is a database of the shared cluster with a table items, reached
// as the superuser with the password in an environment variable.
type source struct {
	pg      *testenv.PG
	db      string
	changes int
	copies  int
}

const pwEnv = "HOMELAB_PROVIDERTEST_PGPASSWORD"

func newSource(t *testing.T, pg *testenv.PG) *source {
	t.Helper()
	s := &source{pg: pg, db: fmt.Sprintf("pt%d", sources.Add(1))}
	t.Setenv(pwEnv, pg.Password)
	pg.PSQL(t, "postgres", "create database "+s.db)
	t.Cleanup(func() {
		dbs := append(s.Leftovers(t), s.db)
		for i := 1; i <= s.copies; i++ {
			dbs = append(dbs, fmt.Sprintf("%s_r%d", s.db, i))
		}
		for _, db := range dbs {
			pg.PSQL(t, "postgres", fmt.Sprintf("drop database if exists %s with (force)", db))
		}
	})
	pg.PSQL(t, s.db, `create table items (id serial primary key, name text not null, price numeric(10,2), added date);
insert into items(name, price, added) select 'item ' || g, g * 1.5, date '2026-01-01' + g from generate_series(1, 500) g;
create view expensive as select * from items where price > 100`)
	return s
}

// Spec is the target of the suite's source: the one place these tests
// build a lab.Backup.
func (s *source) Spec() *lab.Backup {
	return &lab.Backup{
		Name:     s.db,
		Provider: lab.ProviderPostgres,
		Source:   lab.Source{Host: s.pg.Host, Port: s.pg.Port, Database: s.db, User: s.pg.User, PasswordEnv: pwEnv},
		Drill:    lab.Drill{Checks: []lab.Check{{SQL: "select count(*) >= 500 from items"}, {SQL: "select count(*) > 0 from expensive"}}},
	}
}

func (s *source) State(t *testing.T) string { return s.fingerprint(t, s.db) }

// fingerprint returns db's tables and views, and the count and md5 of the
// ordered rows of items.
func (s *source) fingerprint(t *testing.T, db string) string {
	t.Helper()
	return s.pg.PSQL(t, db, `select (select string_agg(table_name || ' ' || table_type, ', ' order by table_name) from information_schema.tables where table_schema = 'public')
  || E'\n' || (select count(*) || ' ' || md5(string_agg(i::text, '|' order by i.id)) from items i)`)
}

// Change updates, deletes and adds rows and adds a table.
func (s *source) Change(t *testing.T) {
	t.Helper()
	s.changes++
	s.pg.PSQL(t, s.db, fmt.Sprintf(`update items set price = price + %[1]d where id %% 3 = 0;
delete from items where id %% 7 = %[1]d %% 7;
insert into items(name, price, added) values ('added %[1]d', %[1]d, date '2026-06-01');
create table added_%[1]d (x int)`, s.changes))
}

func (s *source) Destination(t *testing.T) (backup.Destination, func(t *testing.T) string) {
	s.copies++
	db := fmt.Sprintf("%s_r%d", s.db, s.copies)
	return backup.Destination{Database: db}, func(t *testing.T) string { return s.fingerprint(t, db) }
}

func (s *source) Break(t *testing.T) {
	s.pg.PSQL(t, "postgres", fmt.Sprintf("drop database %s with (force)", s.db))
}

// Stall locks items in another session until t ends: pg_dump waits for
// its lock on the table; the backup is underway at restic's first status
// line.
func (s *source) Stall(t *testing.T) <-chan struct{} {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.pg.DSN(s.db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "lock table items in access exclusive mode"); err != nil {
		t.Fatal(err)
	}
	return nil
}

func (s *source) FailingCheck() lab.Check { return lab.Check{SQL: "select count(*) < 0 from items"} }

// Leftovers are the drill's throwaway databases of the target and the
// staging or moved-aside databases of a replacing restore.
func (s *source) Leftovers(t *testing.T) []string {
	t.Helper()
	out := s.pg.PSQL(t, "postgres", fmt.Sprintf(`select string_agg(datname, ' ' order by datname) from pg_database
where datname like 'homelab\_drill\_%s\_%%' or datname like '%s\_homelab\_%%'`, s.db, s.db))
	return strings.Fields(out)
}

func (s *source) Secrets() []string { return []string{s.pg.Password} }
