package status

import (
	"fmt"
	"html"
	"slices"
	"strings"
	"time"

	"homelab/internal/catalog"
)

// Chart geometry, in SVG user units (CSS pixels at scale 1).
const (
	chartW     = 300
	chartH     = 64
	chartPad   = 6  // left and right
	chartTop   = 4  // above the tallest bar
	chartBase  = 44 // the bars' and the line's base line
	chartDrill = 55 // the drills' row
	barW       = 5
)

// HistorySVG draws a target's recent history as a small SVG: its backup
// runs (runs, any order) as bars as tall as the bytes they read, with
// failed runs as full-height bars of class "fail", their durations as a
// line, and its drills (drills, any order) as dots under them, as large
// as their time to restore, failed ones as crosses. Time runs left to
// right over the span of all of them. Every mark has a <title> saying
// what it is. Colours come from the page's CSS (classes size, fail,
// duration, drill); the markup is self-contained and escaped. Empty
// history gives "".
func HistorySVG(target string, runs []catalog.Run, drills []catalog.Drill, loc *time.Location) string {
	runs = slices.Clone(runs)
	drills = slices.Clone(drills)
	slices.SortFunc(runs, func(a, b catalog.Run) int { return a.Start.Compare(b.Start) })
	slices.SortFunc(drills, func(a, b catalog.Drill) int { return a.Start.Compare(b.Start) })
	if len(runs) == 0 && len(drills) == 0 {
		return ""
	}
	var t0, t1 time.Time
	see := func(t time.Time) {
		if t0.IsZero() || t.Before(t0) {
			t0 = t
		}
		if t.After(t1) {
			t1 = t
		}
	}
	var maxBytes int64
	var maxDur, maxRTO time.Duration
	failed := 0
	for _, r := range runs {
		see(r.Start)
		maxBytes = max(maxBytes, r.Bytes)
		if !r.End.IsZero() {
			maxDur = max(maxDur, r.End.Sub(r.Start))
		}
		if r.Result == catalog.ResultFailed {
			failed++
		}
	}
	for _, d := range drills {
		see(d.Start)
		maxRTO = max(maxRTO, d.RTO)
	}
	x := func(t time.Time) float64 {
		if !t1.After(t0) {
			return chartW / 2
		}
		return chartPad + barW/2.0 + float64(t.Sub(t0))/float64(t1.Sub(t0))*(chartW-2*chartPad-barW)
	}
	when := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04") }
	var b strings.Builder
	label := fmt.Sprintf("history of %s: %d backup%s, %d failed, %d drill%s", target, len(runs), plural(len(runs)), failed, len(drills), plural(len(drills)))
	fmt.Fprintf(&b, `<svg class="history" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		chartW, chartH, chartW, chartH, html.EscapeString(label))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(label))
	fmt.Fprintf(&b, `<line class="axis" x1="0" y1="%d" x2="%d" y2="%d"/>`, chartBase, chartW, chartBase)
	var line []string
	for _, r := range runs {
		cx := x(r.Start)
		dur := "running"
		if !r.End.IsZero() {
			dur = ShortDuration(r.End.Sub(r.Start))
		}
		title := fmt.Sprintf("backup %s: %s, %s in %s", when(r.Start), resultText(r.Result), IEC(r.Bytes), dur)
		if r.Result == catalog.ResultFailed {
			title = fmt.Sprintf("backup %s: FAILED: %s", when(r.Start), oneLine(r.Error))
			fmt.Fprintf(&b, `<rect class="fail" x="%.1f" y="%d" width="%d" height="%d"><title>%s</title></rect>`,
				cx-barW/2.0, chartTop, barW, chartBase-chartTop, html.EscapeString(truncate(title, 200)))
			continue
		}
		h := 1.0
		if maxBytes > 0 {
			h = max(1, float64(r.Bytes)/float64(maxBytes)*(chartBase-chartTop))
		}
		fmt.Fprintf(&b, `<rect class="size" x="%.1f" y="%.1f" width="%d" height="%.1f"><title>%s</title></rect>`,
			cx-barW/2.0, chartBase-h, barW, h, html.EscapeString(title))
		if !r.End.IsZero() && maxDur > 0 {
			line = append(line, fmt.Sprintf("%.1f,%.1f", cx, chartBase-float64(r.End.Sub(r.Start))/float64(maxDur)*(chartBase-chartTop)))
		}
	}
	if len(line) > 1 {
		fmt.Fprintf(&b, `<polyline class="duration" points="%s"><title>backup duration, longest %s</title></polyline>`,
			strings.Join(line, " "), ShortDuration(maxDur))
	}
	for _, d := range drills {
		cx := x(d.Start)
		if d.Result == catalog.ResultFailed {
			title := fmt.Sprintf("drill %s: FAILED: %s", when(d.Start), oneLine(d.Error))
			fmt.Fprintf(&b, `<path class="fail-mark" d="M%.1f %d l6 6 m0 -6 l-6 6"><title>%s</title></path>`,
				cx-3, chartDrill-3, html.EscapeString(truncate(title, 200)))
			continue
		}
		r := 2.0
		if maxRTO > 0 {
			r = 2 + 3*float64(d.RTO)/float64(maxRTO)
		}
		fmt.Fprintf(&b, `<circle class="drill" cx="%.1f" cy="%d" r="%.1f"><title>drill %s: %s, restored in %s</title></circle>`,
			cx, chartDrill, r, when(d.Start), resultText(d.Result), ShortDuration(d.RTO))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
