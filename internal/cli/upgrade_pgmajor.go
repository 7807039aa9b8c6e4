package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"homelab/internal/status"
	"homelab/internal/upgrade"
)

// renderPGPlan shows the plan of a PostgreSQL major upgrade: every step,
// the mode and the space it needs.
func renderPGPlan(w io.Writer, p upgrade.Plan) {
	pg := p.Postgres
	fmt.Fprintf(w, "Upgrade %s from PostgreSQL %s to %s with pg_upgrade --%s (%s runtime)\n", p.Service, pg.Old.Major, pg.New.Major, pg.Mode, p.Runtime)
	deps := "none"
	if len(pg.Dependents) > 0 {
		deps = strings.Join(pg.Dependents, ", ")
	}
	fmt.Fprintf(w, "  1. preflight: initdb %s with %s's encoding, locale and checksums; extensions available in %s; pg_upgrade --check --%s\n", pg.New.Data, pg.Old.Data, pg.New.Major, pg.Mode)
	fmt.Fprintf(w, "     space: %s needed on %s (%s free)\n", status.IEC(pg.Space), pg.New.Data, status.IEC(pg.Free))
	if pg.Mode == "link" {
		fmt.Fprintf(w, "  2. stop dependents: %s\n", deps)
		fmt.Fprintf(w, "  3. restore point: %s\n", strings.Join(p.BackupBefore, ", "))
	} else {
		fmt.Fprintf(w, "  2. restore point: %s\n", strings.Join(p.BackupBefore, ", "))
		fmt.Fprintf(w, "  3. stop dependents: %s\n", deps)
	}
	fmt.Fprintf(w, "  4. stop PostgreSQL %s\n", pg.Old.Major)
	fmt.Fprintf(w, "  5. pg_upgrade --%s %s -> %s\n", pg.Mode, pg.Old.Data, pg.New.Data)
	fmt.Fprintf(w, "  6. carry over postgresql.conf, pg_hba.conf; set %s, start it, healthy within %s\n", pg.New.Major, p.HealthyWithin)
	fmt.Fprintf(w, "  7. start dependents: %s, each healthy\n", deps)
	fmt.Fprintf(w, "  8. vacuumdb --all --analyze-in-stages (while they serve); update_extensions.sql if pg_upgrade wrote one\n")
	fmt.Fprintf(w, "The old cluster %s is kept until homelab upgrade %s --finalize\n", pg.Old.Data, p.Service)
	for _, warning := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warning)
	}
	if pg.Free < pg.Space {
		fmt.Fprintf(w, "Warning: not enough free space for --%s: the preflight will fail\n", pg.Mode)
	}
	if len(p.Preflight) > 0 {
		fmt.Fprintln(w, "On failure: data could NOT be restored; the upgrade is refused until the restore points can be restored:")
		for _, f := range p.Preflight {
			fmt.Fprintf(w, "  %s\n", f)
		}
		return
	}
	if pg.Mode == "link" {
		fmt.Fprintf(w, "On failure: before PostgreSQL %s starts, the old cluster is started again; after, it is rebuilt from the restore point (%s), the old files kept aside\n", pg.New.Major, strings.Join(p.BackupBefore, ", "))
		return
	}
	fmt.Fprintf(w, "On failure: the new cluster is removed and PostgreSQL %s started again on the untouched old cluster, then the dependents\n", pg.Old.Major)
}

// upgradeFinalize deletes the clusters a PostgreSQL major upgrade of
// opts.Service kept (--dry-run: lists them).
func upgradeFinalize(ctx context.Context, opts *UpgradeOptions) error {
	_, u, closeFn, err := openUpgrader(ctx, opts, false)
	if err != nil {
		return err
	}
	defer closeFn()
	old, err := u.OldClusters(ctx, opts.Service)
	if err != nil {
		return err
	}
	if len(old) == 0 {
		fmt.Fprintf(opts.IO.Out, "%s: no old cluster to delete\n", opts.Service)
		return nil
	}
	for _, c := range old {
		fmt.Fprintf(opts.IO.Out, "PostgreSQL %s cluster %s (%s)\n", c.Major, c.Data, status.IEC(c.Bytes))
	}
	if opts.DryRun {
		return nil
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("Delete the old cluster of %s? Its restore points stay in the repositories", opts.Service)); err != nil {
		return err
	}
	removed, err := u.Finalize(ctx, opts.Service)
	for _, c := range removed {
		fmt.Fprintf(opts.IO.Out, "deleted %s\n", c.Data)
	}
	return err
}
