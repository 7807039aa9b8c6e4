package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/lab"
	"homelab/internal/logs"
)

// DefaultLogsTail is how many lines homelab logs prints without --tail
// (and without --since).
const DefaultLogsTail = 100

// LogsOptions are the options of homelab logs.
type LogsOptions struct {
	IO      *IOStreams
	F       *Factory
	Service string
	// Tail is how many of the last lines to print; -1 for all.
	Tail   int
	Follow bool
	// Since keeps the lines logged at or after it; zero for all.
	Since time.Time
	JSON  bool
}

// NewCmdLogs returns `homelab logs`.
func NewCmdLogs(f *Factory, runF func(*LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: f.IO, F: f}
	var tail, since string
	cmd := &cobra.Command{
		Use:   "logs <service> [--tail N|all] [--since D] [--follow]",
		Short: "A service's logs: its log file (followed across rotation) or docker compose logs",
		Long: `Print a service's logs, oldest first, from wherever they are kept:

  - services.<name>.logs.file, when set (it wins over the runtime): read
    like tail -F, so --follow goes on across rotation by rename
    (logrotate's default: the rest of the old file, then the new one from
    its start), across copytruncate, and while the file is missing (said
    once on stderr). A line is printed once its newline is written;
  - else a compose runtime: docker compose logs of its service (the
    container's stdout and stderr, with Docker's timestamps for --since);
  - else a systemd runtime: the unit's journal (journalctl -u UNIT -o
    json, --user for a user unit).

--tail N prints the last N lines (default 100, or all with --since; "all"
for every line), like docker compose logs --tail. --since D keeps the
lines logged at or after D: a duration before now (10m, 2h, 3d) or a time
(2024-05-01T10:00:00Z, "2024-05-01 10:00" in local time). A file's line is
dated by its leading timestamp: RFC 3339 / ISO 8601 (T or space, with or
without a fraction and a zone; local time without a zone), syslog's
"Jan _2 15:04:05" (local time, this year unless that is more than a day
ahead), or the common log format's [02/Jan/2006:15:04:05 -0700] in the
line; a line without one (a stack trace's) goes with the line before it.

Lines are printed as they are; with --json, one object per line:
{"message_type":"log_line","service":...,"text":...,"time":...} (time
only when known). --follow prints new lines until interrupted.

Exits 2 for an unknown service or one without a log source, 1 when the
logs cannot be read, 130 when a follow is interrupted.

` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service, opts.JSON = args[0], f.JSON
			opts.Tail = DefaultLogsTail
			if since != "" {
				t, err := logs.ParseSince(since, f.now(), time.Local)
				if err != nil {
					return usageErr(err.Error())
				}
				opts.Since, opts.Tail = t, -1
			}
			if cmd.Flags().Changed("tail") {
				n, err := parseTail(tail)
				if err != nil {
					return usageErr(err.Error())
				}
				opts.Tail = n
			}
			l, err := f.Lab()
			if err != nil {
				return err
			}
			if _, err := service(l, opts.Service); err != nil {
				return usageErr(err.Error())
			}
			if runF != nil {
				return runF(opts)
			}
			return runLogs(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&tail, "tail", "n", strconv.Itoa(DefaultLogsTail), `the last N lines, or "all" (default all with --since)`)
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "print new lines as they are written, until interrupted")
	cmd.Flags().StringVar(&since, "since", "", "lines logged at or after: a duration before now (10m, 2h, 3d) or a time (RFC 3339, or local \"2006-01-02 15:04\")")
	return cmd
}

// parseTail reads --tail: a number of lines or "all" (-1).
func parseTail(s string) (int, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad --tail %q: expected a number of lines (0 or more) or all", s)
	}
	return n, nil
}

// service returns the service called name, or an error listing the
// services there are.
func service(l *lab.Lab, name string) (*lab.Service, error) {
	if s := l.Services[name]; s != nil {
		return s, nil
	}
	if len(l.Services) == 0 {
		return nil, fmt.Errorf("unknown service %q: %s defines no services", name, l.Path)
	}
	known := slices.Sorted(maps.Keys(l.Services))
	return nil, fmt.Errorf("unknown service %q (known: %s)", name, strings.Join(known, ", "))
}

func runLogs(ctx context.Context, opts *LogsOptions) error {
	l, err := opts.F.Lab()
	if err != nil {
		return err
	}
	svc, err := service(l, opts.Service)
	if err != nil {
		return usageErr(err.Error())
	}
	log := opts.F.Logger()
	src, err := logs.For(svc, logs.Config{LabPath: l.Path, Log: log, Now: opts.F.now, Location: time.Local})
	switch {
	case errors.Is(err, logs.ErrNoSource):
		return usageErr(err.Error())
	case err != nil:
		return err
	}
	log.Debug("reading logs", "service", opts.Service, "source", src.String())

	// Without --follow the output is buffered; a follow prints each line
	// as it comes.
	var out io.Writer = opts.IO.Out
	buf := bufio.NewWriterSize(opts.IO.Out, 64<<10)
	if !opts.Follow {
		out = buf
	}
	emit := func(line logs.Line) error {
		if opts.JSON {
			return writeJSON(out, "log_line", logLine{Service: opts.Service, Time: timePtr(line.Time), Text: line.Text})
		}
		_, err := io.WriteString(out, line.Text+"\n")
		return err
	}
	err = src.Stream(ctx, logs.Options{Tail: opts.Tail, Follow: opts.Follow, Since: opts.Since}, emit)
	if ferr := buf.Flush(); err == nil {
		err = ferr
	}
	switch {
	case ctx.Err() != nil:
		return &silentError{err: ctx.Err(), code: ExitInterrupted}
	case err != nil:
		return fmt.Errorf("logs of %s (%s): %w", opts.Service, src, err)
	}
	return nil
}

// logLine is a line of homelab logs --json.
type logLine struct {
	Service string     `json:"service"`
	Time    *time.Time `json:"time,omitempty"`
	Text    string     `json:"text"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
