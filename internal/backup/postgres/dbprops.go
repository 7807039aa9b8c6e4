package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// dbProps are the properties of a database that live outside it, in the
// shared catalogs, so that a dump without --create (ours: pg_dump -Fc of
// one database, restored into a staging database) does not bring them:
// its grants (pg_database.datacl), its comment (pg_shdescription) and its
// settings (ALTER DATABASE ... SET and ALTER ROLE ... IN DATABASE ... SET,
// pg_db_role_setting). A database replaced by a restore keeps them, as
// pg_restore --create would restore them (PostgreSQL >= 11).
type dbProps struct {
	// explicitACL is false when datacl is null: the built-in default
	// grants (CONNECT and TEMPORARY to PUBLIC, all to the owner).
	explicitACL bool
	grants      []dbGrant
	comment     *string
	settings    []dbSetting
}

// dbGrant is one entry of aclexplode(datacl).
type dbGrant struct {
	grantee   string // "" is PUBLIC
	privilege string // CONNECT, CREATE or TEMPORARY
	grantable bool
}

// dbSetting is one row of pg_db_role_setting for the database.
type dbSetting struct {
	role   string   // "" is ALTER DATABASE ... SET, else ALTER ROLE role IN DATABASE
	config []string // name=value, as stored
}

// readDBProps reads db's grants, comment and settings.
func readDBProps(ctx context.Context, c *pgx.Conn, db string) (dbProps, error) {
	var p dbProps
	fail := func(err error) (dbProps, error) {
		return p, fmt.Errorf("read the grants, comment and settings of database %s: %w", db, err)
	}
	if err := c.QueryRow(ctx, `select datacl is not null, shobj_description(oid, 'pg_database')
		from pg_database where datname = $1`, db).Scan(&p.explicitACL, &p.comment); err != nil {
		return fail(err)
	}
	rows, err := c.Query(ctx, `select case when a.grantee = 0 then '' else pg_get_userbyid(a.grantee) end,
			a.privilege_type, a.is_grantable
		from pg_database d, aclexplode(d.datacl) with ordinality a where d.datname = $1
		order by a.ordinality`, db)
	if err != nil {
		return fail(err)
	}
	p.grants, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (g dbGrant, err error) {
		return g, r.Scan(&g.grantee, &g.privilege, &g.grantable)
	})
	if err != nil {
		return fail(err)
	}
	rows, err = c.Query(ctx, `select case when s.setrole = 0 then '' else pg_get_userbyid(s.setrole) end, s.setconfig
		from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
		where d.datname = $1 order by 1`, db)
	if err != nil {
		return fail(err)
	}
	p.settings, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (s dbSetting, err error) {
		return s, r.Scan(&s.role, &s.config)
	})
	if err != nil {
		return fail(err)
	}
	return p, nil
}

// statements returns the SQL that gives database db (a fresh one, owned
// by owner, with the default grants) the properties p. An explicit ACL is
// rebuilt from nothing: every grant to PUBLIC and to the owner is revoked
// first, so a database that was closed to PUBLIC stays closed.
func (p dbProps) statements(db, owner string) []string {
	on := " ON DATABASE " + pgx.Identifier{db}.Sanitize()
	var sql []string
	if p.explicitACL {
		sql = append(sql, "REVOKE ALL"+on+" FROM PUBLIC", "REVOKE ALL"+on+" FROM "+pgx.Identifier{owner}.Sanitize())
		for _, g := range p.grants {
			to := "PUBLIC"
			if g.grantee != "" {
				to = pgx.Identifier{g.grantee}.Sanitize()
			}
			s := "GRANT " + g.privilege + on + " TO " + to
			if g.grantable {
				s += " WITH GRANT OPTION"
			}
			sql = append(sql, s)
		}
	}
	if p.comment != nil {
		sql = append(sql, "COMMENT"+on+" IS "+quoteLiteral(*p.comment))
	}
	for _, s := range p.settings {
		alter := "ALTER DATABASE " + pgx.Identifier{db}.Sanitize()
		if s.role != "" {
			alter = "ALTER ROLE " + pgx.Identifier{s.role}.Sanitize() + " IN DATABASE " + pgx.Identifier{db}.Sanitize()
		}
		for _, kv := range s.config {
			name, value, _ := strings.Cut(kv, "=")
			sql = append(sql, alter+" SET "+pgx.Identifier{name}.Sanitize()+" TO "+settingValue(name, value))
		}
	}
	return sql
}

// applyDBProps gives db (owned by its current owner) the properties p.
func applyDBProps(ctx context.Context, c *pgx.Conn, db string, p dbProps) error {
	var owner string
	if err := c.QueryRow(ctx, "select pg_get_userbyid(datdba) from pg_database where datname = $1", db).Scan(&owner); err != nil {
		return fmt.Errorf("read the owner of database %s: %w", db, err)
	}
	for _, s := range p.statements(db, owner) {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("carry the grants, comment and settings over to the restored database (%s): %w", s, err)
		}
	}
	return nil
}

// listQuoteSettings are the settings whose stored value is a list of
// double-quoted names (GUC_LIST_QUOTE), which must be set as one literal
// per element; the list pg_dump keeps in variable_is_guc_list_quote
// (src/bin/pg_dump/dumputils.c).
var listQuoteSettings = map[string]bool{
	"local_preload_libraries":   true,
	"search_path":               true,
	"session_preload_libraries": true,
	"shared_preload_libraries":  true,
	"temp_tablespaces":          true,
	"unix_socket_directories":   true,
}

// settingValue is the SQL for the stored value of setting name, as
// pg_dump's makeAlterConfigCommand writes it: one string literal, or for
// a list setting one literal per element.
func settingValue(name, value string) string {
	if !listQuoteSettings[strings.ToLower(name)] {
		return quoteLiteral(value)
	}
	elems := splitGUCList(value)
	if len(elems) == 0 {
		return "''"
	}
	for i, e := range elems {
		elems[i] = quoteLiteral(e)
	}
	return strings.Join(elems, ", ")
}

// splitGUCList splits a stored list value such as `"$user", public` into
// its elements: comma separated, each either a double-quoted name (""
// inside is one ") or a bare word with surrounding blanks dropped; as
// SplitGUCList in PostgreSQL's src/fe_utils/string_utils.c.
func splitGUCList(s string) []string {
	var out []string
	i := 0
	skip := func() {
		for i < len(s) && strings.IndexByte(" \t\n\r\f\v", s[i]) >= 0 {
			i++
		}
	}
	skip()
	if i == len(s) {
		return nil
	}
	for {
		var b strings.Builder
		if i < len(s) && s[i] == '"' {
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						i++
					} else {
						i++
						break
					}
				}
				b.WriteByte(s[i])
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' {
				i++
			}
			b.WriteString(strings.TrimRight(s[start:i], " \t\n\r\f\v"))
		}
		out = append(out, b.String())
		skip()
		if i >= len(s) || s[i] != ',' {
			return out
		}
		i++
		skip()
	}
}
