// Package migrations classifies SQL migrations as expand or contract, for
// blue/green deploys: while two versions of a service run against one
// database (the old color kept for a fast rollback), every migration of
// the new version must leave the schema usable by the old one (expand:
// add a nullable column, create a table, an index concurrently, a
// constraint NOT VALID); a change the old version cannot live with
// (contract: drop or rename a column or table, SET NOT NULL, change a
// type) belongs in a later release, once no color runs the old code.
//
// Statements are parsed with PostgreSQL's own grammar, through pg_query
// compiled to WebAssembly (github.com/wasilibs/go-pgquery/parser, pure
// Go: no C compiler, and no cgo even where cgo is enabled), never with
// regular expressions. The parse tree is read from pg_query's JSON form
// (ast.go) rather than through pg_query_go's protobuf types, whose package
// links the cgo parser in every build that has cgo.
package migrations

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wasilibs/go-pgquery/parser"
)

// Class is what a statement does to the schema the old version uses.
type Class string

// Classes.
const (
	// Expand: the old version keeps working (something is added, or a
	// rule is relaxed).
	Expand Class = "expand"
	// Contract: the old version may break (something it uses is dropped,
	// renamed, retyped, or a rule it may break is added).
	Contract Class = "contract"
)

// Statement is one classified statement of a migration.
type Statement struct {
	// File and Line locate it (Line from 1, of its first token).
	File string `json:"file,omitempty"`
	Line int    `json:"line"`
	// SQL is the statement's text, on one line.
	SQL   string `json:"sql"`
	Class Class  `json:"class"`
	// Why says what made the class, such as "drops column users.email".
	Why string `json:"why"`
	// Risk, when set, is a lock or rewrite risk that does not change the
	// class, such as an index built without CONCURRENTLY.
	Risk string `json:"risk,omitempty"`
}

// Classify parses sql (one migration file's text) and classifies each of
// its statements. A syntax error is an error naming the line.
func Classify(sql string) ([]Statement, error) {
	out, err := parser.ParseToJSON(sql)
	if perr := (*parser.Error)(nil); errors.As(err, &perr) {
		return nil, &SyntaxError{Line: lineAt(sql, perr.Cursorpos), Msg: perr.Message}
	}
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var tree parseResult
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		return nil, fmt.Errorf("parse: pg_query's parse tree: %w", err)
	}
	var sts []Statement
	for _, raw := range tree.Stmts {
		start, end := raw.Location, len(sql)
		if raw.Len > 0 {
			end = start + raw.Len
		}
		if start < 0 || start > end || end > len(sql) {
			return nil, fmt.Errorf("parse: statement at byte %d of %d: out of range", start, len(sql))
		}
		// The statement's own text starts after leading comments and blank
		// lines; its line is that of its first token.
		skip := leading(sql[start:end])
		st := Statement{Line: 1 + strings.Count(sql[:start+skip], "\n"), SQL: oneLine(sql[start+skip : end])}
		st.Class, st.Why, st.Risk = classify(raw.Stmt)
		sts = append(sts, st)
	}
	return sts, nil
}

// SyntaxError is a migration that PostgreSQL's grammar refuses: Msg is
// pg_query's message ("syntax error at or near \"COLUMN\""), Line the
// line (from 1) of the character it points at, 0 when it points at none.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// lineAt is the line (from 1) of the pos-th character of sql (pg_query's
// cursor position: from 1, in characters); 0 for a pos out of range.
func lineAt(sql string, pos int) int {
	if pos < 1 {
		return 0
	}
	line, n := 1, 0
	for _, r := range sql {
		if n++; n == pos {
			return line
		}
		if r == '\n' {
			line++
		}
	}
	if pos == n+1 { // at the end of the input
		return line
	}
	return 0
}

// leading is the length of the blanks and comments that start s.
func leading(s string) int {
	i := 0
	for i < len(s) {
		switch {
		case strings.ContainsRune(" \t\r\n", rune(s[i])):
			i++
		case strings.HasPrefix(s[i:], "--"):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case strings.HasPrefix(s[i:], "/*"):
			if j := strings.Index(s[i:], "*/"); j >= 0 {
				i += j + 2
			} else {
				i = len(s)
			}
		default:
			return i
		}
	}
	return i
}

// oneLine joins text's lines, dropping -- comments, for display.
func oneLine(text string) string {
	var parts []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

const (
	riskIndexLock  = "CREATE INDEX without CONCURRENTLY blocks writes to the table while it builds: on a big table, use CREATE INDEX CONCURRENTLY"
	riskDropIndex  = "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock: use DROP INDEX CONCURRENTLY"
	riskValidate   = "adding a validated constraint scans the whole table under a lock: add it NOT VALID, then VALIDATE CONSTRAINT"
	riskRewrite    = "rewrites the whole table under an ACCESS EXCLUSIVE lock"
	riskVolatile   = "a volatile default (a function call) rewrites the whole table under an ACCESS EXCLUSIVE lock"
	riskSetNotNull = "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock"
)

// classify classifies one parsed statement.
func classify(n node) (Class, string, string) {
	var (
		create   createStmt
		index    indexStmt
		drop     dropStmt
		rename   renameStmt
		alter    alterTableStmt
		truncate truncateStmt
	)
	switch {
	case n.as("CreateStmt", &create):
		return Expand, "creates table " + create.Relation.name(), ""
	case n.as("IndexStmt", &index):
		what := "creates index " + index.Idxname + " on " + index.Relation.name()
		if index.Concurrent {
			return Expand, what + " concurrently", ""
		}
		return Expand, what, riskIndexLock
	case n.as("DropStmt", &drop):
		risk := ""
		if drop.RemoveType == "OBJECT_INDEX" && !drop.Concurrent {
			risk = riskDropIndex
		}
		return Contract, "drops " + objectKind(drop.RemoveType) + " " + names(drop.Objects) + ": the old version may still use it", risk
	case n.as("RenameStmt", &rename):
		what := objectKind(rename.RenameType)
		switch rename.RenameType {
		case "OBJECT_COLUMN":
			return Contract, fmt.Sprintf("renames column %s.%s to %s: the old version uses the old name", rename.Relation.name(), rename.Subname, rename.Newname), ""
		case "OBJECT_TABCONSTRAINT", "OBJECT_INDEX", "OBJECT_TRIGGER":
			return Expand, "renames " + what + " to " + rename.Newname, ""
		}
		name := rename.Relation.name()
		if name == "" {
			name = names([]node{rename.Object})
		}
		return Contract, fmt.Sprintf("renames %s %s to %s: the old version uses the old name", what, name, rename.Newname), ""
	case n.as("AlterTableStmt", &alter):
		return alterTable(alter)
	case n.as("TruncateStmt", &truncate):
		return Contract, "truncates " + names(truncate.Relations) + ": removes data the old version has", ""
	}
	return Expand, "adds or changes no object the old version uses", ""
}

// alterTable classifies an ALTER TABLE by its most severe command: any
// contract makes it contract.
func alterTable(s alterTableStmt) (Class, string, string) {
	table := s.Relation.name()
	class, why, risk := Expand, "", ""
	for _, c := range s.Cmds {
		var cmd alterTableCmd
		if !c.as("AlterTableCmd", &cmd) {
			continue
		}
		cl, w, r := alterCmd(table, cmd)
		if cl == Contract && class != Contract || why == "" {
			class, why = cl, w
		}
		if risk == "" {
			risk = r
		}
	}
	if why == "" {
		why = "alters table " + table
	}
	return class, why, risk
}

func alterCmd(table string, c alterTableCmd) (Class, string, string) {
	col := table + "." + c.Name
	switch c.Subtype {
	case "AT_AddColumn":
		var def columnDef
		c.Def.as("ColumnDef", &def)
		col = table + "." + def.Colname
		notNull, dflt, volatile, unique := def.IsNotNull, len(def.RawDefault) > 0, false, false
		for _, cn := range def.Constraints {
			var k constraint
			cn.as("Constraint", &k)
			switch k.Contype {
			case "CONSTR_NOTNULL":
				notNull = true
			case "CONSTR_DEFAULT":
				dflt = true
				volatile = k.RawExpr.is("FuncCall")
			case "CONSTR_PRIMARY", "CONSTR_UNIQUE":
				unique = true
			}
		}
		risk := ""
		switch {
		case volatile:
			risk = riskVolatile
		case unique:
			risk = riskIndexLock
		}
		switch {
		case notNull && !dflt:
			return Contract, "adds column " + col + " NOT NULL without a default: the old version's inserts fail", risk
		case notNull:
			return Expand, "adds column " + col + " NOT NULL with a default: the old version's inserts get the default", risk
		}
		return Expand, "adds nullable column " + col, risk
	case "AT_DropColumn":
		return Contract, "drops column " + col + ": the old version may still read or write it", ""
	case "AT_SetNotNull":
		return Contract, "sets " + col + " NOT NULL: the old version may write NULLs", riskSetNotNull
	case "AT_DropNotNull":
		return Expand, "drops NOT NULL of " + col, ""
	case "AT_AlterColumnType":
		return Contract, "changes the type of " + col + ": the old version reads and writes the old type", riskRewrite
	case "AT_ColumnDefault":
		if len(c.Def) == 0 {
			return Contract, "drops the default of " + col + ": the old version's inserts may rely on it", ""
		}
		return Expand, "sets the default of " + col, ""
	case "AT_AddConstraint":
		var k constraint
		c.Def.as("Constraint", &k)
		name := k.Conname
		if name == "" {
			name = strings.ToLower(strings.TrimPrefix(k.Contype, "CONSTR_"))
		}
		switch {
		case k.SkipValidation:
			return Expand, "adds constraint " + name + " to " + table + " NOT VALID: existing rows are not checked", ""
		case k.Indexname != "":
			return Expand, "adds constraint " + name + " to " + table + " using the existing index " + k.Indexname, ""
		case k.Contype == "CONSTR_PRIMARY" || k.Contype == "CONSTR_UNIQUE":
			return Contract, "adds constraint " + name + " to " + table + ": the old version's writes may break it", riskIndexLock
		}
		return Contract, "adds validated constraint " + name + " to " + table + ": the old version's writes may break it", riskValidate
	case "AT_ValidateConstraint":
		return Expand, "validates constraint " + c.Name + " of " + table, ""
	case "AT_DropConstraint":
		return Expand, "drops constraint " + c.Name + " of " + table + ": a rule is relaxed", ""
	}
	return Expand, "alters table " + table + " (" + strings.TrimPrefix(c.Subtype, "AT_") + ")", ""
}

// objectKind is an ObjectType in words ("table", "materialized view").
func objectKind(t string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(t, "OBJECT_")), "_", " ")
}
