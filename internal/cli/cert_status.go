package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"homelab/internal/certs"
)

// CertStatusOptions are the options of homelab cert status.
type CertStatusOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
}

// NewCmdCertStatus returns `homelab cert status`.
func NewCmdCertStatus(f *Factory, runF func(*CertStatusOptions) error) *cobra.Command {
	opts := &CertStatusOptions{IO: f.IO, F: f}
	return &cobra.Command{
		Use:   "status",
		Short: "The CA and every leaf: subject, SANs, expiry, rotation window, key match",
		Long: `Show the CA and every leaf: subject, SANs, expiry, days left, whether it is
inside its rotation window, whether its key matches, and anything else that
needs attention (not issued, signed by a previous CA, SANs or bundle out of
date with the lab file).
Exits 1 when any certificate needs attention (for cron).

` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runCertStatus(opts)
		},
	}
}

func runCertStatus(opts *CertStatusOptions) error {
	l, err := opts.F.Lab()
	if err != nil {
		return err
	}
	rep, err := certs.Status(l, opts.F.now())
	if err != nil {
		return err
	}
	if opts.JSON {
		err = writeJSON(opts.IO.Out, "cert_status", rep)
	} else {
		err = renderCertStatus(opts.IO.Out, rep, opts.IO.StdoutTTY)
	}
	if err == nil && !rep.Healthy {
		return &silentError{err: errCertsAttention, code: ExitFailed}
	}
	return err
}

var errCertsAttention = fmt.Errorf("some certificates need attention")

func renderCertStatus(w io.Writer, rep certs.Report, tty bool) error {
	if !rep.Configured {
		_, err := fmt.Fprintln(w, "no certificates: the lab file has no certs.leaves and there is no CA")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSUBJECT\tSANS\tNOT AFTER\tDAYS LEFT\tIN WINDOW\tKEY\tSTATE")
	all := append([]certs.Cert{rep.CA}, rep.Leaves...)
	for _, c := range all {
		if !c.Exists {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%s\n", c.Name, mark(tty, false))
			continue
		}
		window := "no"
		if c.InWindow {
			window = "yes"
		}
		key := "ok"
		if !c.KeyMatch {
			key = "MISMATCH"
		}
		sans := strings.Join(c.SANs, ",")
		if sans == "" {
			sans = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Name, c.Subject, sans, when(c.NotAfter), c.DaysLeft, window, key, mark(tty, c.OK()))
	}
	tw.Flush()
	for _, c := range all {
		for _, is := range c.Issues {
			fmt.Fprintf(w, "%s: %s\n", c.Name, is)
		}
	}
	return nil
}
