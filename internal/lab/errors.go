package lab

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a lab file. Line and Column are 1-based;
// 0 means unknown. Field is a dotted path of map keys with list indexes
// in brackets (backups.db.drill.checks[1].sql); it is empty for syntax
// errors.
type FieldError struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
	// Err is the underlying error, if any (for example the *fs.PathError
	// when the file cannot be read), for errors.Is.
	Err error
}

// Error formats the problem as "file:line:col: field: msg", leaving out
// the parts that are unknown.
func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, usually nil.
func (e FieldError) Unwrap() error { return e.Err }

// Errors is every problem found in one lab file, sorted by line and
// column. Parse and Load return it (as error) whenever the file's content
// is not a valid lab.
type Errors struct {
	File string
	List []FieldError
}

// Error returns one line per problem.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, so errors.As can find a
// FieldError.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, fe := range e.List {
		errs[i] = fe
	}
	return errs
}
