package status

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
)

// TestKeptClusters: a PostgreSQL server with clusters of 15 and 17 on
// disk runs 17 and keeps 15 until --finalize; one with a single cluster
// keeps none. Both renderers show it; health is unchanged.
func TestKeptClusters(t *testing.T) {
	dir := t.TempDir()
	clusters(t, filepath.Join(dir, "db"), "15", "17")
	bins := map[string]string{"15": "/b/15", "17": "/b/17"}
	l := &lab.Lab{Services: map[string]*lab.Service{
		"db":    {Name: "db", Postgres: &lab.PostgresServer{DataDir: dir + "/db/{{.Major}}", BinDirs: bins}},
		"other": {Name: "other", Postgres: &lab.PostgresServer{DataDir: dir + "/other/{{.Major}}", BinDirs: bins}},
		"web":   {Name: "web"},
	}}
	r := Report{Healthy: true}
	r.AddKeptClusters(l)
	if len(r.KeptClusters) != 1 || r.KeptClusters[0] != (KeptCluster{Service: "db", Major: "15", Data: dir + "/db/15", Running: "17", Finalize: "homelab upgrade db --finalize"}) {
		t.Fatalf("kept %+v", r.KeptClusters)
	}
	if !r.Healthy {
		t.Fatal("a kept cluster made the report unhealthy")
	}
	var text, js bytes.Buffer
	if err := RenderText(&text, r, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "db: PostgreSQL 15 cluster "+dir+"/db/15 kept after the upgrade to 17\n  delete it with: homelab upgrade db --finalize") {
		t.Fatalf("text:\n%s", text.String())
	}
	if err := RenderJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"kept_clusters":[{"service":"db","major":"15"`) {
		t.Fatalf("json: %s", js.String())
	}
}

// TestKeptClustersUnfinished: while an upgrade of the server is
// unfinished, its newest cluster may be the one being made (the old one
// still serving): no cluster is shown as kept, nor --finalize offered.
func TestKeptClustersUnfinished(t *testing.T) {
	dir := t.TempDir()
	clusters(t, filepath.Join(dir, "db"), "15", "17")
	l := &lab.Lab{Services: map[string]*lab.Service{
		"db": {Name: "db", Postgres: &lab.PostgresServer{DataDir: dir + "/db/{{.Major}}", BinDirs: map[string]string{"15": "/b/15", "17": "/b/17"}}},
	}}
	r := Report{Healthy: true, Unfinished: []Unfinished{{ID: "s1", Kind: "upgrade", Subject: "db"}}}
	r.AddKeptClusters(l)
	if len(r.KeptClusters) != 0 {
		t.Fatalf("kept during an unfinished upgrade: %+v", r.KeptClusters)
	}
}

// clusters makes dir/M holding a PG_VERSION of M for each major M.
func clusters(t *testing.T, dir string, majors ...string) {
	t.Helper()
	for _, m := range majors {
		if err := os.MkdirAll(filepath.Join(dir, m), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, m, "PG_VERSION"), []byte(m+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
