package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"homelab/internal/execx"
	"homelab/internal/lab"
)

// MaxPendingShown is how many pending migrations a finding names.
const MaxPendingShown = 5

// checkMigrations runs the service's migrations status command (see
// lab.Migrations for how its exit status and output are read).
func (d *Doctor) checkMigrations(ctx context.Context, service string, m *lab.Migrations) part {
	subject := "service " + service
	p := part{checked: subject + " migrations"}
	pending, err := pendingMigrations(ctx, filepath.Dir(d.Lab.Path), service, m)
	switch {
	case err != nil:
		p.findings = []Finding{unchecked(subject, fmt.Errorf("migrations status: %w", err))}
	case pending != nil:
		problem := "migrations pending"
		if len(pending) > 0 {
			problem = plural(len(pending), "migration", "migrations") + " pending: " + list(pending, MaxPendingShown)
		}
		p.findings = []Finding{{Check: CheckMigrations, Subject: subject, Problem: problem,
			Fix: "apply " + service + "'s migrations (its status command: " + m.Status + ")"}}
	}
	return p
}

// pendingMigrations runs m.Status with /bin/sh -c in dir, bounded by
// m.Timeout, and returns nil when none are pending, else the pending
// migrations as the command's output names them (an empty, non-nil
// slice when it names none).
func pendingMigrations(ctx context.Context, dir, service string, m *lab.Migrations) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	var out bytes.Buffer
	err := execx.Run(ctx, execx.Cmd{Name: "/bin/sh", Args: []string{"-c", m.Status}, Dir: dir,
		Env: []string{"HOMELAB_SERVICE=" + service}, Stdout: &out})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("timed out after %s", m.Timeout)
	}
	lines := nonEmptyLines(out.String())
	if re := m.Match(); re != nil {
		if err != nil {
			return nil, err
		}
		var pending []string
		for _, l := range lines {
			if re.MatchString(l) {
				pending = append(pending, l)
			}
		}
		return pending, nil
	}
	var ce *execx.CmdError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &ce) && ce.ExitCode == m.PendingExit:
		if lines == nil {
			lines = []string{}
		}
		return lines, nil
	}
	return nil, err
}

func nonEmptyLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
