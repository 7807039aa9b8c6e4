package health

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"homelab/internal/execx"
	"homelab/internal/lab"
)

// probePostgres connects and runs p.Query, which must return true or 1.
// The password (or the whole connection string) is read at every probe
// from the environment or a file, set on the connection's config and never
// put in the detail: every error is redacted.
func probePostgres(ctx context.Context, p *lab.PostgresProbe, o Options) (string, error) {
	cfg, secrets, err := pgConfig(p, o)
	if err != nil {
		return "", err
	}
	cfg.RuntimeParams["application_name"] = "homelab-health"
	start := time.Now()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", pgError(err, secrets)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	var v any
	switch err := conn.QueryRow(ctx, p.Query).Scan(&v); {
	case errors.Is(err, pgx.ErrNoRows):
		return "", unhealthy("query returned no rows")
	case err != nil:
		return "", pgError(err, secrets)
	}
	if !truthy(v) {
		return "", unhealthy(execx.Redact(fmt.Sprintf("query returned %v, want true or 1", v), secrets...))
	}
	return fmt.Sprintf("query returned %v in %s", v, ms(time.Since(start))), nil
}

// pgConfig builds the connection config of p and lists the secrets in it.
func pgConfig(p *lab.PostgresProbe, o Options) (*pgx.ConnConfig, []string, error) {
	if s := p.DSNSecret(); s.IsSet() {
		from := s.Source()
		dsn, err := s.ResolveWith(o.lookupEnv)
		if err != nil {
			return nil, nil, unhealthy(err.Error())
		}
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			// pgx masks the password, but the string may hold it elsewhere.
			return nil, nil, unhealthy("bad connection string in " + from + ": " + execx.Redact(err.Error(), dsn))
		}
		return cfg, []string{dsn, cfg.Password}, nil
	}
	// Keyword/value settings (quoted), so that sslmode is applied as libpq
	// does; unset ones come from libpq's PG* environment, as for pg_dump.
	var kv []string
	for _, s := range []struct{ k, v string }{
		{"host", p.Host}, {"port", portString(p.Port)}, {"dbname", p.Database}, {"user", p.User}, {"sslmode", p.SSLMode},
	} {
		if s.v != "" {
			kv = append(kv, s.k+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s.v)+"'")
		}
	}
	cfg, err := pgx.ParseConfig(strings.Join(kv, " "))
	if err != nil {
		return nil, nil, err
	}
	var secrets []string
	if s := p.PasswordSecret(); s.IsSet() {
		pw, err := s.ResolveWith(o.lookupEnv)
		if err != nil {
			return nil, nil, unhealthy(err.Error())
		}
		cfg.Password = pw
	}
	if cfg.Password != "" { // also one from PGPASSWORD
		secrets = append(secrets, cfg.Password)
	}
	return cfg, secrets, nil
}

func portString(port int) string {
	if port == 0 {
		return ""
	}
	return strconv.Itoa(port)
}

// pgError describes a connection or query error: the server's message
// when there is one ("password authentication failed for user "app""),
// else the network cause; redacted either way.
func pgError(err error, secrets []string) error {
	var pe *pgconn.PgError
	msg := describe(err)
	if errors.As(err, &pe) {
		msg = fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	return unhealthy(execx.Redact(msg, secrets...))
}

// truthy reports whether a query's value is true or the number 1.
func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case int16:
		return v == 1
	case int32:
		return v == 1
	case int64:
		return v == 1
	case int8:
		return v == 1
	case int:
		return v == 1
	}
	return false
}
