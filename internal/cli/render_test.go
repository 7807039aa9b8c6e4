package cli

import (
	"regexp"
	"strings"
	"testing"
)

// TestStdoutDecoration: results on stdout carry ✓/✗ when stdout is a
// terminal, whatever stderr is, and plain words otherwise.
func TestStdoutDecoration(t *testing.T) {
	for _, tt := range []struct {
		io   IOStreams
		ok   string // how "ok" is marked
		none string // how a missing leaf is marked
	}{
		{IOStreams{StdoutTTY: true}, "✓", "✗"},
		{IOStreams{StdoutTTY: true, StderrTTY: true}, "✓", "✗"},
		{IOStreams{StderrTTY: true}, "ok", "FAILED"},
		{IOStreams{}, "ok", "FAILED"},
	} {
		c := newCertLab(t)
		lab := c.path("lab.yaml")
		code, out, _ := runIO(tt.io, "--lab", lab, "cert", "init")
		if code != 0 || !strings.HasPrefix(out, tt.ok+" CA ") {
			t.Errorf("stdout tty %v, stderr tty %v: cert init: exit %d: %q", tt.io.StdoutTTY, tt.io.StderrTTY, code, out)
		}
		_, out, _ = runIO(tt.io, "--lab", lab, "cert", "status")
		if !regexp.MustCompile(`(?m)^ca .* `+tt.ok+`\n`).MatchString(out) || !regexp.MustCompile(`(?m)^web .* `+tt.none+`\n`).MatchString(out) {
			t.Errorf("stdout tty %v, stderr tty %v: cert status:\n%s", tt.io.StdoutTTY, tt.io.StderrTTY, out)
		}
	}
}
