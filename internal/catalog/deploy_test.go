package catalog_test

import (
	"path/filepath"
	"testing"
	"time"

	"homelab/internal/catalog"
)

// TestDeploys: records come back newest first, per service or all, with
// every field; a saga's records are deleted by its ID.
func TestDeploys(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	at := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	add := func(d catalog.Deploy) catalog.Deploy {
		t.Helper()
		got, err := s.AddDeploy(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := add(catalog.Deploy{Service: "web", Time: at, Kind: catalog.DeployNew, FromColor: "blue", FromVersion: "1.0.0",
		ToColor: "green", ToVersion: "1.0.5", Who: "alice", Host: "h1", Reason: "drop email", AllowContract: true, SagaID: "s1"})
	add(catalog.Deploy{Service: "api", Time: at.Add(time.Minute), Kind: catalog.DeployNew, ToColor: "blue", ToVersion: "2.0", SagaID: "s2"})
	add(catalog.Deploy{Service: "web", Time: at.Add(2 * time.Minute), Kind: catalog.DeployRollback, FromColor: "green", FromVersion: "1.0.5",
		ToColor: "blue", ToVersion: "1.0.0", Reason: "slow", SagaID: "s3"})
	h, err := s.DeployHistory(t.Context(), "web", 0)
	if err != nil || len(h) != 2 || h[0].SagaID != "s3" || h[1] != first {
		t.Fatalf("web history %+v, %v; want s3 then %+v", h, err, first)
	}
	if all, err := s.DeployHistory(t.Context(), "", 1); err != nil || len(all) != 1 || all[0].SagaID != "s3" {
		t.Errorf("newest of all %+v, %v", all, err)
	}
	if err := s.DeleteDeploys(t.Context(), "s3"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.DeployHistory(t.Context(), "web", 0); len(h) != 1 || h[0].SagaID != "s1" {
		t.Errorf("after delete %+v", h)
	}
	if _, err := s.AddDeploy(t.Context(), catalog.Deploy{Service: "web"}); err == nil {
		t.Error("a record without time, kind and color was added")
	}
}
