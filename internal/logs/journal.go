package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"homelab/internal/execx"
)

// Journal is the log of a systemd unit as the systemd journal keeps it,
// read with journalctl(1): what the unit's processes wrote to stdout and
// stderr, and sent to syslog or the journal, each entry with the time
// journald received it.
//
// It runs
//
//	journalctl [--user] -u UNIT -o json --all --no-pager --lines N|all
//	    [--since @UNIX-SECONDS] [--follow]
//
// and reads the fields of each entry (systemd.journal-fields(7)):
// __REALTIME_TIMESTAMP (µs since the epoch, as a decimal string) is
// Line.Time, and MESSAGE is Line.Text, a JSON string, or an array of
// bytes when the message is binary or not UTF-8 (--all keeps messages
// over 4096 bytes, which json output otherwise gives as null).
// journalctl applies Since to whole seconds; Since is then applied
// exactly. What journalctl says on stderr (such as its hint that
// the caller cannot see other users' messages, or "No journal files were
// found.") is a note on Log, not an error: journalctl reads what it may
// and exits 0. A unit with no entries has no lines. The command is not
// bounded (a journal can be long and a follow runs until it is
// interrupted).
type Journal struct {
	// Unit is the unit, such as "redis.service" (journalctl -u matches it
	// by _SYSTEMD_UNIT and the like).
	Unit string
	// User reads the user's journal (journalctl --user), for a user unit.
	User bool
	// Cmd is journalctl and any arguments before its own; default
	// ["journalctl"] in PATH. Tests run it in a container with
	// ["docker", "exec", CONTAINER, "journalctl"].
	Cmd []string
	// Log receives, as warnings, what journalctl says on stderr and
	// entries it cannot read; nil: dropped.
	Log *slog.Logger
}

func (j *Journal) String() string {
	if j.User {
		return "journal of user unit " + j.Unit
	}
	return "journal of unit " + j.Unit
}

// Args returns the journalctl arguments for opts, in one run. With
// Since, journalctl's --lines counts from the first entry since then, not
// back from the last one: Stream gives Args a Tail of -1 with Since (and
// keeps the last Tail entries itself), or leaves Since out with a Tail of
// 0 (only new entries).
func (j *Journal) Args(opts Options) []string {
	var args []string
	if j.User {
		args = append(args, "--user")
	}
	args = append(args, "--unit", j.Unit, "--output", "json", "--all", "--no-pager")
	if opts.Tail >= 0 {
		args = append(args, "--lines", strconv.Itoa(opts.Tail))
	} else {
		args = append(args, "--lines", "all")
	}
	if !opts.Since.IsZero() {
		// Whole seconds, rounded down (time.Time.Unix rounds towards the
		// past): the rest is filtered exactly.
		args = append(args, "--since", "@"+strconv.FormatInt(opts.Since.Unix(), 10))
	}
	if opts.Follow {
		args = append(args, "--follow")
	}
	return args
}

// Stream runs journalctl (see Journal) and delivers its entries.
// Cancelling ctx interrupts it (SIGINT, then SIGKILL after 5 s) and
// Stream returns ctx.Err(). A failure of journalctl is an error with its
// reason.
//
// The last Tail entries since Since take two runs: the entries since
// Since, of which the last Tail are kept, then, to follow, the entries
// after the last of those (--after-cursor).
func (j *Journal) Stream(ctx context.Context, opts Options, emit func(Line) error) error {
	switch {
	case opts.Tail == 0 && !opts.Follow:
		return nil
	case opts.Since.IsZero() || opts.Tail < 0:
		return j.run(ctx, j.Args(opts), opts.Since, func(l Line, _ string) error { return emit(l) })
	case opts.Tail == 0:
		// Only new entries: all logged after now, so after Since but for
		// a Since in the future.
		return j.run(ctx, j.Args(Options{Follow: true}), opts.Since, func(l Line, _ string) error { return emit(l) })
	}
	var last []Line
	cursor := ""
	err := j.run(ctx, j.Args(Options{Tail: -1, Since: opts.Since}), opts.Since, func(l Line, c string) error {
		if len(last) == opts.Tail {
			last = append(last[:0], last[1:]...)
		}
		last, cursor = append(last, l), c
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range last {
		if err := emit(l); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	args := j.Args(Options{Tail: -1, Since: opts.Since, Follow: true})
	if cursor != "" {
		args = append(j.Args(Options{Tail: -1, Follow: true}), "--after-cursor", cursor)
	}
	return j.run(ctx, args, opts.Since, func(l Line, _ string) error { return emit(l) })
}

// run runs journalctl with args and calls emit with each entry at or
// after since, and its cursor.
func (j *Journal) run(ctx context.Context, args []string, since time.Time, emit func(Line, string) error) error {
	cmd := j.Cmd
	if len(cmd) == 0 {
		cmd = []string{"journalctl"}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var emitErr error
	err := execx.Run(rctx, execx.Cmd{
		Name:        cmd[0],
		Args:        append(cmd[1:len(cmd):len(cmd)], args...),
		GracePeriod: 5 * time.Second,
		OnStdout: func(b []byte) {
			if emitErr != nil {
				return // draining after emit failed
			}
			l, cursor, err := parseJournalEntry(b)
			if err != nil {
				if j.Log != nil {
					j.Log.Warn("unreadable journal entry: "+err.Error(), "source", j.String())
				}
				return
			}
			if !since.IsZero() && l.Time.Before(since) {
				return
			}
			if err := emit(l, cursor); err != nil {
				emitErr = err
				cancel()
			}
		},
		OnStderr: func(line string) {
			if line = strings.TrimSpace(line); line != "" && j.Log != nil {
				j.Log.Warn(line, "source", j.String())
			}
		},
	})
	switch {
	case emitErr != nil:
		return emitErr
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil:
		return nil
	}
	var ce *execx.CmdError
	if errors.As(err, &ce) && ce.ExitCode > 0 {
		return fmt.Errorf("journalctl -u %s: %s", j.Unit, lastJournalLine(ce.Stderr))
	}
	return fmt.Errorf("journalctl -u %s: %w", j.Unit, err)
}

// lastJournalLine is the last line of journalctl's stderr.
func lastJournalLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "failed without saying why"
	}
	return s
}

// journalEntry is the part of a journalctl -o json entry that Journal
// reads.
type journalEntry struct {
	Cursor   string          `json:"__CURSOR"`
	Realtime string          `json:"__REALTIME_TIMESTAMP"`
	Message  json.RawMessage `json:"MESSAGE"`
}

// parseJournalEntry reads one line of journalctl -o json: the line and
// the entry's cursor.
func parseJournalEntry(b []byte) (Line, string, error) {
	l, e, err := parseEntry(b)
	return l, e.Cursor, err
}

func parseEntry(b []byte) (Line, journalEntry, error) {
	var e journalEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return Line{}, e, err
	}
	var l Line
	if e.Realtime != "" {
		us, err := strconv.ParseInt(e.Realtime, 10, 64)
		if err != nil {
			return Line{}, e, fmt.Errorf("__REALTIME_TIMESTAMP %q: %w", e.Realtime, err)
		}
		l.Time = time.UnixMicro(us)
	}
	text, err := journalMessage(e.Message)
	if err != nil {
		return Line{}, e, err
	}
	l.Text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
	return l, e, nil
}

// journalMessage decodes MESSAGE: a string, an array of bytes (binary or
// not UTF-8), or null or absent (empty).
func journalMessage(m json.RawMessage) (string, error) {
	if len(m) == 0 || string(m) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m, &s); err == nil {
		return s, nil
	}
	// Not into a []byte, which encoding/json reads from base64.
	var nums []int
	if err := json.Unmarshal(m, &nums); err != nil {
		return "", fmt.Errorf("MESSAGE %.40s: neither a string nor an array of bytes", m)
	}
	b := make([]byte, len(nums))
	for i, n := range nums {
		if n < 0 || n > 255 {
			return "", fmt.Errorf("MESSAGE: byte %d out of range", n)
		}
		b[i] = byte(n)
	}
	return string(b), nil
}
