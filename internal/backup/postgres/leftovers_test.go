package postgres

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// TestDropLeftovers: the drill databases a killed drill of the target
// left are dropped by the next drill (they stayed forever before); those
// of another target, with a name that starts the same, and one in use
// are left; a replacing restore drops the <db>_homelab_old_* a restore
// killed after its swap left.
func TestDropLeftovers(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	c := conn{src: lab.Source{Host: pg.Host, Port: pg.Port, User: pg.User}, password: pg.Password}
	admin, err := c.connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	dead := DrillDatabase("db", "20261201T020000Z-0000abcd")
	inUse := DrillDatabase("db", "20261201T030000Z-0000beef")
	otherTarget := DrillDatabase("db-x", "20261201T020000Z-0000abcd")
	notADrill := "homelab_drill_db_notes"
	for _, db := range []string{dead, inUse, otherTarget, notADrill, "app", "app_homelab_old_20261201t020000", "apple_homelab_old_20261201t020000"} {
		if err := createDB(ctx, admin, db, ""); err != nil {
			t.Fatal(err)
		}
	}
	busy, err := c.connect(ctx, inUse)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close(ctx)

	if left := dropDeadDrills(ctx, admin, "db"); len(left) != 0 {
		t.Errorf("leftovers not removed: %v", left)
	}
	if err := dropOld(ctx, admin, "app"); err != nil {
		t.Fatal(err)
	}
	rows, err := admin.Query(ctx, "select datname from pg_database")
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{dead, "app_homelab_old_20261201t020000"} {
		if slices.Contains(dbs, db) {
			t.Errorf("%s was not dropped", db)
		}
	}
	for _, db := range []string{inUse, otherTarget, notADrill, "app", "apple_homelab_old_20261201t020000"} {
		if !slices.Contains(dbs, db) {
			t.Errorf("%s was dropped", db)
		}
	}
}
