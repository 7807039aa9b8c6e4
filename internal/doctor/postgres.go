package doctor

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"homelab/internal/backup/postgres"
	"homelab/internal/lab"
)

// MinStatsBytes is the size from which a table without planner
// statistics is a finding (8 pages of 8 KiB): smaller tables are planned
// well enough from their page count, and autovacuum never analyzes a
// table that changes by fewer than 50 rows, so a small lookup table
// without statistics is normal.
const MinStatsBytes = 64 << 10

// FixLockTimeout bounds how long a fix's statement waits for a lock (SET
// lock_timeout): a fix that would wait behind an application's long
// transaction fails with PostgreSQL's reason instead of hanging. It is
// short because a statement waiting for a lock sits at the head of the
// table's lock queue and blocks the application's own queries behind it
// for as long as it waits (ALTER EXTENSION UPDATE takes strong locks); a
// fix that timed out is reported and can be run again at a quieter time.
const FixLockTimeout = 5 * time.Second

// defaultCollationOID is the OID of the "default" collation, the
// database's own (pg_collation.h DEFAULT_COLLATION_OID).
const defaultCollationOID = 100

// Server is one PostgreSQL server of the lab.
type Server struct {
	// Name is host:port (host may be a socket directory).
	Name string
	// Targets are the backup targets on it, sorted.
	Targets []string
	// Source is how doctor connects: the first target's host, port,
	// user, password reference and database (the first database it
	// connects to).
	Source lab.Source
}

// Servers returns the lab's PostgreSQL servers, one per host:port: the
// sources of its postgres targets and the clusters of its pgbackrest
// targets (over the socket directory, as the cluster's user), in the
// order of their first target's name.
func Servers(l *lab.Lab) []Server {
	var out []Server
	at := map[string]int{}
	for _, name := range l.BackupNames() {
		b := l.Backups[name]
		var src lab.Source
		switch {
		case b.Provider == lab.ProviderPostgres:
			src = b.Source
		case b.Provider == lab.ProviderPgBackRest && b.PgBackRest != nil:
			c := b.PgBackRest.Cluster
			src = lab.Source{Host: c.SocketDir, Port: c.Port, User: c.User, Database: b.PgBackRest.Database}
		default:
			continue
		}
		port := src.Port
		if port == 0 {
			port = 5432
		}
		key := src.Host + ":" + strconv.Itoa(port)
		if i, ok := at[key]; ok {
			out[i].Targets = append(out[i].Targets, name)
			continue
		}
		if src.Database == "" {
			src.Database = "postgres"
		}
		at[key] = len(out)
		out = append(out, Server{Name: key, Targets: []string{name}, Source: src})
	}
	return out
}

// database is one row of pg_database as doctor reads it.
type database struct {
	name             string
	recorded, actual *string // datcollversion, pg_database_collation_actual_version
	connect          bool    // datallowconn and CONNECT privilege
	// concurrently: the server has REINDEX CONCURRENTLY (PostgreSQL 12
	// and later).
	concurrently bool
}

// checkServer connects to s and checks each database its role may
// connect to.
func (d *Doctor) checkServer(ctx context.Context, s Server) part {
	subject := "postgres " + s.Name
	conn, err := postgres.Connect(ctx, s.Source, s.Source.Database)
	if err != nil {
		return part{checked: subject, findings: []Finding{unchecked(subject, err)}}
	}
	defer closeConn(ctx, conn)
	dbs, err := databases(ctx, conn)
	if err != nil {
		return part{checked: subject, findings: []Finding{unchecked(subject, err)}}
	}
	var out []Finding
	n := 0
	for _, db := range dbs {
		if !db.connect {
			continue
		}
		n++
		dsub := subject + " database " + db.name
		c := conn
		if db.name != s.Source.Database {
			if c, err = postgres.Connect(ctx, s.Source, db.name); err != nil {
				out = append(out, unchecked(dsub, err))
				continue
			}
		}
		fs, err := checkDatabase(ctx, c, s, db, dsub)
		if c != conn {
			closeConn(ctx, c)
		}
		out = append(out, fs...)
		if err != nil {
			out = append(out, unchecked(dsub, err))
		}
	}
	return part{checked: fmt.Sprintf("%s (%s, targets %s)", subject, plural(n, "database", "databases"), strings.Join(s.Targets, ", ")), findings: out}
}

func closeConn(ctx context.Context, c *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c.Close(cctx)
}

// databases lists the server's databases but template0, with their
// collation versions (PostgreSQL 15 and later; nil before) and whether
// the role may connect.
func databases(ctx context.Context, c *pgx.Conn) ([]database, error) {
	var num int
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return nil, err
	}
	versions := "NULL::text, NULL::text"
	if num >= 150000 {
		versions = "datcollversion, pg_database_collation_actual_version(oid)"
	}
	rows, err := c.Query(ctx, "SELECT datname, "+versions+", datallowconn AND has_database_privilege(oid, 'CONNECT') "+
		"FROM pg_database WHERE datname <> 'template0' ORDER BY datname")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (db database, err error) {
		err = r.Scan(&db.name, &db.recorded, &db.actual, &db.connect)
		db.concurrently = num >= 120000
		return db, err
	})
}

// userSchemas excludes the system's schemas from a query over n
// (pg_namespace).
const userSchemas = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"

// checkDatabase runs the per-database checks over c, connected to db.
func checkDatabase(ctx context.Context, c *pgx.Conn, s Server, db database, subject string) ([]Finding, error) {
	var out []Finding
	fix := func(f Finding) Finding {
		f.Subject = subject
		if f.Fix != "" {
			return f // a fix this role cannot apply: named, not Auto
		}
		f.Fix, f.Auto = FixCommand, true
		stmts := f.SQL
		f.apply = func(ctx context.Context) error { return runSQL(ctx, s.Source, db.name, stmts) }
		return f
	}
	for _, check := range []func(context.Context, *pgx.Conn, database) ([]Finding, error){
		collationFindings, statisticsFindings, extensionFindings, invalidIndexFindings,
	} {
		fs, err := check(ctx, c, db)
		if err != nil {
			return out, err
		}
		for _, f := range fs {
			out = append(out, fix(f))
		}
	}
	return out, nil
}

// runSQL connects to db on the server of src and runs stmts in order,
// each in its own implicit transaction, with lock_timeout FixLockTimeout;
// it stops at the first that fails and names it.
func runSQL(ctx context.Context, src lab.Source, db string, stmts []string) error {
	c, err := postgres.Connect(ctx, src, db)
	if err != nil {
		return err
	}
	defer closeConn(ctx, c)
	if _, err := c.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", FixLockTimeout.Milliseconds())); err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func orNone(v *string) string {
	if v == nil {
		return "none"
	}
	return *v
}

// collationFindings: the database's default collation version
// (datcollversion) and those of the collations something in it depends
// on (pg_depend) differ from what the library provides now (a glibc or
// ICU upgrade, or a cluster moved to another OS release). Indexes sorted
// by a changed collation may be corrupt: the fix rebuilds every index
// that uses one (pg_index.indcollation), then records the new versions
// (ALTER COLLATION ... REFRESH VERSION, ALTER DATABASE ... REFRESH
// COLLATION VERSION), as PostgreSQL's warning says. Invalid indexes are
// left to invalidIndexFindings (never used; rebuilt with the library of
// their rebuild). Other objects that
// depend on a collation's order (range types, partition bounds, CHECK
// constraints comparing text) are not rebuilt.
func collationFindings(ctx context.Context, c *pgx.Conn, db database) ([]Finding, error) {
	var problems []string
	var oids []uint32
	dbStale := db.recorded != nil && (db.actual == nil || *db.actual != *db.recorded)
	if dbStale {
		oids = append(oids, defaultCollationOID)
		problems = append(problems, fmt.Sprintf("the database's collation version is %s, the library provides %s", *db.recorded, orNone(db.actual)))
	}
	rows, err := c.Query(ctx, `SELECT c.oid, n.nspname, c.collname, c.collversion, pg_collation_actual_version(c.oid)
FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE c.collversion IS NOT NULL AND c.collversion IS DISTINCT FROM pg_collation_actual_version(c.oid)
  AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_collation'::regclass AND d.refobjid = c.oid)
ORDER BY n.nspname, c.collname`)
	if err != nil {
		return nil, fmt.Errorf("collation versions: %w", err)
	}
	type coll struct {
		oid                    uint32
		schema, name, recorded string
		actual                 *string
	}
	colls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (k coll, err error) {
		err = r.Scan(&k.oid, &k.schema, &k.name, &k.recorded, &k.actual)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("collation versions: %w", err)
	}
	for _, k := range colls {
		oids = append(oids, k.oid)
		problems = append(problems, fmt.Sprintf("collation %s is version %s, the library provides %s", ident(k.schema, k.name), k.recorded, orNone(k.actual)))
	}
	if len(oids) == 0 {
		return nil, nil
	}
	idx, err := indexes(ctx, c, "i.indisvalid AND i.indcollation::oid[] && $1::oid[]", oids)
	if err != nil {
		return nil, fmt.Errorf("indexes using the collations: %w", err)
	}
	var sql []string
	for _, i := range idx {
		sql = append(sql, i.reindex(db.concurrently))
	}
	for _, k := range colls {
		sql = append(sql, "ALTER COLLATION "+ident(k.schema, k.name)+" REFRESH VERSION")
	}
	if dbStale {
		sql = append(sql, "ALTER DATABASE "+ident(db.name)+" REFRESH COLLATION VERSION")
	}
	problem := "collation version mismatch: " + strings.Join(problems, "; ") + "; " + plural(len(idx), "index uses", "indexes use") + " them and may be corrupt"
	return []Finding{{Check: CheckCollation, Problem: problem, SQL: sql}}, nil
}

// index is an index as the fixes name it.
type index struct {
	name      string // quoted schema.index
	exclusion bool   // pg_index.indisexclusion
}

// reindex is the statement that rebuilds i: REINDEX INDEX CONCURRENTLY
// (a SHARE UPDATE EXCLUSIVE lock: reads and writes of the table go on)
// when the server has it and i is no exclusion constraint's (PostgreSQL
// cannot build those concurrently), else REINDEX INDEX, which blocks the
// table's writes, and reads that would use i, while it runs.
func (i index) reindex(concurrently bool) string {
	if concurrently && !i.exclusion {
		return "REINDEX INDEX CONCURRENTLY " + i.name
	}
	return "REINDEX INDEX " + i.name
}

// indexes lists the indexes with storage in user schemas of i (pg_index)
// matching where (with arg as $1), sorted by schema and name: not
// partitioned indexes (relkind I), whose REINDEX rebuilds their
// partitions' indexes, which are listed themselves.
func indexes(ctx context.Context, c *pgx.Conn, where string, arg any) ([]index, error) {
	rows, err := c.Query(ctx, `SELECT n.nspname, x.relname, i.indisexclusion FROM pg_index i
JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace
WHERE x.relkind = 'i' AND `+userSchemas+` AND `+where+` ORDER BY 1, 2`, arg)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var schema, name string
		var i index
		err := r.Scan(&schema, &name, &i.exclusion)
		i.name = ident(schema, name)
		return i, err
	})
}

// statisticsFindings: tables (and materialized views) of at least
// MinStatsBytes that the role may read and that have no planner
// statistics at all (no row in pg_stats): never analyzed, as every table
// is right after pg_upgrade (which does not carry statistics over) until
// ANALYZE runs. The fix analyzes them. A table analyzed while it had no
// live rows (all deleted, not yet vacuumed) has no statistics either:
// the cumulative statistics' last (auto)analyze tells it apart, so that
// it is not found again after its fix. ANALYZE of a table the role may
// not analyze (it owns neither the table nor the database) is skipped
// with a mere WARNING, not an error: those tables are a second finding,
// not Auto, whose fix is ANALYZE as their owner.
func statisticsFindings(ctx context.Context, c *pgx.Conn, _ database) ([]Finding, error) {
	rows, err := c.Query(ctx, `SELECT n.nspname, t.relname, pg_relation_size(t.oid),
  pg_has_role(t.relowner, 'USAGE') OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')
FROM pg_class t
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE t.relkind IN ('r', 'm') AND t.relpersistence <> 't' AND `+userSchemas+`
  AND has_table_privilege(t.oid, 'SELECT') AND pg_relation_size(t.oid) >= $1
  AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = t.relname)
  AND NOT EXISTS (SELECT 1 FROM pg_stat_all_tables a WHERE a.relid = t.oid AND (a.last_analyze IS NOT NULL OR a.last_autoanalyze IS NOT NULL))
ORDER BY 3 DESC, 1, 2`, MinStatsBytes)
	if err != nil {
		return nil, fmt.Errorf("statistics: %w", err)
	}
	type table struct {
		name       string
		size       int64
		analyzable bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (t table, err error) {
		var schema, name string
		err = r.Scan(&schema, &name, &t.size, &t.analyzable)
		t.name = ident(schema, name)
		return t, err
	})
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, mine := range []bool{true, false} {
		var names, sql []string
		for _, t := range tables {
			if t.analyzable == mine {
				names = append(names, fmt.Sprintf("%s (%d KiB)", t.name, t.size>>10))
				sql = append(sql, "ANALYZE "+t.name)
			}
		}
		if len(names) == 0 {
			continue
		}
		f := Finding{Check: CheckStatistics,
			Problem: plural(len(names), "table has", "tables have") + " data but no planner statistics (never analyzed, as after pg_upgrade): " + list(names, 5),
			SQL:     sql}
		if !mine {
			f.Fix = "the SQL below as the tables' owner (this role owns neither them nor the database: its ANALYZE would skip them)"
		}
		out = append(out, f)
	}
	return out, nil
}

// extensionFindings: installed extensions whose version is not the
// available default version and that have an update path to it
// (pg_extension_update_paths), as after a major upgrade or a package
// update. The fix is ALTER EXTENSION ... UPDATE TO the default version.
func extensionFindings(ctx context.Context, c *pgx.Conn, _ database) ([]Finding, error) {
	rows, err := c.Query(ctx, `SELECT e.extname, e.extversion, a.default_version
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE a.default_version IS NOT NULL AND e.extversion <> a.default_version
  AND EXISTS (SELECT 1 FROM pg_extension_update_paths(e.extname) p
              WHERE p.source = e.extversion AND p.target = a.default_version AND p.path IS NOT NULL)
ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("extensions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Finding, error) {
		var name, installed, available string
		err := r.Scan(&name, &installed, &available)
		return Finding{Check: CheckExtension,
			Problem: fmt.Sprintf("extension %s is version %s, %s is available", name, installed, available),
			SQL:     []string{"ALTER EXTENSION " + ident(name) + " UPDATE TO " + literal(available)}}, err
	})
}

// transient matches the names REINDEX CONCURRENTLY gives the copies it
// leaves invalid when it fails: name_ccnew (the new copy) and name_ccold
// (the old index it could not drop), with a number when taken; name is
// truncated to fit NAMEDATALEN. The copy's sibling, the index it copies
// or replaced, is on the same table with a name that starts with the
// copy's name without the suffix.
var transient = regexp.MustCompile(`_cc(new|old)[0-9]*$`)

// invalidIndexFindings: indexes marked invalid (pg_index.indisvalid
// false) that no CREATE INDEX or REINDEX is building now
// (pg_stat_progress_create_index): left by a failed CREATE INDEX
// CONCURRENTLY or REINDEX CONCURRENTLY. PostgreSQL keeps updating them
// but never uses them. The fix is REINDEX INDEX (CONCURRENTLY, see
// index.reindex), or, for the transient copies of a failed REINDEX
// CONCURRENTLY (_ccnew, _ccold, next to the index they copy), DROP INDEX
// CONCURRENTLY, as PostgreSQL's manual recommends; an index a user named
// so, alone on its table, is rebuilt like any other.
//
// A partitioned index (relkind I) is invalid while a partition has no
// index attached to it (CREATE INDEX ON ONLY, the way to build one
// concurrently, until the last ALTER INDEX ... ATTACH PARTITION): REINDEX
// does not change that, so its finding is not Auto and names the
// partitions.
//
// A role without pg_read_all_stats sees another role's builds without
// their relation (relid NULL): while one runs in this database, its
// invalid indexes are left for the next run rather than taken for
// failed ones (an index being built is invalid until it is done).
func invalidIndexFindings(ctx context.Context, c *pgx.Conn, db database) ([]Finding, error) {
	rows, err := c.Query(ctx, `SELECT n.nspname, x.relname, t.relname, i.indisexclusion,
  CASE WHEN x.relkind = 'I' THEN ARRAY(SELECT pn.nspname || '.' || pc.relname FROM pg_inherits h
    JOIN pg_class pc ON pc.oid = h.inhrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
    WHERE h.inhparent = i.indrelid AND NOT EXISTS (SELECT 1 FROM pg_inherits hi JOIN pg_index pi ON pi.indexrelid = hi.inhrelid
                                                   WHERE hi.inhparent = i.indexrelid AND pi.indrelid = h.inhrelid)
    ORDER BY 1) END,
  EXISTS (SELECT 1 FROM pg_index si JOIN pg_class sx ON sx.oid = si.indexrelid
          WHERE si.indrelid = i.indrelid AND si.indexrelid <> i.indexrelid
            AND starts_with(sx.relname, regexp_replace(x.relname, `+literal(transient.String())+`, '')))
FROM pg_index i
JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = x.relnamespace
WHERE NOT i.indisvalid AND `+userSchemas+`
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                  WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND (p.relid IS NULL OR p.index_relid = i.indexrelid OR p.relid = i.indrelid))
ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("invalid indexes: %w", err)
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Finding, error) {
		var schema, name, table string
		var exclusion bool
		var unattached []string // partitions without an attached index, when partitioned
		var sibling bool        // an index of the table whose name starts with name without a transient suffix
		err := r.Scan(&schema, &name, &table, &exclusion, &unattached, &sibling)
		ix := index{name: ident(schema, name), exclusion: exclusion}
		if unattached != nil {
			why := "a partition's index is invalid"
			if len(unattached) > 0 {
				why = plural(len(unattached), "partition has", "partitions have") + " no index attached to it (" + list(unattached, 5) + ")"
			}
			return Finding{Check: CheckInvalidIndex,
				Problem: fmt.Sprintf("partitioned index %s on %s is invalid: %s", ix.name, ident(schema, table), why),
				Fix:     "on each, CREATE INDEX CONCURRENTLY, then ALTER INDEX " + ix.name + " ATTACH PARTITION it (or DROP INDEX " + ix.name + ")"}, err
		}
		f := Finding{Check: CheckInvalidIndex,
			Problem: fmt.Sprintf("index %s on %s is invalid (a failed CREATE INDEX CONCURRENTLY): never used, still maintained", ix.name, ident(schema, table)),
			SQL:     []string{ix.reindex(db.concurrently)}}
		if transient.MatchString(name) && sibling {
			f.Problem = fmt.Sprintf("index %s on %s is the invalid leftover of a failed REINDEX CONCURRENTLY", ix.name, ident(schema, table))
			f.SQL = []string{"DROP INDEX CONCURRENTLY " + ix.name}
		}
		return f, err
	})
	return slices.Clip(fs), err
}
