package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"homelab/internal/app"
	"homelab/internal/deploy"
	"homelab/internal/saga"
	"homelab/internal/version"
)

// What deploy and rollback share: the plan's rendering, the run with its
// progress and its outcome, and the errors that are bad usage.

// renderDeployPlan writes p for a person.
func renderDeployPlan(w io.Writer, p deploy.Plan, d *deploy.Deployer) {
	dp := d.Lab.Services[p.Service].Deploy
	verb := map[string]string{"deploy": "Deploy", "rollback": "Roll back", "redeploy": "Roll back (redeploy)"}[string(p.Kind)]
	fmt.Fprintf(w, "%s %s to %s (blue/green)\n", verb, p.Service, p.To.Version)
	from := p.From.String()
	if p.Adopted {
		from += ", read from HAProxy's configuration: no deploy recorded yet"
	}
	fmt.Fprintf(w, "  serving now: %s\n", from)
	n := 1
	step := func(format string, args ...any) {
		fmt.Fprintf(w, "  %d. %s\n", n, fmt.Sprintf(format, args...))
		n++
	}
	if p.From.Color == "" {
		step("check nothing serves yet, as planned")
	} else {
		step("check %s still serves, as planned", p.From)
	}
	if p.Start {
		replaces := ""
		if p.Replaces != "" {
			replaces = fmt.Sprintf(" (replaces %s, kept for a rollback)", p.Replaces)
		}
		step("start %s at %s%s", p.To.Color, p.To.Version, replaces)
		step("health gate %s, within %s", p.To.Color, p.HealthyWithin)
	} else {
		step("check %s still runs %s and passes its probe", p.To.Color, p.To.Version)
	}
	step("flip HAProxy backend %s to %s (haproxy -c, atomic swap of %s, reload)", dp.HAProxy.Backend, p.To.Color, dp.HAProxy.Config)
	step("verify %s answers %s, within %s", dp.PublicURL, p.To.Version, p.HealthyWithin)
	kept := "nothing kept"
	if p.From.Color != "" {
		kept = p.From.String() + " kept running for a fast rollback"
	}
	step("record %s active; %s", p.To.Color, kept)
	if len(p.Contract) > 0 && p.AllowContract {
		fmt.Fprintf(w, "Contract migrations ALLOWED (%d), reason: %s\n", len(p.Contract), p.Reason)
		for _, s := range p.Contract {
			fmt.Fprintf(w, "  %s:%d: %s\n", s.File, s.Line, s.Why)
		}
	} else if p.Reason != "" {
		fmt.Fprintf(w, "Reason: %s\n", p.Reason)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	if p.From.Color != "" {
		fmt.Fprintf(w, "On failure: before the flip %s is stopped and traffic stays on %s; after it, traffic flips back to %s\n", p.To.Color, p.From.Color, p.From.Color)
	} else {
		fmt.Fprintf(w, "On failure: %s is stopped and the backend left without a server\n", p.To.Color)
	}
}

// deployRun confirms and runs p, showing progress on stderr, and writes
// the outcome (--json: a deploy_result line).
func deployRun(ctx context.Context, io *IOStreams, jsonOut, yes bool, d *deploy.Deployer, p deploy.Plan, question string) error {
	if err := confirm(io, yes, question); err != nil {
		return err
	}
	keepGoingOnHangup()
	d.Progress = newUpgradeProgress(io).step
	rec, err := d.Run(ctx, p)
	return deployEnded(io, jsonOut, rec, err)
}

// deployEnded writes how a deploy saga ended.
func deployEnded(io *IOStreams, jsonOut bool, rec saga.Record, err error) error {
	if rec.ID == "" { // refused before it began
		return err
	}
	verdict := deployVerdict(rec)
	if jsonOut {
		out := struct {
			Saga    saga.Record `json:"saga"`
			Outcome string      `json:"outcome"`
		}{rec, verdict}
		if jerr := writeJSON(io.Out, "deploy_result", out); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else {
		fmt.Fprintln(io.Out, verdict)
	}
	return err
}

// deployVerdict says in one line where traffic is after rec.
func deployVerdict(rec saga.Record) string {
	p, _ := deploy.PlanOf(rec)
	switch rec.State {
	case saga.Done:
		if p.Kind == "" { // a cleanup
			return fmt.Sprintf("%s: idle color stopped; no fast rollback is left", rec.Subject)
		}
		return fmt.Sprintf("%s: %s serves %s", p.Service, p.To.Color, p.To.Version)
	case saga.Compensated, saga.Failed:
		if p.From.Color == "" {
			return fmt.Sprintf("%s: not deployed; nothing serves", rec.Subject)
		}
		return fmt.Sprintf("%s: not deployed; %s still serves %s", rec.Subject, p.From.Color, p.From.Version)
	}
	return fmt.Sprintf("%s: %s (saga %s): fix the cause, then homelab deploy --resume %s", rec.Subject, rec.State, rec.ID, rec.ID)
}

// deployErr turns the deploy package's errors into the CLI's: a plan that
// cannot be made is bad usage.
func deployErr(err error) error {
	var pe *deploy.PlanError
	if errors.As(err, &pe) {
		return usageErr(err.Error())
	}
	return err
}

// alreadyAt reports (and prints) a deploy of the serving version: nothing
// to do is success.
func alreadyAt(w io.Writer, err error) bool {
	if errors.Is(err, version.ErrAlreadyAt) {
		fmt.Fprintf(w, "%v: nothing to do\n", err)
		return true
	}
	return false
}

// openDeployer is the lab's deployer; the func closes its catalog.
func openDeployer(ctx context.Context, f *Factory, wait bool) (*app.App, *deploy.Deployer, func(), error) {
	a, err := f.App()
	if err != nil {
		return nil, nil, nil, err
	}
	d, closeFn, err := a.Deployer(ctx, wait)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, d, closeFn, nil
}

// oneReason trims a reason to one line.
func oneReason(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
