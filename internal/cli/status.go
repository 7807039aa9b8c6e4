package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"homelab/internal/status"
)

// StatusOptions are the options of homelab status.
type StatusOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
}

// NewCmdStatus returns `homelab status`.
func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IO, F: f}
	return &cobra.Command{
		Use:   "status",
		Short: "One page: service health, last backup, last restore drill and RPO of every target, TLS certificates, recent failures",
		Long: "One page: every service with its health probe's verdict (probed now, all at once, each within its timeout); per target the last backup (age, size, result), the last restore drill (age, result, RTO) and OVERDUE when the last good backup is older than the schedule allows; a pgbackrest target's recoverable window (its oldest backup's start to when the newest archived WAL reached the repository, read from pgBackRest now) and ARCHIVING STUCK when a completed WAL segment has waited longer than archive_timeout; the CA and every leaf certificate of the lab file (subject, expiry, days left; ROTATE inside its rotation window, EXPIRED, MISSING, or its issue); recent failures.\n" +
			"Exits 1 when anything is overdue or failed, a pgbackrest target's archiving is stuck, a service's probe fails, or a certificate is expiring (inside its rotation window), expired, missing or has an issue.\n\n" + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	rep, now, err := a.Status(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		err = status.RenderJSON(opts.IO.Out, rep)
	} else {
		err = status.RenderText(opts.IO.Out, rep, now)
	}
	if err == nil && !rep.Healthy {
		return &silentError{err: errNotHealthy, code: ExitFailed}
	}
	return err
}

var errNotHealthy = errors.New("the lab is not healthy")
