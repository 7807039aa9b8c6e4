package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"homelab/internal/migrations"
)

// MigrationsCheckOptions are the options of homelab migrations check.
type MigrationsCheckOptions struct {
	IO      *IOStreams
	F       *Factory
	JSON    bool
	Service string
	// Since: releases after this version; empty: after the serving one.
	Since string
}

// NewCmdMigrationsCheck returns `homelab migrations check`.
func NewCmdMigrationsCheck(f *Factory, runF func(*MigrationsCheckOptions) error) *cobra.Command {
	opts := &MigrationsCheckOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "check SERVICE [--since VERSION]",
		Short: "Classify each migration statement as expand or contract, with PostgreSQL's own parser",
		Long: `Parse the SQL migrations of a blue/green service (deploy.migrations: one
directory per release version holding its *.sql files; *.down.sql are
skipped) with PostgreSQL's own grammar (pg_query), and classify each
statement:

  expand    the version serving now keeps working: a table or a nullable
            column added, an index created, a constraint added NOT VALID,
            NOT NULL dropped, a column added NOT NULL with a default
  contract  it may break: a column or table dropped or renamed, SET NOT
            NULL, a type changed, a column added NOT NULL without a
            default, a validated constraint added, a default dropped

A lock risk (an index built without CONCURRENTLY, a table rewrite) is
shown beside the class. Releases after --since are checked (default: after
the version serving now; all before the first deploy). homelab deploy
refuses a release with a contract statement unless --allow-contract
--reason is given. With --json: one "migration" line per statement.

Exits 0 when every statement expands, 1 when one contracts, 2 for bad
usage or a file that does not parse.

` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			opts.Service = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runMigrationsCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Since, "since", "", "check the releases after this version (default: after the serving one)")
	return cmd
}

func runMigrationsCheck(ctx context.Context, opts *MigrationsCheckOptions) error {
	_, d, closeFn, err := openDeployer(ctx, opts.F, false)
	if err != nil {
		return err
	}
	defer closeFn()
	since, rels, err := d.CheckMigrations(ctx, opts.Service, opts.Since)
	if err != nil {
		return usageErr(deployErr(err).Error())
	}
	n := 0
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	if !opts.JSON {
		fmt.Fprintln(tw, "RELEASE\tCLASS\tWHERE\tWHAT")
	}
	for _, r := range rels {
		for _, s := range r.Statements {
			n++
			if opts.JSON {
				out := struct {
					Release string `json:"release"`
					migrations.Statement
				}{r.Version, s}
				if err := writeJSON(opts.IO.Out, "migration", out); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s\n", r.Version, s.Class, s.File, s.Line, s.Why)
			if s.Risk != "" {
				fmt.Fprintf(tw, "\t\t\trisk: %s\n", s.Risk)
			}
		}
	}
	if !opts.JSON {
		tw.Flush()
	}
	after := "all releases"
	if since != "" {
		after = "releases after " + since
	}
	c := len(migrations.Contracts(rels))
	fmt.Fprintf(opts.IO.ErrOut, "%s: %d statement(s) in %d release(s) (%s), %d contract\n", opts.Service, n, len(rels), after, c)
	if c > 0 {
		return &silentError{err: fmt.Errorf("%d contract statement(s)", c), code: ExitFailed}
	}
	return nil
}
