package health

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"homelab/internal/execx"
	"homelab/internal/lab"
)

// commandGrace is how long a timed-out command has between SIGINT and
// SIGKILL: a probe must not outlive its timeout by much.
const commandGrace = time.Second

// probeCommand runs p.Run with /bin/sh -c in p.Dir, with o.Env in its
// environment; exit 0 is healthy. Otherwise the detail is the last line
// of its stderr and the exit status.
func probeCommand(ctx context.Context, p *lab.CommandProbe, o Options) (string, error) {
	if p.Dir != "" {
		// exec would blame /bin/sh for a missing directory.
		if _, err := os.Stat(p.Dir); err != nil {
			return "", unhealthyf("dir %s: %v", p.Dir, errors.Unwrap(err))
		}
	}
	var last string // written by execx's stderr reader, which Run waits for
	start := time.Now()
	err := execx.Run(ctx, execx.Cmd{
		Name:        "/bin/sh",
		Args:        []string{"-c", p.Run},
		Dir:         p.Dir,
		Env:         o.Env,
		Secrets:     o.Secrets,
		GracePeriod: commandGrace,
		OnStderr: func(line string) {
			if strings.TrimSpace(line) != "" {
				last = strings.TrimSpace(line)
			}
		},
	})
	if err != nil {
		var ce *execx.CmdError
		if errors.As(err, &ce) && ce.ExitCode > 0 {
			if last == "" {
				return "", unhealthyf("exit status %d", ce.ExitCode)
			}
			return "", unhealthyf("%s (exit status %d)", last, ce.ExitCode)
		}
		if errors.As(err, &ce) {
			return "", ce.Err // did not start (no such dir), or a signal
		}
		return "", err
	}
	return "exit 0 in " + ms(time.Since(start)), nil
}
