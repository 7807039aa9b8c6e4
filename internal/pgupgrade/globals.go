package pgupgrade

import (
	"context"
	"os"
	"regexp"
	"strings"

	"homelab/internal/execx"
)

// DumpGlobals writes what per-database dumps lack of the running cluster
// c, its roles (with their password hashes), their memberships and
// settings, and its tablespaces (`pg_dumpall --globals-only`), to file,
// made 0600 and owned by Owner first. The file is a secret: the dump goes
// to it only, never to the logs or an error.
func (t *Tools) DumpGlobals(ctx context.Context, c Cluster, file string) error {
	args, err := t.connArgs(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := t.chown(file); err != nil {
		return err
	}
	ctx, cancel := t.bounded(ctx)
	defer cancel()
	return execx.Run(ctx, execx.Cmd{Name: c.tool("pg_dumpall"), Args: append(args, "--globals-only", "-f", file), Dir: "/",
		Credential: t.Cred, Env: []string{"LC_ALL=C.UTF-8", "PGTZ=UTC"}})
}

// RestoreGlobals runs the file of DumpGlobals in the running cluster c
// (psql, ON_ERROR_STOP, the file on stdin): the roles are made again,
// but the bootstrap superuser (User), whom initdb made (its ALTER ROLE
// still runs).
func (t *Tools) RestoreGlobals(ctx context.Context, c Cluster, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	self := regexp.MustCompile(`^CREATE ROLE ` + regexp.QuoteMeta(quoteIdent(t.User)) + `;$`)
	var sql []string
	for _, l := range strings.Split(string(b), "\n") {
		if !self.MatchString(l) {
			sql = append(sql, l)
		}
	}
	args, err := t.connArgs(c)
	if err != nil {
		return err
	}
	ctx, cancel := t.bounded(ctx)
	defer cancel()
	return t.run(ctx, "/", c.tool("psql"), append(args, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"), strings.Join(sql, "\n"), nil)
}

// quoteIdent is name as pg_dumpall writes an identifier: bare when it is
// lower case letters, digits and underscores, else double-quoted.
func quoteIdent(name string) string {
	if regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
