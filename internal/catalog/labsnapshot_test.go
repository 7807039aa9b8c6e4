package catalog_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"homelab/internal/catalog"
)

func TestLabSnapshots(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	before := catalog.LabSnapshot{Name: "before", Note: "risky", State: catalog.LabSnapshotCreating, SagaID: "saga-1",
		Created: t0, LabFile: "name: lab\n", Versions: map[string]string{"app": "1.0.0"},
		Colors: map[string]catalog.ServingColor{"web": {Color: "blue", Version: "1.0.5"}}, Certs: map[string]string{"ca": "ab12"}}
	if err := s.CreateLabSnapshot(ctx, before); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLabSnapshot(ctx, before); !errors.Is(err, catalog.ErrExists) {
		t.Errorf("second create = %v, want ErrExists", err)
	}
	files := catalog.LabSnapshotMember{Target: "files", Repository: "local", SnapshotID: "f1", Time: t0.Add(time.Second), Bytes: 10, Files: 2}
	db := catalog.LabSnapshotMember{Target: "db", Repository: "local", SnapshotID: "d1", Time: t0.Add(2 * time.Second), Bytes: 20, Files: 1}
	for _, m := range []catalog.LabSnapshotMember{files, db} {
		if err := s.AddLabSnapshotMember(ctx, "before", m); err != nil {
			t.Fatal(err)
		}
	}
	files.SnapshotID = "f2" // a member taken again replaces the first
	if err := s.AddLabSnapshotMember(ctx, "before", files); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLabSnapshotMember(ctx, "nothing", files); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("member of an unknown lab snapshot = %v, want ErrNotFound", err)
	}
	if err := s.FinishLabSnapshot(ctx, "before", catalog.LabSnapshotComplete, t0.Add(time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.LabSnapshot(ctx, "before")
	if err != nil {
		t.Fatal(err)
	}
	want := before
	want.State, want.Finished, want.Members = catalog.LabSnapshotComplete, t0.Add(time.Minute), []catalog.LabSnapshotMember{db, files}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LabSnapshot:\n got %+v\nwant %+v", got, want)
	}

	failed := catalog.LabSnapshot{Name: "failed", State: catalog.LabSnapshotIncomplete, Created: t0.Add(time.Hour)}
	if err := s.CreateLabSnapshot(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLabSnapshotMember(ctx, "failed", catalog.LabSnapshotMember{Target: "files", Repository: "local", SnapshotID: "f3"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.LabSnapshotList(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "failed" || list[1].Name != "before" || list[1].LabFile != "" {
		t.Errorf("LabSnapshotList: %+v, want failed then before, without lab files", list)
	}
	if one, _ := s.LabSnapshotList(ctx, 1); len(one) != 1 || one[0].Name != "failed" {
		t.Errorf("LabSnapshotList(1) = %+v, want the newest", one)
	}
	// Retention keeps the members of complete (and creating) lab
	// snapshots only.
	if held := catalog.HeldMembers(list, "files"); !reflect.DeepEqual(held, map[string][]string{"f2": {"before"}}) {
		t.Errorf("HeldMembers(files) = %v, want f2 held by before", held)
	}
	if err := s.DeleteLabSnapshot(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLabSnapshot(ctx, "before"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	if _, err := s.LabSnapshot(ctx, "before"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("deleted lab snapshot: %v, want ErrNotFound", err)
	}
}
