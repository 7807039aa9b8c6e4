package status

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"homelab/internal/catalog"
)

// TestHistorySVG: three backups (one failed, with markup in its error),
// two drills (one failed): well-formed SVG with a bar per good run as
// tall as its bytes, a full-height failure mark, the duration line, a dot
// per good drill and a cross per failed one, each with its title.
func TestHistorySVG(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	runs := []catalog.Run{
		{Start: t0.Add(2 * day), End: t0.Add(2*day + 4*time.Minute), Bytes: 100 << 20, Result: catalog.ResultOK},
		{Start: t0, End: t0.Add(2 * time.Minute), Bytes: 50 << 20, Result: catalog.ResultOK},
		{Start: t0.Add(day), End: t0.Add(day + time.Minute), Result: catalog.ResultFailed, Error: `restic: <b>"denied"</b>`},
	}
	drills := []catalog.Drill{
		{Start: t0.Add(2*day + time.Hour), RTO: 90 * time.Second, Result: catalog.ResultOK},
		{Start: t0.Add(day + time.Hour), Result: catalog.ResultFailed, Error: "check failed"},
	}
	svg := HistorySVG("db", runs, drills, time.UTC)
	counts := map[string]int{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "class" {
					counts[se.Name.Local+"."+a.Value]++
				}
			}
		}
	}
	want := map[string]int{"rect.size": 2, "rect.fail": 1, "polyline.duration": 1, "circle.drill": 1, "path.fail-mark": 1, "svg.history": 1, "line.axis": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d, want %d (%v)", k, counts[k], n, counts)
		}
	}
	for _, s := range []string{
		`aria-label="history of db: 3 backups, 1 failed, 2 drills"`,
		// The newest run is the tallest bar: 40 units above the base line;
		// the oldest is half as tall, at the left edge.
		`y="4.0" width="5" height="40.0"><title>backup 2026-11-22 02:00: ok, 100 MiB in 4m0s</title></rect>`,
		`<rect class="size" x="6.0" y="24.0" width="5" height="20.0">`,
		`<rect class="fail" x="`, `" y="4" width="5" height="40">`,
		`backup 2026-11-21 02:00: FAILED: restic: &lt;b&gt;&#34;denied&#34;&lt;/b&gt;`,
		`<title>drill 2026-11-22 03:00: ok, restored in 1m30s</title>`,
		`drill 2026-11-21 03:00: FAILED: check failed`,
	} {
		if !strings.Contains(svg, s) {
			t.Errorf("svg lacks %s:\n%s", s, svg)
		}
	}
	if HistorySVG("db", nil, nil, time.UTC) != "" {
		t.Error("an empty history is drawn")
	}
}
