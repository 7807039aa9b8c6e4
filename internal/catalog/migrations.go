package catalog

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gofrs/flock"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// The schema changes are the goose SQL migrations in migrations/sqlite:
// NNNNN_name.sql takes the schema from version NNNNN-1 to NNNNN. Append
// only; never edit a released file. homelab never migrates down (go back
// by restoring the catalog), so the files have no Down section.
//
// Times are TEXT in the fixed-width UTC layout timeLayout, so they read well
// in the sqlite3 shell and sort as text in time order. Durations are
// INTEGER nanoseconds.
//
// One migration is Go instead, for it writes another file: 00008
// (moveSamples) moves the samples to their own file. It is registered
// with goose in goMigrations.
//
// Write new migrations in SQL that PostgreSQL runs too (a shared PostgreSQL
// catalog for labs of several hosts is planned: its migrations would live
// in migrations/postgres under the same version numbers). Each file says
// what in it is SQLite-specific.
//
//go:embed migrations/sqlite/*.sql
var migrationFiles embed.FS

// migrationsDir is the directory of the SQLite migrations in migrationFiles.
const migrationsDir = "migrations/sqlite"

// SchemaVersion is the newest schema version this binary knows: the version
// of the newest migration, file in migrations/sqlite or goMigrations
// (migrate checks).
const SchemaVersion = 9

// versionTable is goose's bookkeeping table: one row per applied version
// (and goose's version 0), with the time it was applied.
const versionTable = goose.DefaultTablename

// legacyTable is the bookkeeping of the migration runner that homelab had
// before goose: schema_migrations (version, applied_at).
const legacyTable = "schema_migrations"

// migrate brings the schema up to SchemaVersion with goose, each migration
// in its own transaction that holds SQLite's write lock from its start. It
// fails with an error wrapping ErrSchemaTooNew if the catalog is newer.
//
// goose reads the applied versions before it takes the write lock, so two
// processes opening a new catalog at once would both apply migration 1
// (TestConcurrentOpen then fails with "table runs already exists").
// goose locks only PostgreSQL and MySQL (advisory locks; a PostgreSQL
// catalog would pass lock.NewPostgresSessionLocker), so for SQLite the
// whole of migrate runs under an flock(2) on <catalog>-migrate.lock. The
// lock is never taken on the database file itself: opening and closing
// another descriptor of it would drop SQLite's own POSIX locks.
func (s *SQLite) migrate(ctx context.Context) (err error) {
	fl := flock.New(s.path+"-migrate.lock", flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	lctx, cancel := context.WithTimeout(ctx, BusyTimeout)
	defer cancel()
	ok, err := fl.TryLockContext(lctx, 10*time.Millisecond)
	if !ok {
		if err == nil {
			err = errors.New("not locked")
		}
		return fmt.Errorf("migrate: lock %s: %w", fl.Path(), err)
	}
	defer func() { err = errors.Join(err, fl.Unlock()) }()

	if err := importLegacyVersions(ctx, s.db); err != nil {
		return err
	}
	sub, err := fs.Sub(migrationFiles, migrationsDir)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(database.DialectSQLite3, s.db, sub,
		goose.WithTableName(versionTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(s.goMigrations()...),
		goose.WithLogger(goose.NopLogger()))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sources := p.ListSources() // by version, never empty
	if known := sources[len(sources)-1].Version; known != SchemaVersion {
		return fmt.Errorf("migrate: SchemaVersion is %d but the newest migration is %d", SchemaVersion, known)
	}
	// goose takes a version above all it knows for "nothing to do".
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: schema version %d, this homelab knows up to %d; upgrade homelab", ErrSchemaTooNew, v, SchemaVersion)
	}
	if _, err := p.Up(ctx); err != nil {
		var pe *goose.PartialError
		if errors.As(err, &pe) && pe.Failed != nil && pe.Failed.Source != nil {
			return fmt.Errorf("migrate to schema version %d: %w", pe.Failed.Source.Version, pe.Err)
		}
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// moveSamplesVersion is the schema version whose migration moves the
// samples out of the catalog (moveSamples).
const moveSamplesVersion = 8

// goMigrations are the migrations written in Go, each run by goose in
// the transaction that records its version.
func (s *SQLite) goMigrations() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(moveSamplesVersion, &goose.GoFunc{RunTx: s.moveSamples}, nil),
	}
}

// importLegacyVersions moves the bookkeeping of a catalog migrated by the
// runner homelab had before goose (table schema_migrations: version,
// applied_at) into goose's table, in one transaction: goose's table is
// created with its version 0, each recorded version is inserted with its
// applied_at, and schema_migrations is dropped. A catalog that already has
// goose's table, or has neither table (a new one), is left alone. Then goose
// applies only the versions the old runner had not.
//
// SQLite only (sqlite_master; the old runner never ran elsewhere). A
// homelab from before goose that opens the catalog afterwards fails at its
// migration 1 ("table runs already exists") and changes nothing.
func importLegacyVersions(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	defer tx.Rollback()
	const exists = `EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)`
	var legacy, current bool
	if err := tx.QueryRowContext(ctx, `SELECT `+exists+`, `+exists, legacyTable, versionTable).Scan(&legacy, &current); err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	if !legacy || current {
		return nil
	}
	store, err := database.NewStore(database.DialectSQLite3, versionTable)
	if err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	if err := store.CreateVersionTable(ctx, tx); err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	if err := store.Insert(ctx, tx, database.InsertRequest{Version: 0}); err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	// goose's tstamp is SQLite's datetime() text, "YYYY-MM-DD HH:MM:SS"
	// in UTC; applied_at is timeLayout text, also UTC.
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+versionTable+` (version_id, is_applied, tstamp)
		SELECT version, 1, COALESCE(datetime(applied_at), datetime('now'))
		FROM `+legacyTable+` ORDER BY version`); err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+legacyTable); err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: import old schema versions: %w", err)
	}
	return nil
}
