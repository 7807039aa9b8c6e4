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
// compiled to WebAssembly (github.com/wasilibs/go-pgquery, pure Go: the
// binary stays static and cgo-free), never with regular expressions.
package migrations

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgquery "github.com/wasilibs/go-pgquery"
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
	tree, err := pgquery.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var out []Statement
	for _, raw := range tree.GetStmts() {
		start := int(raw.GetStmtLocation())
		end := len(sql)
		if n := int(raw.GetStmtLen()); n > 0 {
			end = start + n
		}
		// The statement's own text starts after leading comments and blank
		// lines; its line is that of its first token.
		skip := leading(sql[start:end])
		st := Statement{Line: 1 + strings.Count(sql[:start+skip], "\n"), SQL: oneLine(sql[start+skip : end])}
		st.Class, st.Why, st.Risk = classify(raw.GetStmt())
		out = append(out, st)
	}
	return out, nil
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
func classify(n *pg.Node) (Class, string, string) {
	switch {
	case n.GetCreateStmt() != nil:
		return Expand, "creates table " + rel(n.GetCreateStmt().GetRelation()), ""
	case n.GetIndexStmt() != nil:
		s := n.GetIndexStmt()
		what := "creates index " + s.GetIdxname() + " on " + rel(s.GetRelation())
		if s.GetConcurrent() {
			return Expand, what + " concurrently", ""
		}
		return Expand, what, riskIndexLock
	case n.GetDropStmt() != nil:
		s := n.GetDropStmt()
		kind := objectKind(s.GetRemoveType())
		risk := ""
		if s.GetRemoveType() == pg.ObjectType_OBJECT_INDEX && !s.GetConcurrent() {
			risk = riskDropIndex
		}
		return Contract, "drops " + kind + " " + objects(s.GetObjects()) + ": the old version may still use it", risk
	case n.GetRenameStmt() != nil:
		s := n.GetRenameStmt()
		what := objectKind(s.GetRenameType())
		switch s.GetRenameType() {
		case pg.ObjectType_OBJECT_COLUMN:
			return Contract, fmt.Sprintf("renames column %s.%s to %s: the old version uses the old name", rel(s.GetRelation()), s.GetSubname(), s.GetNewname()), ""
		case pg.ObjectType_OBJECT_TABCONSTRAINT, pg.ObjectType_OBJECT_INDEX, pg.ObjectType_OBJECT_TRIGGER:
			return Expand, "renames " + what + " to " + s.GetNewname(), ""
		}
		name := rel(s.GetRelation())
		if name == "" {
			name = objects([]*pg.Node{s.GetObject()})
		}
		return Contract, fmt.Sprintf("renames %s %s to %s: the old version uses the old name", what, name, s.GetNewname()), ""
	case n.GetAlterTableStmt() != nil:
		return alterTable(n.GetAlterTableStmt())
	case n.GetTruncateStmt() != nil:
		return Contract, "truncates " + objects(n.GetTruncateStmt().GetRelations()) + ": removes data the old version has", ""
	}
	return Expand, "adds or changes no object the old version uses", ""
}

// alterTable classifies an ALTER TABLE by its most severe command: any
// contract makes it contract.
func alterTable(s *pg.AlterTableStmt) (Class, string, string) {
	table := rel(s.GetRelation())
	class, why, risk := Expand, "", ""
	for _, c := range s.GetCmds() {
		cmd := c.GetAlterTableCmd()
		if cmd == nil {
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

func alterCmd(table string, c *pg.AlterTableCmd) (Class, string, string) {
	col := table + "." + c.GetName()
	switch c.GetSubtype() {
	case pg.AlterTableType_AT_AddColumn:
		def := c.GetDef().GetColumnDef()
		col = table + "." + def.GetColname()
		notNull, dflt, volatile, unique := def.GetIsNotNull(), def.GetRawDefault() != nil, false, false
		for _, cn := range def.GetConstraints() {
			switch k := cn.GetConstraint(); k.GetContype() {
			case pg.ConstrType_CONSTR_NOTNULL:
				notNull = true
			case pg.ConstrType_CONSTR_DEFAULT:
				dflt = true
				volatile = k.GetRawExpr().GetFuncCall() != nil
			case pg.ConstrType_CONSTR_PRIMARY, pg.ConstrType_CONSTR_UNIQUE:
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
	case pg.AlterTableType_AT_DropColumn:
		return Contract, "drops column " + col + ": the old version may still read or write it", ""
	case pg.AlterTableType_AT_SetNotNull:
		return Contract, "sets " + col + " NOT NULL: the old version may write NULLs", riskSetNotNull
	case pg.AlterTableType_AT_DropNotNull:
		return Expand, "drops NOT NULL of " + col, ""
	case pg.AlterTableType_AT_AlterColumnType:
		return Contract, "changes the type of " + col + ": the old version reads and writes the old type", riskRewrite
	case pg.AlterTableType_AT_ColumnDefault:
		if c.GetDef() == nil {
			return Contract, "drops the default of " + col + ": the old version's inserts may rely on it", ""
		}
		return Expand, "sets the default of " + col, ""
	case pg.AlterTableType_AT_AddConstraint:
		k := c.GetDef().GetConstraint()
		name := k.GetConname()
		if name == "" {
			name = strings.ToLower(strings.TrimPrefix(k.GetContype().String(), "CONSTR_"))
		}
		switch {
		case k.GetSkipValidation():
			return Expand, "adds constraint " + name + " to " + table + " NOT VALID: existing rows are not checked", ""
		case k.GetIndexname() != "":
			return Expand, "adds constraint " + name + " to " + table + " using the existing index " + k.GetIndexname(), ""
		case k.GetContype() == pg.ConstrType_CONSTR_PRIMARY || k.GetContype() == pg.ConstrType_CONSTR_UNIQUE:
			return Contract, "adds constraint " + name + " to " + table + ": the old version's writes may break it", riskIndexLock
		}
		return Contract, "adds validated constraint " + name + " to " + table + ": the old version's writes may break it", riskValidate
	case pg.AlterTableType_AT_ValidateConstraint:
		return Expand, "validates constraint " + c.GetName() + " of " + table, ""
	case pg.AlterTableType_AT_DropConstraint:
		return Expand, "drops constraint " + c.GetName() + " of " + table + ": a rule is relaxed", ""
	}
	return Expand, "alters table " + table + " (" + strings.TrimPrefix(c.GetSubtype().String(), "AT_") + ")", ""
}

// rel is a relation's name, schema-qualified when it is.
func rel(r *pg.RangeVar) string {
	if r == nil {
		return ""
	}
	if r.GetSchemaname() != "" {
		return r.GetSchemaname() + "." + r.GetRelname()
	}
	return r.GetRelname()
}

// objects names a DROP's objects: dotted names (a List of Strings) or
// relations.
func objects(ns []*pg.Node) string {
	var names []string
	for _, n := range ns {
		switch {
		case n.GetList() != nil:
			var parts []string
			for _, p := range n.GetList().GetItems() {
				parts = append(parts, p.GetString_().GetSval())
			}
			names = append(names, strings.Join(parts, "."))
		case n.GetRangeVar() != nil:
			names = append(names, rel(n.GetRangeVar()))
		case n.GetString_() != nil:
			names = append(names, n.GetString_().GetSval())
		case n.GetTypeName() != nil:
			var parts []string
			for _, p := range n.GetTypeName().GetNames() {
				parts = append(parts, p.GetString_().GetSval())
			}
			names = append(names, strings.Join(parts, "."))
		}
	}
	return strings.Join(names, ", ")
}

// objectKind is an ObjectType in words ("table", "materialized view").
func objectKind(t pg.ObjectType) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(t.String(), "OBJECT_")), "_", " ")
}
