package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// CertInitOptions are the options of homelab cert init.
type CertInitOptions struct {
	IO    *IOStreams
	F     *Factory
	Force bool
	JSON  bool
}

// NewCmdCertInit returns `homelab cert init`.
func NewCmdCertInit(f *Factory, runF func(*CertInitOptions) error) *cobra.Command {
	opts := &CertInitOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "init [--force]",
		Short: "Create the local CA (ECDSA P-256) under certs.dir",
		Long: `Create the local CA: ca.key (0600), ca.pem and ca-bundle.pem (what clients
trust) under certs.dir, each written atomically. An existing CA is left
alone unless --force (the old files are then kept as .prev; leaves signed by
the old CA stop verifying: rotate-ca replaces a CA in use).

` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runCertInit(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing CA")
	return cmd
}

func runCertInit(ctx context.Context, opts *CertInitOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	ca, err := a.Certs().Init(ctx, opts.Force)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, "cert_ca", ca)
	}
	fmt.Fprintf(opts.IO.Out, "%s CA %s: %s (key %s), sha256 %s, expires %s\n",
		mark(opts.IO.StdoutTTY, true), ca.Subject, ca.CertFile, ca.KeyFile, fp(ca.SHA256), when(ca.NotAfter))
	return nil
}
