package catalog

import "context"

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
// none points into runs or drills.
func Summarize(runs []Run, drills []Drill) map[string]Summary {
	m := map[string]*Summary{}
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
				if r.Provider == TypedProvider {
					s.Backups = []Run{}
				}
			}
			if s.Backups != nil && len(s.Backups) < TypedBackups {
				s.Backups = append(s.Backups, r)
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
