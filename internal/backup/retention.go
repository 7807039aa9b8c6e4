package backup

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"homelab/internal/lab"
)

// PlanRetention is restic forget's policy (restic
// internal/restic/snapshot_policy.go, ApplyPolicy) applied to snaps, for
// providers that do not store their snapshots in restic (s3-mirror): the
// same keep rules give the same answer on the same snapshot times
// (TestRetentionMatchesRestic compares them with `restic forget
// --dry-run`). Snapshots are taken newest first; each keep-last/hourly/
// daily/weekly/monthly/yearly rule with a count left keeps a snapshot
// whose bucket (hour, day, ISO week, month, year of its time in its own
// zone) differs from the last one that rule kept; when a duration rule
// still has a count left at the oldest snapshot, that one is kept too;
// keep-within keeps every snapshot newer than the newest one's time minus
// the duration. IDs in protect are kept whatever the rules say
// (Protected). An empty retention is refused, as PlanPrune refuses it.
func PlanRetention(target string, snaps []Snapshot, r lab.Retention, protect []string) (PrunePlan, error) {
	plan := PrunePlan{Target: target}
	if r.Empty() {
		return plan, fmt.Errorf("target %s has no retention rules: refusing to prune", target)
	}
	list := append([]Snapshot(nil), snaps...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Time.After(list[j].Time) })
	rules := []struct {
		count    int
		bucket   func(t time.Time, nr int) int
		duration bool
	}{
		{r.KeepLast, func(_ time.Time, nr int) int { return nr }, false},
		{r.KeepHourly, func(t time.Time, _ int) int { return ((t.Year()*100+int(t.Month()))*100+t.Day())*100 + t.Hour() }, true},
		{r.KeepDaily, func(t time.Time, _ int) int { return (t.Year()*100+int(t.Month()))*100 + t.Day() }, true},
		{r.KeepWeekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }, true},
		{r.KeepMonthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }, true},
		{r.KeepYearly, func(t time.Time, _ int) int { return t.Year() }, true},
	}
	last := make([]int, len(rules))
	for i := range last {
		last[i] = -1
	}
	var within time.Time
	if r.KeepWithin != "" && len(list) > 0 {
		y, m, d, h, err := parseWithin(r.KeepWithin)
		if err != nil {
			return plan, err
		}
		within = list[0].Time.AddDate(-y, -m, -d).Add(-time.Duration(h) * time.Hour)
	}
	protected := map[string]bool{}
	for _, id := range protect {
		protected[id] = true
	}
	for nr, s := range list {
		keep := !within.IsZero() && s.Time.After(within)
		for i := range rules {
			if rules[i].count <= 0 {
				continue
			}
			if v := rules[i].bucket(s.Time, nr); v != last[i] || (rules[i].duration && nr == len(list)-1) {
				keep = true
				last[i] = v
				rules[i].count--
			}
		}
		switch {
		case keep:
			plan.Keep = append(plan.Keep, s)
		case protected[s.ID]:
			plan.Protected = append(plan.Protected, s)
		default:
			plan.Remove = append(plan.Remove, s)
		}
	}
	return plan, nil
}

var withinPattern = regexp.MustCompile(`([0-9]+)([ymdh])`)

// parseWithin parses a restic duration ("1y2m3d4h"; the lab validates it).
func parseWithin(s string) (y, m, d, h int, err error) {
	parts := withinPattern.FindAllStringSubmatch(s, -1)
	if len(parts) == 0 {
		return 0, 0, 0, 0, fmt.Errorf("bad keep_within %q", s)
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p[1])
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("bad keep_within %q: %w", s, err)
		}
		switch p[2] {
		case "y":
			y += n
		case "m":
			m += n
		case "d":
			d += n
		case "h":
			h += n
		}
	}
	return y, m, d, h, nil
}
