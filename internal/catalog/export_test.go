package catalog

import "database/sql"

// DB exposes the handle to the external tests.
func DB(s *SQLite) *sql.DB { return s.db }

// SummaryQueries are the queries of SQLite.Summaries.
var SummaryQueries = map[string]string{
	"newestRuns": newestRuns, "newestDrills": newestDrills, "failureCounts": failureCounts,
}
