package migrations

import (
	"encoding/json"
	"strings"
)

// The parts of pg_query's JSON parse tree that classify reads: the same
// tree as pg_query_go's protobuf types (pg_query.proto), where a Node is
// an object with one key, its type ({"ColumnDef": {...}}), enums are their
// names ("AT_DropColumn") and fields keep pg_query's JSON names (some
// snake_case, some camelCase). Fields left out are not needed here.

// parseResult is the whole tree: the statements, each with its byte
// location and length in the text (0 length: to the end).
type parseResult struct {
	Stmts []struct {
		Stmt     node `json:"stmt"`
		Location int  `json:"stmt_location"`
		Len      int  `json:"stmt_len"`
	} `json:"stmts"`
}

// node is a Node: one key, the node's type, holding its fields.
type node map[string]json.RawMessage

// as decodes the node into v when it is of type kind.
func (n node) as(kind string, v any) bool {
	raw, ok := n[kind]
	return ok && json.Unmarshal(raw, v) == nil
}

// is reports whether the node is of type kind.
func (n node) is(kind string) bool { _, ok := n[kind]; return ok }

type rangeVar struct {
	Schemaname string `json:"schemaname"`
	Relname    string `json:"relname"`
}

// name is the relation's name, schema-qualified when it is.
func (r rangeVar) name() string {
	if r.Schemaname != "" {
		return r.Schemaname + "." + r.Relname
	}
	return r.Relname
}

type createStmt struct {
	Relation rangeVar `json:"relation"`
}

type indexStmt struct {
	Idxname    string   `json:"idxname"`
	Relation   rangeVar `json:"relation"`
	Concurrent bool     `json:"concurrent"`
}

type dropStmt struct {
	Objects    []node `json:"objects"`
	RemoveType string `json:"removeType"`
	Concurrent bool   `json:"concurrent"`
}

type renameStmt struct {
	RenameType string   `json:"renameType"`
	Relation   rangeVar `json:"relation"`
	Object     node     `json:"object"`
	Subname    string   `json:"subname"`
	Newname    string   `json:"newname"`
}

type alterTableStmt struct {
	Relation rangeVar `json:"relation"`
	Cmds     []node   `json:"cmds"`
}

type alterTableCmd struct {
	Subtype string `json:"subtype"`
	Name    string `json:"name"`
	Def     node   `json:"def"`
}

type columnDef struct {
	Colname     string          `json:"colname"`
	IsNotNull   bool            `json:"is_not_null"`
	RawDefault  json.RawMessage `json:"raw_default"`
	Constraints []node          `json:"constraints"`
}

type constraint struct {
	Contype        string `json:"contype"`
	Conname        string `json:"conname"`
	SkipValidation bool   `json:"skip_validation"`
	Indexname      string `json:"indexname"`
	RawExpr        node   `json:"raw_expr"`
}

type truncateStmt struct {
	Relations []node `json:"relations"`
}

// names names a DROP's or a TRUNCATE's objects: dotted names (a List of
// Strings), type names or relations.
func names(ns []node) string {
	var out []string
	for _, n := range ns {
		var (
			list struct {
				Items []node `json:"items"`
			}
			typ struct {
				Names []node `json:"names"`
			}
			rv rangeVar
			s  struct {
				Sval string `json:"sval"`
			}
		)
		switch {
		case n.as("List", &list):
			out = append(out, dotted(list.Items))
		case n.as("TypeName", &typ):
			out = append(out, dotted(typ.Names))
		case n.as("RangeVar", &rv):
			out = append(out, rv.name())
		case n.as("String", &s):
			out = append(out, s.Sval)
		}
	}
	return strings.Join(out, ", ")
}

// dotted joins a list of String nodes with dots ("public.users").
func dotted(ns []node) string {
	var parts []string
	for _, n := range ns {
		var s struct {
			Sval string `json:"sval"`
		}
		if n.as("String", &s) {
			parts = append(parts, s.Sval)
		}
	}
	return strings.Join(parts, ".")
}
