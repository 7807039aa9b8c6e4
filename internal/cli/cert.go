package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/certs"
)

// NewCmdCert returns `homelab cert`.
func NewCmdCert(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "cert",
		Short: "Local CA and leaf certificates: issue, status, rotate with reload and TLS check",
		Long: `Manage the lab's local CA and the leaf certificates of the lab file's certs
section: create the CA, issue leaves, show their expiry, and rotate them
(atomic swap, reload of the consumer, TLS handshake check, rollback).`,
	})
	cmd.AddCommand(NewCmdCertInit(f, nil), NewCmdCertIssue(f, nil), NewCmdCertStatus(f, nil),
		NewCmdCertRotate(f, nil), NewCmdCertRotateCA(f, nil))
	return cmd
}

func fp(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

func when(t time.Time) string { return t.Local().Format("2006-01-02 15:04") }

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
		line := fmt.Sprintf("%s %s: rotated, sha256 %s (was %s), expires %s", mark(io.StdoutTTY, true), r.Leaf, fp(r.NewSHA256), fp(r.OldSHA256), when(r.NotAfter))
		if r.Reloaded != "" {
			line += "; " + r.Reloaded
		}
		if r.Verified != "" {
			line += "; " + r.Verified
		}
		fmt.Fprintln(io.Out, line)
	}
}
