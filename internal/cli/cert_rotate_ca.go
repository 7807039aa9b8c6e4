package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"homelab/internal/certs"
)

// CertRotateCAOptions are the options of homelab cert rotate-ca.
type CertRotateCAOptions struct {
	IO        *IOStreams
	F         *Factory
	Confirmed bool
	DryRun    bool
	JSON      bool
}

const confirmCAFlag = "confirm-i-know-this-is-disruptive"

// NewCmdCertRotateCA returns `homelab cert rotate-ca`.
func NewCmdCertRotateCA(f *Factory, runF func(*CertRotateCAOptions) error) *cobra.Command {
	opts := &CertRotateCAOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "rotate-ca --" + confirmCAFlag + " [--dry-run]",
		Short: "Replace the CA and re-issue every leaf with it (disruptive)",
		Long: `Replace the local CA: a new CA is created (the old ca.pem and ca.key are kept
as .prev), ca-bundle.pem becomes the new CA followed by the old one, and
every issued leaf is re-issued by the new CA and rotated as by cert rotate
(swap, reload, verify, rollback).

This is disruptive: clients that trust only the old ca.pem reject the new
leaves. Give clients ca-bundle.pem (old and new) before, or right after.
A leaf that fails to rotate keeps its old certificate, still trusted
through the bundle; cert status shows it and cert rotate re-issues it.
Needs --` + confirmCAFlag + `; --dry-run prints the plan.

` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if !opts.Confirmed && !opts.DryRun {
				return usageErr("rotate-ca replaces the CA every leaf chains to: clients that trust only the current ca.pem will reject the re-issued leaves until they trust ca-bundle.pem (new and old CA). " +
					"See the plan with --dry-run, then pass --" + confirmCAFlag)
			}
			if runF != nil {
				return runF(opts)
			}
			return runCertRotateCA(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Confirmed, confirmCAFlag, false, "confirm replacing the CA")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	return cmd
}

func runCertRotateCA(ctx context.Context, opts *CertRotateCAOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	l := a.Lab
	plan, err := certs.PlanRotateCA(l, opts.F.now())
	if err != nil {
		return err
	}
	if opts.JSON {
		writeJSON(opts.IO.Out, "cert_ca_plan", plan)
	} else {
		cur := plan.Current
		fmt.Fprintf(opts.IO.Out, "plan: replace the CA %s (sha256 %s, expires %s) with a new CA %q valid %s; %s will hold both\n",
			cur.Subject, fp(cur.SHA256), when(cur.NotAfter), plan.CommonName, plan.Validity, plan.Bundle)
		printPlan(opts.IO.Out, plan.Leaves, fmt.Sprintf("re-issue %d leaves with the new CA", len((&certs.Plan{Items: plan.Leaves}).Rotations())))
	}
	if opts.DryRun && len(plan.Refusals()) == 0 {
		return nil
	}
	res, err := a.Certs().RotateCA(ctx, plan)
	if res.New.Exists {
		if opts.JSON {
			writeJSON(opts.IO.Out, "cert_ca_rotated", map[string]any{"old": res.Old, "new": res.New, "bundle": res.Bundle})
		} else {
			fmt.Fprintf(opts.IO.Out, "%s CA replaced: %s, sha256 %s, expires %s; clients should trust %s\n",
				mark(opts.IO.StdoutTTY, true), res.New.Subject, fp(res.New.SHA256), when(res.New.NotAfter), res.Bundle)
		}
	}
	printResults(opts.IO, opts.JSON, res.Leaves)
	return err
}
