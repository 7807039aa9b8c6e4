package postgres

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"homelab/internal/backup"
	"homelab/internal/lab"
)

var _ backup.Preflighter = (*Provider)(nil)

// Preflight implements backup.Preflighter: connected as the target's
// source role (to database postgres, as Restore and Drill connect, and to
// the source database), it checks from pg_roles, pg_database and
// pg_has_role what Drill and Restore do:
//   - CREATE DATABASE (the drill database homelab_drill_<target>_*, a new
//     database, a replacing restore's staging database) and ALTER
//     DATABASE ... RENAME (the swap) need CREATEDB or superuser;
//   - a replacing restore (dest.Replace over an existing database,
//     dest.InPlace) closes the database to new sessions, renames it aside
//     and drops it, and creates the staging database owned by the same
//     owner: it needs the privileges of the owner (membership that
//     inherits, or superuser);
//   - pg_restore gives every object of the dump to its owner (ALTER ...
//     OWNER TO) and Restore creates public's extensions as their owners
//     (SET ROLE): the role must be a member of every other role owning an
//     object of the source database, and that role must be allowed to
//     create the object in the restored database (foreignOwners), or the
//     role must be a superuser; the source database as it is now stands
//     for the dump;
//   - an extension that is not trusted can only be created by a
//     superuser.
//
// It does not check what depends on the moment (sessions of other roles
// that a swap must end need pg_signal_backend or membership) nor settings
// of other roles in the database (ALTER ROLE ... IN DATABASE). Changes
// nothing. Errors: the server or the source database cannot be reached or
// read.
func (p *Provider) Preflight(ctx context.Context, t backup.Target, need backup.Need) ([]backup.Finding, error) {
	c, err := connOf(t.Spec.Source)
	if err != nil {
		return nil, err
	}
	admin, err := c.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	var role string
	var super, createdb bool
	if err := admin.QueryRow(ctx, "select rolname, rolsuper, rolcreatedb from pg_roles where rolname = current_user").Scan(&role, &super, &createdb); err != nil {
		return nil, fmt.Errorf("read the attributes of the connected role: %w", err)
	}
	if super {
		return nil, nil
	}
	var out []backup.Finding
	add := func(needs, what string) {
		out = append(out, backup.Finding{Target: t.Name(), Role: role, Needs: needs, For: what})
	}
	// places are the owners of the databases pg_restore restores into.
	var creates []string
	places := map[string]bool{}
	if need.Drill && t.Spec.Drill.Instance != lab.DrillThrowaway {
		creates = append(creates, "the drill database "+shortIdent("homelab_drill_"+t.Name()+"_")+"*")
		places[role] = true
	}
	if need.Restore != nil {
		dest := *need.Restore
		if dest.InPlace {
			dest = backup.Destination{Database: t.Spec.Source.Database, Replace: true}
		}
		exists, err := dbExists(ctx, admin, dest.Database)
		if err != nil {
			return nil, err
		}
		switch {
		case !exists:
			creates = append(creates, "database "+dest.Database+" to restore into")
			places[role] = true
		case dest.Replace:
			creates = append(creates, "the staging database "+dest.Database+"_homelab_restore_* and rename it into place")
			var owner string
			var owns, member bool
			if err := admin.QueryRow(ctx, `select pg_get_userbyid(datdba), pg_has_role(current_user, datdba, 'USAGE'), pg_has_role(current_user, datdba, 'MEMBER')
				from pg_database where datname = $1`, dest.Database).Scan(&owner, &owns, &member); err != nil {
				return nil, fmt.Errorf("read the owner of database %s: %w", dest.Database, err)
			}
			if !owns {
				add(fmt.Sprintf("the privileges of role %s, the owner of database %s (GRANT %s TO %s, or superuser)", owner, dest.Database, ident(owner), ident(role)),
					fmt.Sprintf("to close %s to new sessions, rename it aside, drop it after the swap and create its replacement owned by %s", dest.Database, owner))
			}
			// createDB falls back to the restoring role as the owner.
			if member {
				places[owner] = true
			} else {
				places[role] = true
			}
		}
	}
	if len(creates) > 0 && !createdb {
		add("CREATEDB (or superuser)", "to create "+strings.Join(creates, " and "))
	}
	if len(places) == 0 {
		return out, nil
	}
	// A source database that is gone (restored in place to bring it
	// back) has no objects to look at.
	if ok, err := dbExists(ctx, admin, t.Spec.Source.Database); err != nil || !ok {
		return out, err
	}
	src, err := c.connect(ctx, t.Spec.Source.Database)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	seen := map[string]bool{}
	for _, place := range slices.Sorted(maps.Keys(places)) {
		owners, err := foreignOwners(ctx, src, place)
		if err != nil {
			return nil, err
		}
		for _, o := range owners {
			objects := fmt.Sprintf("the objects of database %s that %s owns (%d, such as %s)", t.Spec.Source.Database, o.owner, o.count, o.example)
			var f [2]string
			switch {
			case !o.canCreate:
				f = [2]string{"superuser", fmt.Sprintf("for pg_restore to give %s back to it: in the database the restore creates (owned by %s), %s may not create in their schema", objects, place, o.owner)}
			case !o.member:
				f = [2]string{fmt.Sprintf("membership in role %s (GRANT %s TO %s, or superuser)", o.owner, ident(o.owner), ident(role)), fmt.Sprintf("for pg_restore to give %s back to it", objects)}
			}
			if key := f[0] + f[1]; !seen[key] {
				seen[key] = true
				add(f[0], f[1])
			}
		}
	}
	exts, err := untrustedExtensions(ctx, src)
	if err != nil {
		return nil, err
	}
	for _, e := range exts {
		add("superuser", fmt.Sprintf("to create extension %s of database %s (not a trusted extension)", e, t.Spec.Source.Database))
	}
	return out, nil
}

// ownedBy is a role owning objects of a database, how many, whether the
// connected role is a member of it, and whether it may create them where
// pg_restore restores them.
type ownedBy struct {
	owner, example    string
	count             int
	member, canCreate bool
}

// foreignOwners returns the roles owning objects of the connected
// database that pg_dump writes with an owner (schemas, relations,
// functions, types, large objects, extensions in schema public), but
// objects that belong to an extension, for which a restore by the
// connected role into a database owned by place would fail: pg_restore
// creates each object as the connected role, then ALTER ... OWNER TO its
// owner, which needs the connected role to be a member of the owner and
// the owner to have CREATE on the object's schema (schema public of the
// new database belongs to place, through pg_database_owner; another
// schema to its owner) or, for a schema, on the database (place's). The
// ACLs of the dump come after. An extension in public is created by
// Restore as its owner with CREATE granted for it (createAs), a large
// object has no schema: both need the membership only. Schema public
// owned by pg_database_owner is left out (pg_dump writes no owner for
// it).
func foreignOwners(ctx context.Context, c *pgx.Conn, place string) ([]ownedBy, error) {
	rows, err := c.Query(ctx, `with place as (
		select oid from pg_roles where rolname = $1
	), user_ns as (
		select n.oid, n.nspname,
			case when n.nspname = 'public' and n.nspowner = 'pg_database_owner'::regrole then (select oid from place) else n.nspowner end as owner
		from pg_namespace n
		where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
	), objects(classid, objid, owner, what, create_in) as (
		select 'pg_namespace'::regclass, n.oid, n.nspowner, 'schema ' || quote_ident(n.nspname), (select oid from place)
		from pg_namespace n join user_ns u on u.oid = n.oid
		where not (n.nspname = 'public' and n.nspowner = 'pg_database_owner'::regrole)
		union all
		select 'pg_class'::regclass, c.oid, c.relowner, 'relation ' || c.oid::regclass::text, u.owner
		from pg_class c join user_ns u on u.oid = c.relnamespace
		where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
		union all
		select 'pg_proc'::regclass, p.oid, p.proowner, 'function ' || p.oid::regprocedure::text, u.owner
		from pg_proc p join user_ns u on u.oid = p.pronamespace
		union all
		select 'pg_type'::regclass, t.oid, t.typowner, 'type ' || t.oid::regtype::text, u.owner
		from pg_type t join user_ns u on u.oid = t.typnamespace
		where t.typtype in ('c', 'd', 'e', 'r', 'm') and (t.typrelid = 0 or (select relkind from pg_class where oid = t.typrelid) = 'c')
		union all
		select 'pg_largeobject_metadata'::regclass, l.oid, l.lomowner, 'large object ' || l.oid, null
		from pg_largeobject_metadata l
		union all
		select 'pg_extension'::regclass, e.oid, e.extowner, 'extension ' || quote_ident(e.extname), null
		from pg_extension e join pg_namespace n on n.oid = e.extnamespace
		where n.nspname = 'public'
	), checked as (
		select o.owner, o.what,
			pg_has_role(current_user, o.owner, 'MEMBER') as member,
			o.create_in is null or pg_has_role(o.owner, o.create_in, 'USAGE') as can_create
		from objects o
		where o.owner <> (select oid from pg_roles where rolname = current_user)
			and not exists (select 1 from pg_depend d where d.classid = o.classid and d.objid = o.objid and d.deptype = 'e')
	)
	select pg_get_userbyid(owner), min(what), count(*)::int, bool_and(member), bool_and(can_create)
	from checked where not member or not can_create
	group by owner order by 1`, place)
	if err != nil {
		return nil, fmt.Errorf("read the owners of the objects of the database: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (o ownedBy, err error) {
		return o, r.Scan(&o.owner, &o.example, &o.count, &o.member, &o.canCreate)
	})
}

// untrustedExtensions returns the installed extensions of the connected
// database, but plpgsql (in every template), that only a superuser may
// create (not trusted, superuser required).
func untrustedExtensions(ctx context.Context, c *pgx.Conn) ([]string, error) {
	rows, err := c.Query(ctx, `select e.extname from pg_extension e
		join pg_available_extension_versions v on v.name = e.extname and v.version = e.extversion
		where v.superuser and not v.trusted and e.extname <> 'plpgsql' order by 1`)
	if err != nil {
		return nil, fmt.Errorf("read the extensions of the database: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// ident writes a role name for SQL shown to the operator: as it is when
// it needs no quotes, else double-quoted.
func ident(name string) string {
	if plainIdent.MatchString(name) {
		return name
	}
	return pgx.Identifier{name}.Sanitize()
}
