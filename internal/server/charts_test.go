package server

import (
	"strings"
	"testing"

	"homelab/internal/catalog"
)

// TestHistoryCharts: the page has a chart per target with history (not
// scratch, never run), with the failed backup of files marked and its
// error escaped; a run recorded later (the catalog's version changes)
// is on the next page.
func TestHistoryCharts(t *testing.T) {
	f := newFixture(t, "", fixtureJobs)
	_, body := get(t, f.url+"/")
	page := string(body)
	for _, want := range []string{
		`<h2 id="history">History</h2>`,
		`<figure><figcaption>files</figcaption><svg class="history"`,
		`aria-label="history of files: 3 backups, 1 failed, 2 drills"`,
		`aria-label="history of gitlab-db: 1 backup, 0 failed, 1 drill"`,
		`aria-label="history of photos: 1 backup, 0 failed, 2 drills"`,
		`<rect class="fail"`, `<path class="fail-mark"`, `<polyline class="duration"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(page, "history of scratch") {
		t.Error("a chart for scratch, which never ran")
	}
	addRun(t, f.store, catalog.Run{Kind: catalog.KindBackup, Target: "gitlab-db", Start: at(0, -5), End: at(0, -4), Result: catalog.ResultFailed, Error: "pg_dump: <denied>"})
	_, body = get(t, f.url+"/")
	page = string(body)
	if !strings.Contains(page, `aria-label="history of gitlab-db: 2 backups, 1 failed, 1 drill"`) || !strings.Contains(page, "pg_dump: &lt;denied&gt;") {
		t.Errorf("the new run is not charted")
	}
}
