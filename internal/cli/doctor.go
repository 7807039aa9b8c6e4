package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"homelab/internal/doctor"
)

// DoctorOptions are the options of homelab doctor.
type DoctorOptions struct {
	IO   *IOStreams
	F    *Factory
	Fix  bool
	Yes  bool
	JSON bool
}

// NewCmdDoctor returns `homelab doctor`.
func NewCmdDoctor(f *Factory, runF func(*DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "doctor [--fix [--yes]]",
		Short: "Check the lab for what is wrong, with the command that fixes each; --fix applies the safe fixes",
		Long: `Check the lab and say what is wrong and the command that fixes it:
  collation_version   a database's or a used collation's version differs from the library's (after a glibc/ICU upgrade)
  missing_statistics  tables of 64 KiB or more with no planner statistics (never analyzed, as after pg_upgrade)
  extension_update    an installed extension older than the available default version
  invalid_index       an index left invalid by a failed CREATE INDEX CONCURRENTLY
  pending_migrations  a service's migrations status command (services.<name>.migrations) says some are pending
  stale_lock          a restic lock whose holder is gone
  single_key          a repository with one key: no recovery key (homelab repo key add)
  unfinished_saga     an upgrade, deploy or lab snapshot no process works on
  drill_overdue       no restore drill passed since the drill schedule wanted one
  certificate         a certificate missing, expired, inside its rotation window or with issues
  unchecked           a check that could not run (a server that does not answer, an unset secret)
PostgreSQL checks run on every database the lab's postgres targets' roles (and pgbackrest clusters' users) may connect to.

--fix applies the safe fixes after confirmation (off a terminal: --yes): the SQL shown under each
PostgreSQL finding (REINDEX CONCURRENTLY of the indexes that use a changed collation then REFRESH of
its version, ANALYZE, ALTER EXTENSION UPDATE, REINDEX or DROP CONCURRENTLY of invalid indexes) and
restic unlock of stale locks.
The rest need a decision and are left to the command named.

--json: one doctor_finding line per finding {check, subject, problem, fix, sql, auto}, with --fix one
doctor_fix line per fix {check, subject, result: fixed|failed, error}, and last a doctor_summary line
{checked, findings, auto, fixed, failed, remaining}.

Exit codes:
  0    nothing found (or, with --fix, everything found was fixed)
  1    findings remain (for cron)
  2    bad usage or bad lab file
  130  interrupted`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if opts.Yes && !opts.Fix {
				return usageErr("--yes confirms --fix: pass both")
			}
			if runF != nil {
				return runF(opts)
			}
			return runDoctor(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Fix, "fix", false, "apply the safe fixes (after confirmation)")
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "do not ask before --fix")
	return cmd
}

// errDoctorFindings is doctor's exit 1: findings remain (already shown).
var errDoctorFindings = errors.New("doctor: findings remain")

// doctorFixJSON is one applied fix in --json output.
type doctorFixJSON struct {
	Check   string `json:"check"`
	Subject string `json:"subject"`
	Result  string `json:"result"` // fixed, failed
	Error   string `json:"error,omitempty"`
}

// doctorSummaryJSON is doctor's last --json line.
type doctorSummaryJSON struct {
	Checked   []string `json:"checked"`
	Findings  int      `json:"findings"`
	Auto      int      `json:"auto"`
	Fixed     int      `json:"fixed"`
	Failed    int      `json:"failed"`
	Remaining int      `json:"remaining"`
}

func runDoctor(ctx context.Context, opts *DoctorOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	d, closeFn, err := a.Doctor(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	rep := d.Run(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sum := doctorSummaryJSON{Checked: rep.Checked, Findings: len(rep.Findings)}
	if sum.Checked == nil {
		sum.Checked = []string{}
	}
	var auto []doctor.Finding
	for _, f := range rep.Findings {
		if f.Auto {
			auto = append(auto, f)
		}
		if opts.JSON {
			writeJSON(opts.IO.Out, "doctor_finding", f)
		} else {
			renderFinding(opts.IO.Out, f, opts.IO.StdoutTTY)
		}
	}
	sum.Auto = len(auto)
	if opts.Fix && len(auto) > 0 {
		if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("apply %d fixes shown above?", len(auto))); err != nil {
			return err
		}
		for _, f := range auto {
			r := doctorFixJSON{Check: f.Check, Subject: f.Subject, Result: "fixed"}
			if err := d.Fix(ctx, f); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.Result, r.Error = "failed", err.Error()
				sum.Failed++
			} else {
				sum.Fixed++
			}
			if opts.JSON {
				writeJSON(opts.IO.Out, "doctor_fix", r)
			} else if r.Error != "" {
				fmt.Fprintf(opts.IO.Out, "%s %s: %s: fix failed: %s\n", mark(opts.IO.StdoutTTY, false), f.Check, f.Subject, r.Error)
			} else {
				fmt.Fprintf(opts.IO.Out, "%s %s: %s: fixed\n", mark(opts.IO.StdoutTTY, true), f.Check, f.Subject)
			}
		}
	}
	sum.Remaining = sum.Findings - sum.Fixed
	if opts.JSON {
		writeJSON(opts.IO.Out, "doctor_summary", sum)
	} else {
		renderDoctorSummary(opts.IO.Out, sum, opts.Fix)
	}
	if sum.Remaining > 0 {
		return &silentError{err: errDoctorFindings, code: ExitFailed}
	}
	return nil
}

// renderFinding writes one finding: its check and subject, the problem,
// the fix and the SQL it runs.
func renderFinding(w io.Writer, f doctor.Finding, tty bool) {
	prefix := "FINDING"
	if tty {
		prefix = "✗"
	}
	fmt.Fprintf(w, "%s %s: %s\n", prefix, f.Check, f.Subject)
	fmt.Fprintf(w, "    %s\n", f.Problem)
	if f.Fix != "" {
		fmt.Fprintf(w, "    fix: %s\n", f.Fix)
	}
	for _, q := range f.SQL {
		fmt.Fprintf(w, "      %s;\n", q)
	}
}

func renderDoctorSummary(w io.Writer, s doctorSummaryJSON, fixed bool) {
	checked := strings.Join(s.Checked, "; ")
	if checked == "" {
		checked = "nothing"
	}
	switch {
	case s.Findings == 0:
		fmt.Fprintf(w, "doctor: nothing found (checked %s)\n", checked)
	case fixed:
		fmt.Fprintf(w, "doctor: %d findings: %d fixed, %d fixes failed, %d left (checked %s)\n", s.Findings, s.Fixed, s.Failed, s.Remaining, checked)
	default:
		fmt.Fprintf(w, "doctor: %d findings, %d fixable with homelab doctor --fix (checked %s)\n", s.Findings, s.Auto, checked)
	}
}
