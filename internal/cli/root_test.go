package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// runIO runs homelab as Main does, over buffers with the given terminals,
// and returns the exit code, stdout and stderr.
func runIO(io IOStreams, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	io.In, io.Out, io.ErrOut = strings.NewReader(""), &out, &errOut
	code := Run(context.Background(), &io, args)
	return code, out.String(), errOut.String()
}

// TestJSONExitError: with --json, a failure not shown already ends with
// one exit_error line on stderr, as restic writes it, whatever the error
// (usage, bad lab file, failed command); without --json it is the plain
// "homelab: ..." line. A failure shown already (cert status's table) adds
// nothing.
func TestJSONExitError(t *testing.T) {
	c := newCertLab(t)
	labFile := c.path("lab.yaml")
	bad := c.path("bad.yaml")
	if err := os.WriteFile(bad, []byte("backups: {x: {provider: nope}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		code    int
		json    bool
		message string // a regular expression
	}{
		{args: []string{"--json", "--lab", bad, "cert", "status"}, code: ExitUsage, json: true, message: `bad\.yaml:1:25: backups\.x\.provider: unknown provider "nope"`},
		{args: []string{"--lab", labFile, "cert", "status", "--bogus", "--json"}, code: ExitUsage, json: true, message: `^unknown flag: --bogus$`},
		{args: []string{"--lab", labFile, "--json", "cert", "issue", "nope"}, code: ExitUsage, json: true, message: `^unknown certificate "nope" \(known: web\)$`},
		{args: []string{"--lab", labFile, "--json", "cert", "issue", "web"}, code: ExitFailed, json: true, message: `^no CA: run homelab cert init \(.*ca\.pem does not exist\)$`},
		{args: []string{"--json=false", "--lab", bad, "cert", "status"}, code: ExitUsage, message: `bad\.yaml:1:25: backups\.x\.provider: unknown provider "nope"`},
		{args: []string{"--lab", bad, "cert", "status"}, code: ExitUsage, message: `bad\.yaml:1:25: backups\.x\.provider: unknown provider "nope"`},
		{args: []string{"--lab", labFile, "cert", "status", "--bogus"}, code: ExitUsage, message: `^unknown flag: --bogus$`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runIO(IOStreams{}, tt.args...)
			if code != tt.code || out != "" {
				t.Fatalf("exit %d, want %d; stdout %q", code, tt.code, out)
			}
			line := strings.TrimSuffix(errOut, "\n")
			message := strings.TrimPrefix(line, "homelab: ")
			if tt.json {
				if strings.Count(errOut, "\n") != 1 {
					t.Fatalf("stderr is not one line: %q", errOut)
				}
				var got map[string]any
				if err := json.Unmarshal([]byte(line), &got); err != nil {
					t.Fatalf("stderr %q: %v", line, err)
				}
				if len(got) != 3 || got["message_type"] != "exit_error" || got["code"] != float64(tt.code) {
					t.Errorf("exit_error %q, want message_type, code %d, message", line, tt.code)
				}
				message, _ = got["message"].(string)
			} else if !strings.HasPrefix(line, "homelab: ") {
				t.Errorf("stderr %q, want homelab: <message>", line)
			}
			if !regexp.MustCompile(tt.message).MatchString(message) {
				t.Errorf("message %q, want %s", message, tt.message)
			}
		})
	}

	// The leaf is not issued: cert status shows it and exits 1, with no
	// exit_error line after the report.
	code, out, errOut := runIO(IOStreams{}, "--json", "--lab", labFile, "cert", "status")
	if code != ExitFailed || errOut != "" || !strings.Contains(out, `"message_type":"cert_status"`) {
		t.Errorf("cert status --json: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
