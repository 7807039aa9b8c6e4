package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// CertIssueOptions are the options of homelab cert issue.
type CertIssueOptions struct {
	IO    *IOStreams
	F     *Factory
	Name  string
	Force bool
	JSON  bool
}

// NewCmdCertIssue returns `homelab cert issue`.
func NewCmdCertIssue(f *Factory, runF func(*CertIssueOptions) error) *cobra.Command {
	opts := &CertIssueOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "issue <name> [--force]",
		Short: "Issue a leaf certificate of the lab file, signed by the CA",
		Long: `Issue the leaf certificate <name> of certs.leaves: a new ECDSA P-256 key
(0600), a certificate for its SANs (DNS names and IPs) signed by the CA,
valid for its validity, and its bundle_file when set, each written
atomically. Nothing is reloaded: use cert rotate to replace a certificate
in use. An existing certificate is left alone unless --force (the old
files are then kept as .prev).

` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name, opts.JSON = args[0], f.JSON
			l, err := f.Lab()
			if err != nil {
				return err
			}
			if _, err := l.Certs.Leaf(opts.Name); err != nil {
				return usageErr(err.Error())
			}
			if runF != nil {
				return runF(opts)
			}
			return runCertIssue(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing certificate (without reload)")
	return cmd
}

func runCertIssue(ctx context.Context, opts *CertIssueOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	c, err := a.Certs().Issue(ctx, opts.Name, opts.Force)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, "cert_issued", c)
	}
	fmt.Fprintf(opts.IO.Out, "%s %s: %s (key %s) for %s, sha256 %s, expires %s\n", mark(opts.IO.StdoutTTY, true),
		c.Name, c.CertFile, c.KeyFile, strings.Join(c.SANs, ", "), fp(c.SHA256), when(c.NotAfter))
	return nil
}
