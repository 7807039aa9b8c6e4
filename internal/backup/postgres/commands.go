package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"homelab/internal/backup"
	"homelab/internal/lab"
)

// RestoreCommands implements backup.HandRestorer: restic dump of the
// snapshot's dump file piped into pg_restore --clean --if-exists
// --single-transaction --exit-on-error into the source database, with the
// connection flags the provider uses, preceded by comments. Unlike an
// in-place Restore this restores over the live database: objects of the
// dump are dropped and recreated, objects created since are kept, and the
// database must exist. The password is referenced, never written:
// PGPASSWORD="$VAR" for password_env, PGPASSWORD="$(cat '<file>')" for
// password_file (a file holding the password itself, which is not the
// format PGPASSFILE expects), nothing otherwise (libpq's PGPASSFILE or
// ~/.pgpass); sslmode as PGSSLMODE.
func (p *Provider) RestoreCommands(spec *lab.Backup, repo backup.ShellRestic, snapshotID string) ([]string, error) {
	s := spec.Source
	if s.Database == "" {
		return nil, errors.New("no source database")
	}
	var env []string
	switch {
	case s.PasswordEnv != "":
		ref, err := backup.ShellVarRef("PGPASSWORD", s.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("password_env: %w", err)
		}
		env = append(env, ref)
	case s.PasswordFile != "":
		env = append(env, `PGPASSWORD="$(cat `+backup.ShellQuote(s.PasswordFile)+`)"`)
	}
	if s.SSLMode != "" {
		env = append(env, "PGSSLMODE="+backup.ShellQuote(s.SSLMode))
	}
	args := conn{src: s}.args(s.Database)
	restore := append(slices.Clone(env), "pg_restore --clean --if-exists --single-transaction --exit-on-error", shellArgs(args))
	// createdb takes the database as its argument, not --dbname.
	createdb := append(slices.Clone(env), "createdb", shellArgs(args[:len(args)-2]), backup.ShellQuote(s.Database))
	return []string{
		fmt.Sprintf("# restore snapshot %s of target %s into database %s, over what is there now:", snapshotID, spec.Name, s.Database),
		"# objects of the dump are dropped and recreated, objects created since are kept; all or nothing (one transaction)",
		"# the database must exist; if it does not, create it first with: " + strings.Join(createdb, " "),
		repo.Command("dump "+backup.ShellQuote(snapshotID)+" "+backup.ShellQuote("/"+dumpFile(s.Database))) + " | " + strings.Join(restore, " "),
	}, nil
}

// shellArgs writes connection flags for sh: flags as they are, their
// values single-quoted.
func shellArgs(args []string) string {
	out := make([]string, 0, len(args))
	value := false
	for _, a := range args {
		if value || !strings.HasPrefix(a, "--") {
			out = append(out, backup.ShellQuote(a))
			value = false
			continue
		}
		out = append(out, a)
		value = a != "--no-password"
	}
	return strings.Join(out, " ")
}

var _ backup.HandRestorer = (*Provider)(nil)
