package migrations_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/migrations"
	"homelab/internal/version"
)

// TestClassify is the table of migrations and their classes, with the
// tricky ones: NOT NULL with and without a default, an index without
// CONCURRENTLY (expand, with a lock risk), constraints with and without
// NOT VALID.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		sql   string
		class migrations.Class
		risk  bool
	}{
		{"CREATE TABLE audit (id bigint PRIMARY KEY, body text)", migrations.Expand, false},
		{"ALTER TABLE users ADD COLUMN nickname text", migrations.Expand, false},
		{"ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true", migrations.Expand, false},
		{"ALTER TABLE users ADD COLUMN created timestamptz NOT NULL DEFAULT now()", migrations.Expand, true},
		{"ALTER TABLE users ADD COLUMN tenant int NOT NULL", migrations.Contract, false},
		{"CREATE INDEX CONCURRENTLY users_email ON users (email)", migrations.Expand, false},
		{"CREATE INDEX users_email ON users (email)", migrations.Expand, true},
		{"ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID", migrations.Expand, false},
		{"ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)", migrations.Contract, true},
		{"ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID", migrations.Expand, false},
		{"ALTER TABLE orders VALIDATE CONSTRAINT positive", migrations.Expand, false},
		{"ALTER TABLE users ALTER COLUMN nickname DROP NOT NULL", migrations.Expand, false},
		{"ALTER TABLE users DROP COLUMN email", migrations.Contract, false},
		{"ALTER TABLE users RENAME COLUMN email TO mail", migrations.Contract, false},
		{"ALTER TABLE users RENAME TO people", migrations.Contract, false},
		{"DROP TABLE audit", migrations.Contract, false},
		{"DROP INDEX users_email", migrations.Contract, true},
		{"ALTER TABLE users ALTER COLUMN email SET NOT NULL", migrations.Contract, true},
		{"ALTER TABLE users ALTER COLUMN id TYPE bigint", migrations.Contract, true},
		{"ALTER TABLE users ALTER COLUMN active DROP DEFAULT", migrations.Contract, false},
		{"ALTER TABLE users ADD COLUMN a text, DROP COLUMN b", migrations.Contract, false},
		{"TRUNCATE audit", migrations.Contract, false},
		{"UPDATE users SET nickname = name WHERE nickname IS NULL", migrations.Expand, false},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			sts, err := migrations.Classify(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if len(sts) != 1 {
				t.Fatalf("%d statements, want 1", len(sts))
			}
			s := sts[0]
			if s.Class != tc.class || (s.Risk != "") != tc.risk {
				t.Errorf("class %s (%s), risk %q; want %s, risk %t", s.Class, s.Why, s.Risk, tc.class, tc.risk)
			}
		})
	}
}

// TestClassifyLines: statements of a file are located by their first
// token's line, and a syntax error is an error.
func TestClassifyLines(t *testing.T) {
	sts, err := migrations.Classify("-- add\nALTER TABLE t ADD COLUMN a int;\n\n-- and drop\nALTER TABLE t\n  DROP COLUMN b;\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 || sts[0].Line != 2 || sts[1].Line != 5 || sts[1].SQL != "ALTER TABLE t DROP COLUMN b;" && sts[1].SQL != "ALTER TABLE t DROP COLUMN b" {
		t.Errorf("statements %+v", sts)
	}
	if _, err := migrations.Classify("ALTER TABLE t DROP COLUMN"); err == nil {
		t.Error("a syntax error parsed")
	}
	// A syntax error names the line of the token it is at (pg_query's
	// cursor), past comments and multi-byte characters.
	for sql, line := range map[string]int{
		"ALTER TABLE t DROP COLUMN": 1,
		"-- é\nALTER TABLE t ADD COLUMN a int;\n\nALTER TABLE t\n  DROP COLUMN;\n": 5,
		"CREATE TABLE t (a int);\nSELEC 1;\n":                                      2,
	} {
		_, err := migrations.Classify(sql)
		var se *migrations.SyntaxError
		if !errors.As(err, &se) || se.Line != line || !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: syntax error", line)) {
			t.Errorf("%q: %v; want a syntax error at line %d", sql, err, line)
		}
	}
}

// TestCheck reads release directories after since up to until, oldest
// first, skipping down migrations.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1.0.0/001_init.sql", "CREATE TABLE users (id int, email text);")
	write("1.1.0/001_nick.sql", "ALTER TABLE users ADD COLUMN nick text;")
	write("1.1.0/001_nick.down.sql", "ALTER TABLE users DROP COLUMN nick;")
	write("1.10.0/001_drop.sql", "ALTER TABLE users DROP COLUMN email;")
	write("README", "not a release")
	rs, err := migrations.Check(dir, version.MustParse("1.0.0"), version.Version{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Version != "1.1.0" || rs[1].Version != "1.10.0" || len(rs[0].Statements) != 1 {
		t.Fatalf("releases %+v", rs)
	}
	c := migrations.Contracts(rs)
	if len(c) != 1 || !strings.HasSuffix(c[0].File, "001_drop.sql") || c[0].Line != 1 {
		t.Errorf("contracts %+v", c)
	}
	rs, err = migrations.Check(dir, version.MustParse("1.0.0"), version.MustParse("1.1.0"))
	if err != nil || len(rs) != 1 || len(migrations.Contracts(rs)) != 0 {
		t.Errorf("up to 1.1.0: %+v, %v", rs, err)
	}
	write("1.2.0/bad.sql", "CREATE TABLE a (id int);\nALTER TABLE")
	if _, err := migrations.Check(dir, version.Version{}, version.Version{}); err == nil || !strings.Contains(err.Error(), "bad.sql:2: syntax error") {
		t.Errorf("bad file: %v; want file:line", err)
	}
}

// TestClassifyWhy: the reason names the objects as written, schema and
// all.
func TestClassifyWhy(t *testing.T) {
	for sql, want := range map[string]string{
		"DROP TABLE x.audit, b":                      "drops table x.audit, b: the old version may still use it",
		"DROP TYPE mood":                             "drops type mood: the old version may still use it",
		"ALTER TABLE app.users RENAME COLUMN a TO b": "renames column app.users.a to b: the old version uses the old name",
		"TRUNCATE audit, x.log":                      "truncates audit, x.log: removes data the old version has",
		"ALTER TABLE t ADD CONSTRAINT pk PRIMARY KEY USING INDEX t_idx": "adds constraint pk to t using the existing index t_idx",
		"ALTER TABLE t ADD CHECK (a > 0)":                               "adds validated constraint check to t: the old version's writes may break it",
	} {
		sts, err := migrations.Classify(sql)
		if err != nil || len(sts) != 1 || sts[0].Why != want {
			t.Errorf("%s: %+v, %v; want %q", sql, sts, err, want)
		}
	}
}
