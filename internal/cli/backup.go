package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"homelab/internal/backup"
	"homelab/internal/lab"
)

// NewCmdBackup returns `homelab backup`.
func NewCmdBackup(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "backup", Short: "Back up, list, restore, drill, prune and check"})
	cmd.AddCommand(NewCmdBackupRun(f, nil), NewCmdBackupList(f, nil), NewCmdBackupRestore(f, nil),
		NewCmdBackupVerify(f, nil), NewCmdBackupPrune(f, nil), NewCmdBackupCheck(f, nil), NewCmdBackupSetup(f, nil))
	return cmd
}

// targetsOf returns the named targets, or all with --all.
func targetsOf(f *Factory, args []string, all bool) ([]string, error) {
	l, err := f.Lab()
	if err != nil {
		return nil, err
	}
	if all {
		if len(args) > 0 {
			return nil, usageErr("name targets or pass --all, not both")
		}
		return l.BackupNames(), nil
	}
	if len(args) == 0 {
		return nil, usageErr(fmt.Sprintf("name a target or pass --all (targets: %v)", l.BackupNames()))
	}
	for _, a := range args {
		if _, err := l.Backup(a); err != nil {
			return nil, usageErr(err.Error())
		}
	}
	return args, nil
}

// tally combines per-target outcomes into the command's error: any failure
// gives exit 1, otherwise any warning gives exit 3.
type tally struct{ failed, warned []string }

func (t *tally) add(name string, err error) {
	var we *backup.WarningError
	switch {
	case err == nil:
	case errors.As(err, &we):
		t.warned = append(t.warned, name)
	default:
		t.failed = append(t.failed, name)
	}
}

func (t *tally) err(what string, ctx context.Context) error {
	switch {
	case ctx.Err() != nil:
		return &silentError{err: ctx.Err(), code: ExitInterrupted}
	case len(t.failed) > 0:
		return &silentError{err: fmt.Errorf("%s failed: %v", what, t.failed), code: ExitFailed}
	case len(t.warned) > 0:
		return &silentError{err: fmt.Errorf("%s done with warnings: %v", what, t.warned), code: ExitWarnings}
	}
	return nil
}

// pgbackrestTargets names the pgbackrest targets, sorted.
func pgbackrestTargets(backups map[string]*lab.Backup) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(backups)) {
		if backups[name].Provider == lab.ProviderPgBackRest {
			out = append(out, name)
		}
	}
	return out
}
