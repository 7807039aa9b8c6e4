package backup_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/lab"
	"homelab/internal/restic"
)

// TestRetentionMatchesRestic: PlanRetention (the keep rules of providers
// that do not store in restic) gives restic forget's answer. A real
// repository holds snapshots at the table's times (restic backup --time);
// for every policy, restic forget --dry-run (through the files provider's
// PlanPrune) and PlanRetention on the same snapshots keep the same ones.
func TestRetentionMatchesRestic(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n    retention: {keep_last: 1}\n", src))
	ctx := context.Background()
	tgt, p, err := e.M.Target(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	times := []string{
		"2024-12-30 08:00", "2025-01-02 09:00", "2025-02-14 10:00", "2025-03-01 00:30",
		"2025-06-30 23:59", "2025-07-01 00:00", "2025-12-29 12:00", "2026-01-01 01:00",
		"2026-01-01 01:30", "2026-01-01 02:10", "2026-01-02 12:00", "2026-01-04 23:00",
		"2026-01-05 00:10", "2026-01-05 18:00", "2026-01-12 12:00", "2026-01-13 06:00",
		"2026-01-13 07:00", "2026-01-14 12:00", "2026-01-14 12:40",
	}
	for i, s := range times {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tgt.Repo.Backup(ctx, restic.BackupOptions{Paths: []string{src}, Tags: tgt.RunTags(fmt.Sprint("r", i)), Time: tm}, nil); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := p.List(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != len(times) {
		t.Fatalf("%d snapshots, want %d", len(snaps), len(times))
	}
	for _, r := range []lab.Retention{
		{KeepLast: 1}, {KeepLast: 5}, {KeepLast: 50},
		{KeepHourly: 4}, {KeepDaily: 3}, {KeepDaily: 30},
		{KeepWeekly: 3}, {KeepWeekly: 20}, {KeepMonthly: 2}, {KeepMonthly: 12}, {KeepYearly: 1}, {KeepYearly: 5},
		{KeepLast: 2, KeepDaily: 3, KeepWeekly: 2, KeepMonthly: 3},
		{KeepLast: 3, KeepWeekly: 4, KeepMonthly: 6, KeepYearly: 2},
		{KeepWithin: "2d"}, {KeepWithin: "1m"}, {KeepWithin: "1y"}, {KeepWithin: "12h", KeepMonthly: 2},
	} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			saved := e.Lab.Backups["files"].Retention
			e.Lab.Backups["files"].Retention = r
			defer func() { e.Lab.Backups["files"].Retention = saved }()
			want, err := p.PlanPrune(ctx, tgt, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := backup.PlanRetention("files", snaps, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if w, g := times0(want.Keep), times0(got.Keep); !slices.Equal(w, g) {
				t.Errorf("keep:\nrestic forget: %v\nPlanRetention: %v", w, g)
			}
			if len(got.Keep)+len(got.Remove) != len(times) {
				t.Errorf("keep %d + remove %d != %d", len(got.Keep), len(got.Remove), len(times))
			}
		})
	}
	t.Run("protect", func(t *testing.T) {
		plan, err := backup.PlanRetention("files", snaps, lab.Retention{KeepLast: 1}, []string{snaps[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Protected) != 1 || plan.Protected[0].ID != snaps[0].ID || len(plan.Remove) != len(times)-2 {
			t.Fatalf("protected %v, removes %d", times0(plan.Protected), len(plan.Remove))
		}
		if _, err := backup.PlanRetention("files", snaps, lab.Retention{}, nil); err == nil {
			t.Fatal("an empty retention was not refused")
		}
	})
}

// times0 is the sorted times of snaps, for comparing plans.
func times0(snaps []backup.Snapshot) []string {
	var out []string
	for _, s := range snaps {
		out = append(out, s.Time.Format("2006-01-02 15:04"))
	}
	slices.Sort(out)
	return out
}
