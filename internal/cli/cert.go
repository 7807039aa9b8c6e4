package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/certs"
	"homelab/internal/lab"
)

// NewCmdCert returns `homelab cert`.
func NewCmdCert(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Local CA and leaf certificates: issue, status, rotate with reload and TLS check",
		Long: `Manage the lab's local CA and the leaf certificates of the lab file's certs
section: create the CA, issue leaves, show their expiry, and rotate them
(atomic swap, reload of the consumer, TLS handshake check, rollback).`,
	}
	cmd.AddCommand(NewCmdCertInit(f, nil), NewCmdCertIssue(f, nil), NewCmdCertStatus(f, nil),
		NewCmdCertRotate(f, nil), NewCmdCertRotateCA(f, nil))
	return cmd
}

func (f *Factory) certManager(l *lab.Lab) *certs.Manager {
	return &certs.Manager{Lab: l, Now: f.now, Log: f.Logger()}
}

func fp(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

func when(t time.Time) string { return t.Local().Format("2006-01-02 15:04") }

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
			return certInitRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing CA")
	return cmd
}

func certInitRun(ctx context.Context, opts *CertInitOptions) error {
	l, err := opts.F.Lab()
	if err != nil {
		return err
	}
	ca, err := opts.F.certManager(l).Init(ctx, opts.Force)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, "cert_ca", ca)
	}
	fmt.Fprintf(opts.IO.Out, "%s CA %s: %s (key %s), sha256 %s, expires %s\n",
		mark(opts.IO.StderrTTY, true), ca.Subject, ca.CertFile, ca.KeyFile, fp(ca.SHA256), when(ca.NotAfter))
	return nil
}

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
			return certIssueRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing certificate (without reload)")
	return cmd
}

func certIssueRun(ctx context.Context, opts *CertIssueOptions) error {
	l, err := opts.F.Lab()
	if err != nil {
		return err
	}
	c, err := opts.F.certManager(l).Issue(ctx, opts.Name, opts.Force)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, "cert_issued", c)
	}
	fmt.Fprintf(opts.IO.Out, "%s %s: %s (key %s) for %s, sha256 %s, expires %s\n", mark(opts.IO.StderrTTY, true),
		c.Name, c.CertFile, c.KeyFile, strings.Join(c.SANs, ", "), fp(c.SHA256), when(c.NotAfter))
	return nil
}

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
			return certStatusRun(opts)
		},
	}
}

func certStatusRun(opts *CertStatusOptions) error {
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
		err = renderCertStatus(opts.IO.Out, rep, opts.IO.StderrTTY)
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
			return certRotateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "rotate even leaves that are not due")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func certRotateRun(ctx context.Context, opts *CertRotateOptions) error {
	l, err := opts.F.Lab()
	if err != nil {
		return err
	}
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
		_, err := opts.F.certManager(l).Rotate(ctx, plan) // refuses without changing anything
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
	results, err := opts.F.certManager(l).Rotate(ctx, plan)
	printResults(opts.IO, opts.JSON, results)
	return err
}

// printPlan prints a plan's items under a title.
func printPlan(w io.Writer, items []certs.PlanItem, title string) {
	fmt.Fprintf(w, "plan: %s\n", title)
	for _, it := range items {
		fmt.Fprintf(w, "  %-6s %s: %s\n", it.Action, it.Leaf, it.Reason)
		if it.Action != certs.ActionRotate {
			continue
		}
		var then []string
		if it.Reload != "" {
			then = append(then, "reload: "+it.Reload)
		}
		if it.Verify != "" {
			then = append(then, "verify: "+it.Verify)
		}
		if len(then) > 0 {
			fmt.Fprintf(w, "         %s\n", strings.Join(then, "; "))
		}
	}
}

// printResults prints the leaves rotated; failures are in the error the
// command returns.
func printResults(io *IOStreams, asJSON bool, results []certs.Result) {
	for _, r := range results {
		if asJSON {
			writeJSON(io.Out, "cert_rotated", map[string]any{"result": r, "error": errString(r.Err)})
			continue
		}
		if r.Err != nil {
			continue
		}
		line := fmt.Sprintf("%s %s: rotated, sha256 %s (was %s), expires %s", mark(io.StderrTTY, true), r.Leaf, fp(r.NewSHA256), fp(r.OldSHA256), when(r.NotAfter))
		if r.Reloaded != "" {
			line += "; " + r.Reloaded
		}
		if r.Verified != "" {
			line += "; " + r.Verified
		}
		fmt.Fprintln(io.Out, line)
	}
}

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
			return certRotateCARun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Confirmed, confirmCAFlag, false, "confirm replacing the CA")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	return cmd
}

func certRotateCARun(ctx context.Context, opts *CertRotateCAOptions) error {
	l, err := opts.F.Lab()
	if err != nil {
		return err
	}
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
	res, err := opts.F.certManager(l).RotateCA(ctx, plan)
	if res.New.Exists {
		if opts.JSON {
			writeJSON(opts.IO.Out, "cert_ca_rotated", map[string]any{"old": res.Old, "new": res.New, "bundle": res.Bundle})
		} else {
			fmt.Fprintf(opts.IO.Out, "%s CA replaced: %s, sha256 %s, expires %s; clients should trust %s\n",
				mark(opts.IO.StderrTTY, true), res.New.Subject, fp(res.New.SHA256), when(res.New.NotAfter), res.Bundle)
		}
	}
	printResults(opts.IO, opts.JSON, res.Leaves)
	return err
}
