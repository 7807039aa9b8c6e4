package health

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// env is an Options.LookupEnv over a fixed environment.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	const wrong = "wrong-pw-7f3a91"
	// Keep libpq's environment from filling in what a probe leaves out.
	for _, k := range []string{"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGPASSFILE", "PGSSLMODE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	vars := map[string]string{
		"PG_GOOD":      pg.Password,
		"PG_WRONG":     wrong,
		"PG_DSN":       pg.DSN("postgres"),
		"PG_DSN_WRONG": strings.Replace(pg.DSN("postgres"), pg.Password, wrong, 1),
	}
	opts := Options{LookupEnv: env(vars)}
	probe := func(p lab.PostgresProbe) *lab.Health {
		if p.DSNEnv == "" && p.DSNFile == "" {
			p.Host, p.Port, p.User = pg.Host, pg.Port, pg.User
			if p.Database == "" {
				p.Database = "postgres"
			}
		}
		if p.Query == "" {
			p.Query = lab.DefaultProbeQuery
		}
		if p.Timeout == 0 {
			p.Timeout = 10 * time.Second
		}
		return &lab.Health{Postgres: &p}
	}
	runConformance(t, conformance{
		kind: lab.ProbePostgres,
		opts: opts,
		healthy: func(t *testing.T) *lab.Health {
			return probe(lab.PostgresProbe{PasswordEnv: "PG_GOOD"})
		},
		unhealthy: func(t *testing.T) (*lab.Health, string) {
			return probe(lab.PostgresProbe{PasswordEnv: "PG_WRONG"}), `password authentication failed for user "postgres"`
		},
		hang: func(t *testing.T, timeout time.Duration) (*lab.Health, Options) {
			// A server that accepts the connection and never answers.
			host, port, _ := net.SplitHostPort(listen(t))
			n, _ := strconv.Atoi(port)
			return &lab.Health{Postgres: &lab.PostgresProbe{Host: host, Port: n, Database: "postgres", User: "postgres",
				PasswordEnv: "PG_GOOD", Query: "select 1", Timeout: timeout}}, opts
		},
		secrets: []string{pg.Password, wrong},
	})

	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	goodFile := write("good.pass", pg.Password+"\n")
	wrongFile := write("wrong.pass", wrong+"\n")
	dsnFile := write("pg.dsn", pg.DSN("postgres")+"\n")
	tests := []struct {
		name    string
		probe   lab.PostgresProbe
		healthy bool
		detail  string
	}{
		{"password_env", lab.PostgresProbe{PasswordEnv: "PG_GOOD"}, true, "query returned 1 in "},
		{"password_file", lab.PostgresProbe{PasswordFile: goodFile}, true, "query returned 1"},
		{"wrong password_file", lab.PostgresProbe{PasswordFile: wrongFile}, false, "(SQLSTATE 28P01)"},
		{"dsn_env", lab.PostgresProbe{DSNEnv: "PG_DSN"}, true, "query returned 1"},
		{"dsn_file", lab.PostgresProbe{DSNFile: dsnFile}, true, "query returned 1"},
		{"dsn_env with a wrong password", lab.PostgresProbe{DSNEnv: "PG_DSN_WRONG"}, false, "password authentication failed"},
		{"unset password_env", lab.PostgresProbe{PasswordEnv: "PG_NOPE"}, false, "password_env PG_NOPE is not set"},
		{"unset dsn_env", lab.PostgresProbe{DSNEnv: "PG_NOPE"}, false, "dsn_env PG_NOPE is not set"},
		{"missing password_file", lab.PostgresProbe{PasswordFile: filepath.Join(dir, "gone")}, false, "password_file: open "},
		{"query true", lab.PostgresProbe{PasswordEnv: "PG_GOOD", Query: "select count(*) > 0 from pg_database"}, true, "query returned true"},
		{"query false", lab.PostgresProbe{PasswordEnv: "PG_GOOD", Query: "select pg_is_in_recovery()"}, false, "query returned false, want true or 1"},
		{"query 2", lab.PostgresProbe{PasswordEnv: "PG_GOOD", Query: "select 2"}, false, "query returned 2, want true or 1"},
		{"query without rows", lab.PostgresProbe{PasswordEnv: "PG_GOOD", Query: "select 1 where false"}, false, "query returned no rows"},
		{"bad query", lab.PostgresProbe{PasswordEnv: "PG_GOOD", Query: "select nope"}, false, `column "nope" does not exist (SQLSTATE 42703)`},
		{"no such database", lab.PostgresProbe{PasswordEnv: "PG_GOOD", Database: "nope"}, false, `database "nope" does not exist`},
		{"closed port", lab.PostgresProbe{Host: "127.0.0.1", Port: mustPort(t, closedAddr(t)), Database: "x", PasswordEnv: "PG_GOOD"}, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := probe(tt.probe)
			if tt.probe.Host != "" {
				h.Postgres.Host, h.Postgres.Port = tt.probe.Host, tt.probe.Port
			}
			r := Probe(t.Context(), service("db", h), opts)
			t.Logf("detail %q", r.Detail)
			if r.Healthy != tt.healthy || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("healthy=%v detail=%q, want %v and %q", r.Healthy, r.Detail, tt.healthy, tt.detail)
			}
			if strings.Contains(r.Detail, pg.Password) || strings.Contains(r.Detail, wrong) {
				t.Errorf("detail %q holds a password", r.Detail)
			}
		})
	}
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
