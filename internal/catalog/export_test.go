package catalog

import (
	"database/sql"
	"fmt"
	"slices"
)

// DB exposes the handle to the external tests.
func DB(s *SQLite) *sql.DB { return s.db }

// SummaryQueries are the queries of SQLite.Summaries, and TypedRuns'.
var SummaryQueries = map[string]string{
	"newestRuns": newestRuns, "newestDrills": newestDrills, "failureCounts": failureCounts,
	"typedBackups": typedBackups, "typedRuns": typedRuns,
}

// TypeRank is typeRank.
var TypeRank = typeRank

// TypeRankSQL is typeRankSQL, the expression of the index runs_backup_type.
const TypeRankSQL = typeRankSQL

// MigrationVersions are the versions of the embedded migration files and
// the Go migrations, ascending (a version reserved by another branch may
// be missing).
func MigrationVersions() []int64 {
	ents, err := migrationFiles.ReadDir(migrationsDir)
	if err != nil {
		panic(err)
	}
	var vs []int64
	for _, e := range ents {
		var v int64
		if _, err := fmt.Sscanf(e.Name(), "%05d_", &v); err == nil {
			vs = append(vs, v)
		}
	}
	vs = append(vs, moveSamplesVersion)
	slices.Sort(vs)
	return vs
}
