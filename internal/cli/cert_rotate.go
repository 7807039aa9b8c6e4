package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"homelab/internal/certs"
)

// CertRotateOptions are the options of homelab cert rotate.
type CertRotateOptions struct {
	IO     *IOStreams
	F      *Factory
	Names  []string
	Force  bool
	DryRun bool
	Yes    bool
	JSON   bool
}

// NewCmdCertRotate returns `homelab cert rotate`.
func NewCmdCertRotate(f *Factory, runF func(*CertRotateOptions) error) *cobra.Command {
	opts := &CertRotateOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "rotate [name...] [--force] [--dry-run] [--yes]",
		Short: "Re-issue leaves inside their rotation window: swap, reload, verify, roll back on failure",
		Long: `Rotate the named leaves (default: all) that are due: expired, inside their
rotation window, signed by a previous CA, or out of date with the lab file
(SANs, bundle); --force rotates them whatever their state. For each:

  1. a new key and certificate (same SANs) are issued and checked (the key
     matches the certificate, the chain verifies) before anything is touched;
  2. the current files are kept as <file>.prev;
  3. key, certificate and bundle are replaced, each by an atomic rename;
  4. the consumer is reloaded (reload: pid_file, container, command or
     traefik_file; signals are repeated every second while step 5 still
     sees the old certificate, as a busy consumer may drop one);
  5. a TLS handshake with verify.address (SNI verify.server_name) must show
     the new certificate within verify.timeout.

When 3, 4 or 5 fails, the previous files are put back byte for byte, the
consumer is reloaded again, and the error says whether the previous
certificate is served again. A leaf whose key does not match its
certificate, or that was never issued, is refused: then nothing is done.
--dry-run prints the plan. Asks on a terminal; needs --yes otherwise.

` + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names, opts.JSON = args, f.JSON
			l, err := f.Lab()
			if err != nil {
				return err
			}
			for _, n := range args {
				if _, err := l.Certs.Leaf(n); err != nil {
					return usageErr(err.Error())
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return runCertRotate(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "rotate even leaves that are not due")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func runCertRotate(ctx context.Context, opts *CertRotateOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	l := a.Lab
	plan, err := certs.PlanRotate(l, opts.Names, opts.Force, opts.F.now())
	if err != nil {
		return err
	}
	rot := plan.Rotations()
	if opts.JSON {
		writeJSON(opts.IO.Out, "cert_plan", plan)
	} else {
		printPlan(opts.IO.Out, plan.Items, fmt.Sprintf("rotate %d of %d certificates", len(rot), len(plan.Items)))
	}
	if r := plan.Refusals(); len(r) > 0 {
		_, err := a.Certs().Rotate(ctx, plan) // refuses without changing anything
		return err
	}
	if opts.DryRun || len(rot) == 0 {
		return nil
	}
	var names []string
	for _, it := range rot {
		names = append(names, it.Leaf)
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("rotate %s (swap, reload, verify)?", strings.Join(names, ", "))); err != nil {
		return err
	}
	results, err := a.Certs().Rotate(ctx, plan)
	printResults(opts.IO, opts.JSON, results)
	return err
}
