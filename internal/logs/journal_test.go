package logs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"homelab/internal/testenv"
)

// sayUnit is a service that writes to its stdout, so to the journal, each
// line written to /run/say.fifo. SyslogLevel and LogLevelMax keep out of
// its journal the manager's own messages about it ("Started say.service"),
// which journalctl -u shows too: the conformance suite wants a log with
// only the lines said.
const sayUnit = `[Service]
Type=simple
ExecStartPre=/usr/bin/mkfifo -m 0600 /run/say.fifo
ExecStart=/bin/sh -c 'exec 3<>/run/say.fifo; while read -r l <&3; do printf "%%s\n" "$l"; done'
SyslogLevel=notice
LogLevelMax=notice
`

// startSayUnit boots a systemd container with say.service running and
// returns it with a Journal reading the unit's journal there.
func startSayUnit(t *testing.T) (*testenv.SystemdHost, *Journal) {
	t.Helper()
	h := testenv.Systemd(t)
	h.InstallUnit(t, "say.service", sayUnit)
	h.Exec(t, "systemctl", "start", "say.service")
	return h, &Journal{Unit: "say.service", Cmd: []string{h.Docker, "exec", h.Container, "journalctl"}}
}

// sayJournal makes say.service log lines, in order.
func sayJournal(t *testing.T, h *testenv.SystemdHost, lines ...string) {
	t.Helper()
	h.Exec(t, append([]string{"sh", "-c", `printf '%s\n' "$@" > /run/say.fifo`, "sh"}, lines...)...)
}

// TestJournal runs the conformance suite against a real journald (in a
// systemd container), then what is Journal's own: binary messages, a
// unit without entries, a reader without permission and journalctl
// failing.
func TestJournal(t *testing.T) {
	h, src := startSayUnit(t)
	testSource(t, sourceHarness{
		src: src,
		say: func(t *testing.T, lines ...string) { sayJournal(t, h, lines...) },
	})
	if t.Failed() {
		return
	}

	t.Run("binary message", func(t *testing.T) {
		// Not UTF-8: journalctl -o json gives MESSAGE as an array of bytes.
		h.Exec(t, "sh", "-c", `printf 'caf\351\n' > /run/say.fifo`)
		deadline := time.Now().Add(30 * time.Second)
		for {
			l := read(t, src, Options{Tail: 1})
			if len(l) == 1 && l[0].Text == "caf\xe9" {
				if l[0].Time.IsZero() {
					t.Error("no time")
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("last line %q, want %q", texts(l), "caf\xe9")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("unknown unit", func(t *testing.T) {
		nope := &Journal{Unit: "nope.service", Cmd: src.Cmd}
		expectLines(t, "unknown unit", read(t, nope, Options{Tail: -1}))
	})

	t.Run("no permission", func(t *testing.T) {
		// nobody may read neither the system journal nor a journal of its
		// own (a volatile journal keeps no per-user files).
		nobody := &Journal{Unit: "say.service", Cmd: []string{h.Docker, "exec", "--user", "nobody", h.Container, "journalctl"}}
		err := nobody.Stream(context.Background(), Options{Tail: -1}, func(Line) error { return nil })
		if err == nil || err.Error() != "journalctl -u say.service: No journal files were opened due to insufficient permissions." {
			t.Errorf("Stream as nobody = %v, want journalctl's reason", err)
		}
	})

	t.Run("journalctl fails", func(t *testing.T) {
		bad := &Journal{Unit: "say.service", Cmd: append(src.Cmd, "--no-such-option")}
		err := bad.Stream(context.Background(), Options{Tail: 1}, func(Line) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "journalctl -u say.service: ") || !strings.Contains(err.Error(), "no-such-option") {
			t.Errorf("Stream = %v, want journalctl's reason", err)
		}
	})
}

// TestJournalHint: what journalctl says on stderr while it succeeds is a
// note, not an error (a stand-in journalctl that answers as journalctl
// does for a user outside adm and systemd-journal).
func TestJournalHint(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "journalctl")
	script := `#!/bin/sh
echo '{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1710068553123456","MESSAGE":"mine"}'
echo "Hint: You are currently not seeing messages from other users and the system." >&2
echo "      Users in groups 'adm', 'systemd-journal' can see all messages." >&2
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	notes := &syncBuffer{}
	j := &Journal{Unit: "sync.service", User: true, Cmd: []string{fake}, Log: slog.New(slog.NewTextHandler(notes, nil))}
	expectLines(t, "with a hint", read(t, j, Options{Tail: -1}), "mine")
	if notes.count("Hint: You are currently not seeing messages from other users") != 1 || notes.count("source=\"journal of user unit sync.service\"") != 2 {
		t.Errorf("notes %q, want journalctl's hint, naming the source", notes.b.String())
	}
}

func TestJournalArgs(t *testing.T) {
	since := time.Date(2024, 3, 10, 11, 0, 0, 5e8, zone)
	tests := []struct {
		j    Journal
		opts Options
		want string
	}{
		{Journal{Unit: "redis.service"}, Options{Tail: -1},
			"--unit redis.service --output json --all --no-pager --lines all"},
		{Journal{Unit: "sync.service", User: true}, Options{Tail: 100, Follow: true, Since: since},
			"--user --unit sync.service --output json --all --no-pager --lines 100 --since @" + itoa(since.Unix()) + " --follow"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.j.Args(tt.opts), " "); got != tt.want {
			t.Errorf("Args(%+v) =\n%s\nwant\n%s", tt.opts, got, tt.want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestParseJournalEntry(t *testing.T) {
	ts := time.UnixMicro(1710068553123456)
	tests := []struct {
		in   string
		want Line
		ok   bool
	}{
		{`{"__REALTIME_TIMESTAMP":"1710068553123456","MESSAGE":"GET / 200","_SYSTEMD_UNIT":"web.service"}`, Line{ts, "GET / 200"}, true},
		{`{"__REALTIME_TIMESTAMP":"1710068553123456","MESSAGE":[99,97,102,233]}`, Line{ts, "caf\xe9"}, true},
		{`{"__REALTIME_TIMESTAMP":"1710068553123456","MESSAGE":null}`, Line{ts, ""}, true},
		{`{"__REALTIME_TIMESTAMP":"1710068553123456","MESSAGE":"with newline\n"}`, Line{ts, "with newline"}, true},
		{`{"__REALTIME_TIMESTAMP":"soon","MESSAGE":"x"}`, Line{}, false},
		{`{"MESSAGE":{"no":"object"}}`, Line{}, false},
		{`-- No entries --`, Line{}, false},
	}
	for _, tt := range tests {
		got, _, err := parseJournalEntry([]byte(tt.in))
		if (err == nil) != tt.ok || got.Text != tt.want.Text || !got.Time.Equal(tt.want.Time) {
			t.Errorf("parseJournalEntry(%s) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
