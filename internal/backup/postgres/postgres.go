package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"homelab/internal/backup"
	"homelab/internal/execx"
	"homelab/internal/lab"
	"homelab/internal/restic"
)

// Provider backs up PostgreSQL databases.
type Provider struct {
	backup.ResticSnapshots
	// Now names staging and old databases; default time.Now.
	Now func() time.Time
	// StateDir is the lab's state directory: it tells the throwaway
	// drills' directories of this lab from another lab's on the same
	// host (backup.DrillDirPrefix).
	StateDir string
}

var _ backup.Provider = (*Provider)(nil)

// conn is how to reach the server of a target.
type conn struct {
	src      lab.Source
	password string // empty: libpq defaults (PGPASSFILE, ~/.pgpass)
}

func connOf(s lab.Source) (conn, error) {
	c := conn{src: s}
	v, err := s.PasswordSecret().Resolve()
	c.password = v
	return c, err
}

// env is the libpq environment of pg_dump/pg_restore: the password and
// connection defaults, never argv.
func (c conn) env() []string {
	var env []string
	if c.password != "" {
		env = append(env, "PGPASSWORD="+c.password)
	} else if v, ok := os.LookupEnv("PGPASSFILE"); ok {
		env = append(env, "PGPASSFILE="+v)
	}
	if c.src.SSLMode != "" {
		env = append(env, "PGSSLMODE="+c.src.SSLMode)
	}
	return env
}

// args are the connection flags for database db (no secrets).
func (c conn) args(db string) []string {
	var a []string
	if c.src.Host != "" {
		a = append(a, "--host", c.src.Host)
	}
	if c.src.Port != 0 {
		a = append(a, "--port", strconv.Itoa(c.src.Port))
	}
	if c.src.User != "" {
		a = append(a, "--username", c.src.User)
	}
	return append(a, "--no-password", "--dbname", db)
}

// connect opens a pgx connection to db. The password is set on the config,
// never in a connection string that could end up in an error.
func (c conn) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	if c.src.Host != "" {
		cfg.Host = c.src.Host
	}
	if c.src.Port != 0 {
		cfg.Port = uint16(c.src.Port)
	}
	if c.src.User != "" {
		cfg.User = c.src.User
	}
	if c.password != "" {
		cfg.Password = c.password
	}
	cfg.Database = db
	cfg.RuntimeParams["application_name"] = "homelab"
	pc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %s", db, execx.Redact(err.Error(), c.password))
	}
	return pc, nil
}

func (c conn) secrets() []string { return []string{c.password} }

// Connect opens a pgx connection to database db on the server of source s
// (a postgres target's source: host, port, user), with s's password from
// password_env or password_file, else libpq's defaults (PGPASSWORD,
// PGPASSFILE, ~/.pgpass, read by pgx). The password is set on the config,
// never in a connection string, and is redacted from every error.
func Connect(ctx context.Context, s lab.Source, db string) (*pgx.Conn, error) {
	c, err := connOf(s)
	if err != nil {
		return nil, err
	}
	return c.connect(ctx, db)
}

// dumpFile is the name of the dump inside the snapshot.
func dumpFile(db string) string { return db + ".dump" }

// Backup streams pg_dump -Fc of the target's database into restic.
func (p *Provider) Backup(ctx context.Context, t backup.Target, runID string, progress backup.ProgressFunc) (backup.Snapshot, error) {
	c, err := connOf(t.Spec.Source)
	if err != nil {
		return backup.Snapshot{}, err
	}
	db := t.Spec.Source.Database
	cmd := append([]string{"pg_dump", "--format=custom"}, c.args(db)...)
	sum, err := t.Repo.Backup(ctx, resticBackup(t, runID, db, cmd, c.env()), progress)
	snap := backup.Snapshot{ID: sum.SnapshotID, Time: sum.BackupStart, Target: t.Name(), RunID: runID,
		Paths: []string{"/" + dumpFile(db)}, Bytes: sum.TotalBytesProcessed, Files: sum.TotalFilesProcessed, Added: sum.DataAdded}
	if len(snap.ID) >= 8 {
		snap.ShortID = snap.ID[:8]
	}
	if err != nil {
		return snap, fmt.Errorf("pg_dump %s into restic: %s", db, execx.Redact(err.Error(), c.password))
	}
	return snap, nil
}

var identRE = regexp.MustCompile(`[^a-z0-9_]+`)

// restore streams the dump of snap (restic dump) into pg_restore, which
// restores into database db (which must exist). No temporary file.
func (p *Provider) restore(ctx context.Context, t backup.Target, c conn, snap backup.Snapshot, db string, noCache bool, extra ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	dumpErr := make(chan error, 1)
	// restoreEnded is set when pg_restore has exited: a restic dump that
	// fails after it (broken pipe) did not cause its failure.
	var restoreEnded atomic.Bool
	go func() {
		err := t.Repo.Dump(ctx, snap.ID, "/"+dumpFile(t.Spec.Source.Database), pw, noCache)
		pw.CloseWithError(err)
		if err != nil && !restoreEnded.Load() {
			cancel() // stop pg_restore waiting for input that will not come
		}
		dumpErr <- err
	}()
	err := execx.Run(ctx, execx.Cmd{
		Name:    "pg_restore",
		Args:    append(append([]string{"--exit-on-error"}, extra...), c.args(db)...),
		Env:     c.env(),
		Secrets: c.secrets(),
		Stdin:   pr,
	})
	restoreEnded.Store(true)
	if err == nil {
		io.Copy(io.Discard, pr) // let restic dump finish writing
	} else {
		pr.CloseWithError(err) // pg_restore failed: stop restic dump
	}
	derr := <-dumpErr
	switch {
	case err != nil && derr != nil && ctx.Err() != nil:
		// restic dump failed first and pg_restore was cancelled for it.
		return fmt.Errorf("restic dump of %s: %w", snap.ShortID, derr)
	case err != nil:
		return fmt.Errorf("pg_restore into %s: %w", db, err)
	case derr != nil:
		return fmt.Errorf("restic dump of %s: %w", snap.ShortID, derr)
	}
	return nil
}

// Restore restores snap into dest.Database. A database that does not exist
// is created. An existing one is replaced only with dest.Replace, and
// safely: the dump is restored into a staging database created like it
// (owner, encoding, locale: likeDB) and given its grants, comment and
// settings (dbProps); only when that succeeded are connections to the old
// one ended and the two swapped by renaming, and the old one dropped. A failed restore leaves the
// existing database untouched. dest.InPlace restores into the target's
// source database the same way, as if with dest.Replace (sessions on it
// are ended for the swap).
func (p *Provider) Restore(ctx context.Context, t backup.Target, snap backup.Snapshot, dest backup.Destination, progress backup.ProgressFunc) error {
	if dest.InPlace {
		if dest.Database != "" || dest.Path != "" {
			return errors.New("an in-place restore takes no destination database or path")
		}
		if t.Spec.Source.Database == "" {
			return errors.New("no source database to restore in place")
		}
		dest = backup.Destination{Database: t.Spec.Source.Database, Replace: true}
	}
	c, err := connOf(t.Spec.Source)
	if err != nil {
		return err
	}
	admin, err := c.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	exists, err := dbExists(ctx, admin, dest.Database)
	if err != nil {
		return err
	}
	if err := dropStaged(ctx, admin, dest.Database); err != nil {
		return err
	}
	if !exists {
		if exists, err = undoInterruptedSwap(ctx, admin, dest.Database, dest.Replace); err != nil {
			return err
		}
	}
	if exists && !dest.Replace {
		return fmt.Errorf("database %s exists: pass --replace to replace it (it is swapped only after a successful restore)", dest.Database)
	}
	target, like, props := dest.Database, "", dbProps{}
	var exts []extension
	if exists {
		target = shortIdent(dest.Database + "_homelab_restore_" + p.stamp())
		if like, err = likeDB(ctx, admin, dest.Database); err != nil {
			return err
		}
		if props, err = readDBProps(ctx, admin, dest.Database); err != nil {
			return err
		}
		if exts, err = c.extensionsOf(ctx, dest.Database); err != nil {
			return err
		}
	}
	if exists {
		// A staging database of the same name can only be left by a
		// restore killed within the same second (dropStaged does not
		// recognise a name shortened with a hash): ours to drop.
		if err := dropDB(ctx, admin, target); err != nil {
			return err
		}
	}
	if err := createDB(ctx, admin, target, like); err != nil {
		return err
	}
	if err := c.createExtensionsIn(ctx, target, exts); err != nil {
		return errors.Join(err, dropDB(context.WithoutCancel(ctx), admin, target))
	}
	if err := p.restore(ctx, t, c, snap, target, false); err != nil {
		return errors.Join(err, dropDB(context.WithoutCancel(ctx), admin, target))
	}
	if !exists {
		return nil
	}
	if err := applyDBProps(ctx, admin, target, props); err != nil {
		return errors.Join(err, dropDB(context.WithoutCancel(ctx), admin, target))
	}
	old := shortIdent(dest.Database + "_homelab_old_" + p.stamp())
	if err := swap(ctx, admin, dest.Database, target, old); err != nil {
		return errors.Join(err, dropDB(context.WithoutCancel(ctx), admin, target))
	}
	// Once this restore has replaced db, the <db>_homelab_old_* that an
	// earlier replacing restore, killed after its swap, left behind hold
	// data that restore was asked to replace: dropped with this one's.
	if err := dropDB(ctx, admin, old); err != nil {
		return err
	}
	return dropOld(ctx, admin, dest.Database)
}

func (p *Provider) stamp() string {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	return now().UTC().Format("20060102t150405")
}

// Drill restores snap into a throwaway database homelab_drill_<target>_*,
// runs the target's SQL checks (each must return true) and drops the
// database, also when the restore or a check fails.
func (p *Provider) Drill(ctx context.Context, t backup.Target, snap backup.Snapshot, runID string) (rep backup.DrillReport, err error) {
	if t.Spec.Drill.Instance == lab.DrillThrowaway {
		return p.drillThrowaway(ctx, t, snap, runID)
	}
	c, err := connOf(t.Spec.Source)
	if err != nil {
		return rep, err
	}
	admin, err := c.connect(ctx, "postgres")
	if err != nil {
		return rep, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	rep.Leftovers = dropDeadDrills(ctx, admin, t.Name())
	db := DrillDatabase(t.Name(), runID)
	rep.Place = "database " + db
	start := time.Now()
	if err := createDB(ctx, admin, db, ""); err != nil {
		return rep, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := dropDB(dctx, admin, db); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err := p.restore(ctx, t, c, snap, db, true); err != nil {
		rep.RTO = time.Since(start)
		return rep, err
	}
	rep.RTO = time.Since(start)
	rep.Checks = append(rep.Checks, backup.CheckResult{Check: "pg_restore", OK: true, Detail: "restored into " + db})
	return rep, runChecks(ctx, c, db, t.Spec.Drill.Checks, &rep)
}

// runChecks runs the drill's SQL checks in db, adding their results to rep.
func runChecks(ctx context.Context, c conn, db string, checks []lab.Check, rep *backup.DrillReport) error {
	if len(checks) == 0 {
		return nil
	}
	dc, err := c.connect(ctx, db)
	if err != nil {
		return err
	}
	defer dc.Close(context.WithoutCancel(ctx))
	for _, chk := range checks {
		rep.Checks = append(rep.Checks, SQLCheck(ctx, dc, chk.SQL))
	}
	return nil
}

// SQLCheck runs a query that must return one true boolean.
func SQLCheck(ctx context.Context, c *pgx.Conn, sql string) backup.CheckResult {
	res := backup.CheckResult{Check: "sql " + sql}
	var v any
	if err := c.QueryRow(ctx, sql).Scan(&v); err != nil {
		res.Detail = err.Error()
		return res
	}
	b, ok := v.(bool)
	switch {
	case !ok:
		res.Detail = fmt.Sprintf("returned %v (%T), want a boolean", v, v)
	case !b:
		res.Detail = "returned false"
	default:
		res.OK, res.Detail = true, "returned true"
	}
	return res
}

// DrillDatabase names the throwaway database of a drill: at most 63 bytes
// (PostgreSQL's identifier limit), lower case, prefix homelab_drill_.
func DrillDatabase(target, runID string) string {
	return shortIdent("homelab_drill_" + target + "_" + runID)
}

// drillRunSuffix is a run ID (NewRunID) as it ends a drill database's
// name: 20261123t100000z_0000abcd.
const drillRunSuffix = `[0-9]{8}t[0-9]{6}z_[0-9a-f]{8}`

// dropDeadDrills drops the drill databases of target that earlier drills,
// killed before they could drop them, left behind (the target's lock is
// held, so no drill of the target in this lab runs); one with sessions
// (another lab's drill of a target of the same name) is left alone. It
// returns the ones it could not drop, with the reason. Names longer than
// 63 bytes were shortened with a hash and are not recognised.
func dropDeadDrills(ctx context.Context, c *pgx.Conn, target string) []string {
	pattern := "^" + regexp.QuoteMeta(shortIdent("homelab_drill_"+target+"_")) + drillRunSuffix + "$"
	rows, err := c.Query(ctx, `select d.datname from pg_database d
		where d.datname ~ $1 and not exists (select 1 from pg_stat_activity a where a.datname = d.datname)
		order by d.datname`, pattern)
	if err != nil {
		return []string{"drill databases of " + target + ": " + err.Error()}
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return []string{"drill databases of " + target + ": " + err.Error()}
	}
	var left []string
	for _, db := range names {
		if err := dropDB(ctx, c, db); err != nil {
			left = append(left, "database "+db+": "+err.Error())
		}
	}
	return left
}

// dropOld drops the databases <db>_homelab_old_<stamp> that a replacing
// restore of db, killed after its swap, left behind.
func dropOld(ctx context.Context, c *pgx.Conn, db string) error {
	old, err := leftDatabases(ctx, c, db, "_homelab_old_")
	if err != nil {
		return err
	}
	for _, name := range old {
		if err := dropDB(ctx, c, name); err != nil {
			return err
		}
	}
	return nil
}

// shortIdent makes s a database name: lower case, [a-z0-9_], at most 63
// bytes (PostgreSQL's NAMEDATALEN-1). A longer name keeps its first 54
// bytes and ends with 8 hex digits of the whole name's SHA-256, so names
// that differ only at the end (the time stamp of a staging database)
// stay different.
func shortIdent(s string) string {
	s = identRE.ReplaceAllString(strings.ToLower(s), "_")
	if len(s) > 63 {
		sum := sha256.Sum256([]byte(s))
		s = s[:54] + "_" + hex.EncodeToString(sum[:4])
	}
	return s
}

func dbExists(ctx context.Context, c *pgx.Conn, db string) (bool, error) {
	var n int
	if err := c.QueryRow(ctx, "select count(*) from pg_database where datname = $1", db).Scan(&n); err != nil {
		return false, fmt.Errorf("look up database %s: %w", db, err)
	}
	return n > 0, nil
}

// createDB creates db with the options like (from likeDB; "" for the
// defaults). If the options name an owner the connected user may not
// create databases for (SQLSTATE 42501), db is created without it, owned
// by the connected user, as a restore by that user always was.
func createDB(ctx context.Context, c *pgx.Conn, db, like string) error {
	_, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+like)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" && strings.Contains(like, " OWNER ") {
		_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+like[strings.Index(like, " TEMPLATE "):])
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// likeDB returns the CREATE DATABASE options that make a database like db:
// its owner, then TEMPLATE template0 with db's encoding and, for a libc
// locale, its LC_COLLATE and LC_CTYPE (an ICU locale is left to the
// cluster's default). A database replaced by a restore keeps them, so the
// owner's rights (on PostgreSQL 15 the public schema belongs to the
// database owner) do not change hands. db's own grants, comment and
// settings are carried over by readDBProps and applyDBProps.
func likeDB(ctx context.Context, c *pgx.Conn, db string) (string, error) {
	var owner, encoding, collate, ctype string
	var libc bool
	err := c.QueryRow(ctx, `select pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider = 'c'
		from pg_database where datname = $1`, db).Scan(&owner, &encoding, &collate, &ctype, &libc)
	if err != nil {
		return "", fmt.Errorf("read the settings of database %s: %w", db, err)
	}
	like := " OWNER " + pgx.Identifier{owner}.Sanitize() + " TEMPLATE template0 ENCODING " + quoteLiteral(encoding)
	if libc {
		like += " LC_COLLATE " + quoteLiteral(collate) + " LC_CTYPE " + quoteLiteral(ctype)
	}
	return like, nil
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// dropDB drops db, ending its sessions first (DROP DATABASE ... WITH
// (FORCE), PostgreSQL >= 13).
func dropDB(ctx context.Context, c *pgx.Conn, db string) error {
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	return nil
}

// leftDatabases returns the databases named <db><infix>...: the staging
// (_homelab_restore_) and moved-aside (_homelab_old_) databases of a
// restore of db.
func leftDatabases(ctx context.Context, c *pgx.Conn, db, infix string) ([]string, error) {
	rows, err := c.Query(ctx, `select datname from pg_database where starts_with(datname, $1) order by datname`, db+infix)
	if err != nil {
		return nil, fmt.Errorf("look for databases left by an interrupted restore of %s: %w", db, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// dropStaged drops the staging databases <db>_homelab_restore_<stamp>
// that restores of db killed before their swap left behind: the target's
// lock is held, so no other restore is using them. Names longer than
// PostgreSQL's 63 bytes were shortened with a hash (shortIdent) and are
// not recognised.
func dropStaged(ctx context.Context, c *pgx.Conn, db string) error {
	staged, err := leftDatabases(ctx, c, db, "_homelab_restore_")
	if err != nil {
		return err
	}
	for _, name := range staged {
		if err := dropDB(ctx, c, name); err != nil {
			return err
		}
	}
	return nil
}

// undoInterruptedSwap handles database db found missing: when a restore
// that replaced it was killed between swap's two renames, db's data is in
// <db>_homelab_old_<stamp>, closed to connections. With replace (the
// restore replaces db anyway) that database is renamed back to db and
// opened again, so the restore replaces it as usual, keeping its owner,
// grants and settings, and db is reported to exist. Without replace, or
// when there are several, the error names them and how to put one back.
// As with dropStaged, hashed long names are not recognised.
func undoInterruptedSwap(ctx context.Context, c *pgx.Conn, db string, replace bool) (bool, error) {
	olds, err := leftDatabases(ctx, c, db, "_homelab_old_")
	if err != nil || len(olds) == 0 {
		return false, err
	}
	q := pgx.Identifier{db}.Sanitize()
	if len(olds) > 1 {
		return false, fmt.Errorf("database %s does not exist, but %s do: restores that replaced it were interrupted; put back the one to keep with ALTER DATABASE <name> RENAME TO %s; ALTER DATABASE %s ALLOW_CONNECTIONS true", db, strings.Join(olds, ", "), q, q)
	}
	old := pgx.Identifier{olds[0]}.Sanitize()
	if !replace {
		return false, fmt.Errorf("database %s does not exist, but %s does: a restore that replaced it was interrupted, and its data is there; put it back with ALTER DATABASE %s RENAME TO %s; ALTER DATABASE %s ALLOW_CONNECTIONS true, or restore with --replace, which does that first", db, olds[0], old, q, q)
	}
	if _, err := c.Exec(ctx, "ALTER DATABASE "+old+" RENAME TO "+q); err != nil {
		return false, fmt.Errorf("put back %s as %s (a restore that replaced it was interrupted): %w", olds[0], db, err)
	}
	if _, err := c.Exec(ctx, "ALTER DATABASE "+q+" ALLOW_CONNECTIONS true"); err != nil {
		return false, fmt.Errorf("open %s again: %w", db, err)
	}
	return true, nil
}

// swap renames cur to old and staged to cur, ending sessions on cur first.
// If the second rename fails the first is undone.
func swap(ctx context.Context, c *pgx.Conn, cur, staged, old string) error {
	// No new session may start between the last one ending and the
	// rename (a client reconnecting would make the rename fail).
	if _, err := c.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{cur}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("close %s to new sessions: %w", cur, err)
	}
	reopen := func(db string) error {
		_, err := c.Exec(context.WithoutCancel(ctx), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" ALLOW_CONNECTIONS true")
		return err
	}
	if _, err := c.Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", cur); err != nil {
		return errors.Join(fmt.Errorf("end sessions on %s: %w", cur, err), reopen(cur))
	}
	rename := func(from, to string) error {
		_, err := c.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{from}.Sanitize()+" RENAME TO "+pgx.Identifier{to}.Sanitize())
		return err
	}
	if err := rename(cur, old); err != nil {
		return errors.Join(fmt.Errorf("move %s aside: %w", cur, err), reopen(cur))
	}
	if err := rename(staged, cur); err != nil {
		err = fmt.Errorf("move restored database into place: %w", err)
		if berr := rename(old, cur); berr != nil {
			return errors.Join(err, berr)
		}
		return errors.Join(err, reopen(cur))
	}
	return nil
}

// resticBackup is the restic call of a backup: pg_dump runs as restic's
// stdin command, with the libpq environment, so a failing pg_dump fails
// the snapshot.
func resticBackup(t backup.Target, runID, db string, cmd, env []string) restic.BackupOptions {
	return restic.BackupOptions{
		StdinCommand:  cmd,
		StdinFilename: dumpFile(db),
		CommandEnv:    env,
		Tags:          t.RunTags(runID),
	}
}
