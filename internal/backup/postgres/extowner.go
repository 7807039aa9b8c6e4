package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// extension is an installed extension of a database and the role that
// owns it.
type extension struct {
	name, schema, version, owner string
}

// readExtensions lists the extensions of database db (connected as conn)
// that a role other than the connecting one owns. pg_dump does not carry
// an extension's owner (there is no ALTER EXTENSION ... OWNER TO):
// pg_restore creates every extension as the restoring role, and the
// application's next migration that alters one then fails with "must be
// owner of extension".
func readExtensions(ctx context.Context, conn *pgx.Conn) ([]extension, error) {
	rows, err := conn.Query(ctx, `select e.extname, n.nspname, e.extversion, pg_get_userbyid(e.extowner)
		from pg_extension e join pg_namespace n on n.oid = e.extnamespace
		where e.extowner <> (select oid from pg_roles where rolname = current_user)
		order by e.extname`)
	if err != nil {
		return nil, fmt.Errorf("read the owners of the extensions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (extension, error) {
		var e extension
		err := r.Scan(&e.name, &e.schema, &e.version, &e.owner)
		return e, err
	})
}

// createExtensions creates exts in the staging database (connected as
// conn) before pg_restore runs, each as its owner (SET ROLE), at its
// version, so that it and the objects its script creates belong to whom
// they belonged before; pg_restore's CREATE EXTENSION IF NOT EXISTS then
// leaves it alone. An extension that exists already (plpgsql) is skipped.
// Only extensions in schema public are created so: another schema comes
// from the dump itself, whose CREATE SCHEMA would fail on a schema made
// before it. When the owner lacks CREATE on the database or on schema
// public, it is granted for the creation and revoked after.
//
// It is best effort, never failing the restore (an upgrade's rollback
// depends on it): an extension whose owner the restoring role cannot
// become (not a member of it, nor superuser), or whose creation fails, is
// left to pg_restore, which creates it as the restoring role, as before.
// Extensions that need another one are created after it (attempts repeat
// while any succeeds). It returns the extensions left so, with the reason.
func createExtensions(ctx context.Context, conn *pgx.Conn, db string, exts []extension) []string {
	var todo []extension
	for _, e := range exts {
		var exists, canBecome bool
		err := conn.QueryRow(ctx, `select exists (select 1 from pg_extension where extname = $1),
			pg_has_role(current_user, $2, 'MEMBER')`, e.name, e.owner).Scan(&exists, &canBecome)
		switch {
		case err != nil || exists || e.schema != "public":
		case !canBecome:
		default:
			todo = append(todo, e)
		}
	}
	failed := map[string]error{}
	for progress := true; progress && len(todo) > 0; {
		progress = false
		var next []extension
		for _, e := range todo {
			if err := createAs(ctx, conn, db, e); err != nil {
				failed[e.name] = err
				next = append(next, e)
				continue
			}
			delete(failed, e.name)
			progress = true
		}
		todo = next
	}
	var left []string
	for _, e := range todo {
		left = append(left, fmt.Sprintf("extension %s as %s: %v", e.name, e.owner, failed[e.name]))
	}
	return left
}

// createAs runs CREATE EXTENSION e as e.owner.
func createAs(ctx context.Context, conn *pgx.Conn, db string, e extension) (err error) {
	var canCreate bool
	if err := conn.QueryRow(ctx, "select has_database_privilege($1, $2, 'CREATE')", e.owner, db).Scan(&canCreate); err != nil {
		return err
	}
	var canCreateInPublic bool
	if err := conn.QueryRow(ctx, "select has_schema_privilege($1, 'public', 'CREATE')", e.owner).Scan(&canCreateInPublic); err != nil {
		return err
	}
	dbID, owner := pgx.Identifier{db}.Sanitize(), pgx.Identifier{e.owner}.Sanitize()
	for _, g := range []struct {
		has    bool
		object string
	}{{canCreate, "DATABASE " + dbID}, {canCreateInPublic, "SCHEMA public"}} {
		if g.has {
			continue
		}
		if _, err := conn.Exec(ctx, "GRANT CREATE ON "+g.object+" TO "+owner); err != nil {
			return err
		}
		defer func() {
			_, rerr := conn.Exec(context.WithoutCancel(ctx), "REVOKE CREATE ON "+g.object+" FROM "+owner)
			err = errors.Join(err, rerr)
		}()
	}
	if _, err := conn.Exec(ctx, "SET ROLE "+owner); err != nil {
		return err
	}
	defer func() {
		_, rerr := conn.Exec(context.WithoutCancel(ctx), "RESET ROLE")
		err = errors.Join(err, rerr)
	}()
	_, err = conn.Exec(ctx, "CREATE EXTENSION "+pgx.Identifier{e.name}.Sanitize()+" WITH SCHEMA public VERSION "+quoteLiteral(e.version))
	return err
}

// extensionsOf connects to db and reads its extensions (readExtensions).
func (c conn) extensionsOf(ctx context.Context, db string) ([]extension, error) {
	dc, err := c.connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer dc.Close(context.WithoutCancel(ctx))
	return readExtensions(ctx, dc)
}

// createExtensionsIn connects to db and creates exts there
// (createExtensions, best effort); an error is a connection that failed.
func (c conn) createExtensionsIn(ctx context.Context, db string, exts []extension) error {
	if len(exts) == 0 {
		return nil
	}
	dc, err := c.connect(ctx, db)
	if err != nil {
		return err
	}
	defer dc.Close(context.WithoutCancel(ctx))
	createExtensions(ctx, dc, db, exts)
	return nil
}
