package catalog

import "database/sql"

// DB exposes the handle to the external tests.
func DB(s *SQLite) *sql.DB { return s.db }
