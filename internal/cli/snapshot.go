package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/app"
	"homelab/internal/catalog"
	"homelab/internal/labsnapshot"
	"homelab/internal/saga"
)

// NewCmdSnapshot returns `homelab snapshot`.
func NewCmdSnapshot(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "snapshot", Short: "Lab snapshots: every target backed up and every version recorded under one name, restored as one"})
	cmd.AddCommand(NewCmdSnapshotCreate(f, nil), NewCmdSnapshotList(f, nil), NewCmdSnapshotShow(f, nil),
		NewCmdSnapshotRestore(f, nil), NewCmdSnapshotDelete(f, nil))
	return cmd
}

// labSnapshots returns the lab snapshot manager (app.LabSnapshots) with
// its progress going to pr, if not nil; the func closes the catalog.
func labSnapshots(ctx context.Context, f *Factory, pr *upgradeProgress) (*labsnapshot.Manager, *app.App, func(), error) {
	a, err := f.App()
	if err != nil {
		return nil, nil, nil, err
	}
	m, closeFn, err := a.LabSnapshots(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if pr != nil {
		m.Progress, m.Note = pr.step, pr.note
		m.Upgrader.Note = pr.note
		if m.Deployer != nil {
			m.Deployer.Progress = pr.step
		}
	}
	return m, a, closeFn, nil
}

// resumeLabSnapshotSaga compensates the unfinished lab-snapshot saga of
// kind id names (empty: the only one of that kind no process works on),
// after confirming; what says what compensation does.
func resumeLabSnapshotSaga(ctx context.Context, f *Factory, kind, id string, yes bool, what string) error {
	io := f.IO
	m, a, closeFn, err := labSnapshots(ctx, f, newUpgradeProgress(io))
	if err != nil {
		return err
	}
	defer closeFn()
	if id == "" {
		if id, err = resumable(ctx, io, a, m.Upgrader.Journal, kind); err != nil || id == "" {
			return err
		}
	}
	rec, err := m.Upgrader.Journal.Saga(ctx, id)
	if err != nil {
		return err
	}
	if rec.Kind != kind {
		return usageErr(fmt.Sprintf("saga %s is a %s, not a %s", id, rec.Kind, kind))
	}
	fmt.Fprintln(io.ErrOut, saga.Describe(rec))
	if err := confirm(io, yes, what+"?"); err != nil {
		return err
	}
	keepGoingOnHangup()
	rec, err = m.Resume(ctx, id)
	if f.JSON {
		writeJSON(io.Out, "snapshot_resume", map[string]any{"saga": rec, "error": errString(err)})
	} else {
		fmt.Fprintln(io.Out, saga.Describe(rec))
	}
	return err
}

// noLabSnapshot makes catalog.ErrNotFound from a lab snapshot look-up of
// name a usage error (exit 2); other errors are returned as they are.
func noLabSnapshot(name string, err error) error {
	if errors.Is(err, catalog.ErrNotFound) {
		return usageErr(fmt.Sprintf("no lab snapshot %q (see homelab snapshot list)", name))
	}
	return err
}

// sagaOutcome is the one-line end of a lab-snapshot saga.
func sagaOutcome(rec saga.Record) string {
	took := ""
	if !rec.End.IsZero() {
		took = " in " + rec.End.Sub(rec.Start).Round(time.Second).String()
	}
	return fmt.Sprintf("%s (saga %s)%s", rec.State, rec.ID, took)
}

// renderMembers writes a checked lab snapshot's members, one a line.
func renderMembers(w io.Writer, tty bool, c labsnapshot.Checked) {
	for _, mem := range c.Members {
		state := "present"
		switch {
		case mem.Error != "":
			state = "UNCHECKED: " + mem.Error
		case !mem.Exists:
			state = "MISSING from repository " + mem.Repository
		case mem.Drilled:
			state = "present, drilled"
		}
		fmt.Fprintf(w, "  %s %-16s %s  %9s  %6d files  %s\n", mark(tty, mem.Exists), mem.Target, short(mem.SnapshotID), size(mem.Bytes), mem.Files, state)
	}
}
