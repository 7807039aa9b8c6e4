package catalog

import (
	"context"
	"strings"
)

// Summaries returns the Summary of every target of s: by s's own
// Summaries if s is a Lookup, else by Summarize of all its runs and
// drills (which reads the whole catalog).
func Summaries(ctx context.Context, s Store) (map[string]Summary, error) {
	if l, ok := s.(Lookup); ok {
		return l.Summaries(ctx)
	}
	runs, err := s.Runs(ctx, RunFilter{})
	if err != nil {
		return nil, err
	}
	drills, err := s.Drills(ctx, DrillFilter{})
	if err != nil {
		return nil, err
	}
	return Summarize(runs, drills), nil
}

// Summarize returns the summaries of the targets of runs and drills, both
// newest first (as Store's Runs and Drills list them). The map holds a
// target if it has a backup run, a drill or a failed run, and no other.
// The summaries hold copies: no two of their pointers share a value, and
// none points into runs or drills (TypedRuns are copies too).
func Summarize(runs []Run, drills []Drill) map[string]Summary {
	m := map[string]*Summary{}
	seen := map[typedKey]bool{} // the keys of the runs in TypedRuns
	get := func(target string) *Summary {
		s := m[target]
		if s == nil {
			s = &Summary{}
			m[target] = s
		}
		return s
	}
	for _, r := range runs {
		if r.Kind == KindBackup {
			s := get(r.Target)
			if s.LastBackup == nil {
				s.LastBackup = new(r)
			}
			if s.LastBackup.Provider == TypedProvider {
				addTyped(s, seen, r)
			}
			if s.LastGoodBackup == nil && (r.Result == ResultOK || r.Result == ResultPartial) {
				s.LastGoodBackup = new(r)
			}
		}
		if r.Result == ResultFailed {
			s := get(r.Target)
			if s.Failed == nil {
				s.Failed = map[Kind]int{}
			}
			s.Failed[r.Kind]++
		}
	}
	for _, d := range drills {
		s := get(d.Target)
		if s.LastDrill == nil {
			s.LastDrill = new(d)
		}
		if s.LastGoodDrill == nil && d.Result == ResultOK {
			s.LastGoodDrill = new(d)
		}
		if d.Result == ResultFailed {
			s.DrillsFailed++
		}
	}
	out := make(map[string]Summary, len(m))
	for target, s := range m {
		out[target] = *s
	}
	return out
}

// typedKey is what picks a run for Summary.TypedRuns: its target, its
// type's rank (typeRank) and its result.
type typedKey struct {
	target string
	rank   int
	result Result
}

// addTyped appends r, a backup run of s's target taken newest first, to
// s.TypedRuns if it is the first of its type and result (ok, partial or
// failed) of the target: what SQLite's query typedRuns selects.
func addTyped(s *Summary, seen map[typedKey]bool, r Run) {
	switch r.Result {
	case ResultOK, ResultPartial, ResultFailed:
	default:
		return
	}
	k := typedKey{r.Target, typeRank(r), r.Result}
	if k.rank == 0 || seen[k] {
		return
	}
	seen[k] = true
	s.TypedRuns = append(s.TypedRuns, r)
}

// typeRank is the rank of a backup run's type, pgbackrest.Rank of
// pgbackrest.RunType, which the catalog cannot import (a test checks
// they agree): 3 for a full backup, 2 for a diff, 1 for an incr, 0 for
// none. The type is that of the run's snapshot ID (pgBackRest's label:
// full for one ending in "F" with no "_", diff in "D", incr in "I"),
// else the one its run ID ends with (backup.TypedRunID: "-full",
// "-diff", "-incr" after at least one other "-"). typeRankSQL is the
// same in SQL.
func typeRank(r Run) int {
	id := r.SnapshotID
	switch {
	case strings.HasSuffix(id, "F") && !strings.Contains(id, "_"):
		return 3
	case strings.HasSuffix(id, "D"):
		return 2
	case strings.HasSuffix(id, "I"):
		return 1
	}
	if strings.Count(r.RunID, "-") < 2 {
		return 0
	}
	switch r.RunID[strings.LastIndexByte(r.RunID, '-')+1:] {
	case "full":
		return 3
	case "diff":
		return 2
	case "incr":
		return 1
	}
	return 0
}
