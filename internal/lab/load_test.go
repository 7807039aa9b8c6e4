package lab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSyntaxErrorLines checks the line of each kind of parse error,
// yaml.v3 giving a wrong one or none at all for most of them.
func TestSyntaxErrorLines(t *testing.T) {
	tests := []struct{ name, data, want string }{
		// yaml.v3: "line 3" (parser errors are numbered from 0).
		{"unclosed [ on line 4", "name: x\nstate_dir: /s\nservices:\n  a: [1, 2\nbackups: {}\n", "lab.yaml:4: did not find expected ',' or ']'"},
		{"unclosed { on line 3", "name: x\nservices:\n  a: {b: 1\nbackups: {}\n", "lab.yaml:3: did not find expected ',' or '}'"},
		{"unclosed [ on line 1", "a: [1, 2\n", "lab.yaml:1: did not find expected ',' or ']'"},
		{"unclosed [ of a complex key", "name: x\n? [a\n", "lab.yaml:2: did not find expected ',' or ']'"},
		{"sequence after a mapping", "name: x\n- a\n", "lab.yaml:2: did not find expected key"},
		// The line of the nested mapping, nearest to the problem (4) known.
		{"sequence in a nested mapping", "x:\n  a: 1\n  b: 2\n  - d\n", "lab.yaml:2: did not find expected key"},
		{"duplicate directive", "%YAML 1.1\n%YAML 1.1\n---\na: 1\n", "lab.yaml:2: found duplicate %YAML directive"},
		{"undefined tag handle", "name: x\n!x!y foo: 1\n", "lab.yaml:2: found undefined tag handle"},
		// yaml.v3: no line.
		{"unclosed quote, no newline", `name: "abc`, "lab.yaml:1: found unexpected end of stream"},
		{"mapping value on line 1", "a: b: c\n", "lab.yaml:1: mapping values are not allowed in this context"},
		{"tab on line 1", "\tname: x\n", "lab.yaml:1: found character that cannot start any token"},
		{"unknown anchor", "name: x\nstate_dir: *nope\n", "lab.yaml:2:12: unknown anchor 'nope' referenced"},
		{"unknown anchor in a flow list", "a: &x 1\nb: [*x, *nope]\n", "lab.yaml:2:9: unknown anchor 'nope' referenced"},
		{"invalid UTF-8", "name: x\nstate_dir: a\xffb\n", "lab.yaml:2:13: invalid UTF-8 (byte 0xff): a lab file must be UTF-8 text"},
		{"truncated UTF-8", "name: x\n\nstate_dir: é\xc3", "lab.yaml:3:13: invalid UTF-8 (byte 0xc3): a lab file must be UTF-8 text"},
		{"NUL", "name: x\x00\n", "lab.yaml:1:8: control character U+0000 is not allowed"},
		{"DEL after CRLF", "name: x\r\nstate_dir: \x7f\n", "lab.yaml:2:12: control character U+007F is not allowed"},
		{"C1 control", "name: \u0090\n", "lab.yaml:1:7: control character U+0090 is not allowed"},
		{"UTF-16", "\xfe\xff\x00a", "lab.yaml:1:1: the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8"},
		// yaml.v3: the line after the last one.
		{"unclosed quote on line 1", "name: \"abc\n\n", "lab.yaml:1: found unexpected end of stream"},
		// yaml.v3 has these right.
		{"unclosed quote on line 2", "name: x\nstate_dir: 'abc\nfoo: 1\n\n\n", "lab.yaml:2: found unexpected end of stream"},
		{"bad indentation", "name: x\n  bad: 1\n", "lab.yaml:2: mapping values are not allowed in this context"},
		{"tab indentation", "name: x\n\tfoo: 1\n", "lab.yaml:2: found a tab character that violates indentation"},
		{"unknown escape after a BOM", "\ufeffname: x\nfoo: \"\\q\"\n", "lab.yaml:2: found unknown escape character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("lab.yaml", []byte(tt.data))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestLoadTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: refused from its size, never read.
	if err := f.Truncate(60 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Load(big)
	if want := big + ": too large (60 MiB): a lab file may be at most 1 MiB"; err == nil || err.Error() != want {
		t.Errorf("Load(60 MiB) error = %v, want %s", err, want)
	}

	// Not a regular file: read up to the cap.
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		line := []byte("# " + strings.Repeat("x", 1021) + "\n")
		for range 2 << 10 { // 2 MiB, or until the reader is gone
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}()
	_, err = Load(fifo)
	if want := fifo + ": too large: a lab file may be at most 1 MiB"; err == nil || err.Error() != want {
		t.Errorf("Load(fifo) error = %v, want %s", err, want)
	}

	data := []byte("name: x\n" + strings.Repeat("#\n", MaxFileSize/2))
	if _, err := Parse("lab.yaml", data); err == nil || !strings.Contains(err.Error(), "lab.yaml: too large (1048584 bytes): a lab file may be at most 1 MiB") {
		t.Errorf("Parse(%d bytes) error = %v", len(data), err)
	}
	if _, err := Parse("lab.yaml", data[:MaxFileSize]); err != nil {
		t.Errorf("Parse(MaxFileSize bytes) error = %v", err)
	}
}

func TestGuard(t *testing.T) {
	_, err := guard("lab.yaml", func() (*Lab, error) {
		var m map[string]int
		m["x"]++
		return nil, nil
	})
	var errs *Errors
	if !errors.As(err, &errs) || !errors.Is(err, errInternal) {
		t.Fatalf("error = %v, want *Errors wrapping errInternal", err)
	}
	if want := "lab.yaml: internal error while checking the lab file (please report it): assignment to entry in nil map"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if !strings.Contains(errs.List[0].Err.Error(), "TestGuard") {
		t.Errorf("the wrapped error has no stack:\n%v", errs.List[0].Err)
	}
}

// TestMergeExpansion checks that merge keys and aliases, each fanning out
// to ten more, are refused once they expand past maxSteps nodes (here
// 10^9) rather than decoded for ever.
func TestMergeExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("x0: &m0 {url: /r}\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("x" + string(rune('0'+i)) + ": &m" + string(rune('0'+i)) + " {<<: [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*m" + string(rune('0'+i-1)))
		}
		b.WriteString("]}\n")
	}
	b.WriteString("repositories: {r: *m9}\n")
	_, err := Parse("lab.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "aliases and merge keys expand to more than") {
		t.Fatalf("error = %v", err)
	}
}

func TestURLPassword(t *testing.T) {
	for url, want := range map[string]bool{
		"rest:http://user:pw@host/":              true,
		"rest:https://user:p%40ss@host:8000/lab": true,
		"s3:https://key:secret@minio.lab/bucket": true,
		"sftp:user:pw@host:/srv/restic":          true,
		"sftp://user:pw@host:2222//srv/restic":   true,
		"rest:https://user@host:8000/":           false,
		"rest:http://host:8000/a@b":              false,
		"sftp:user@host:/srv/restic":             false,
		"s3:s3.amazonaws.com/bucket":             false,
		"rclone:remote:bucket/path":              false,
		"/srv/restic":                            false,
		"local:/srv/user:pw@x":                   false,
	} {
		if got := urlPassword(url); got != want {
			t.Errorf("urlPassword(%q) = %v, want %v", url, got, want)
		}
	}
	_, err := Load("testdata/repository_url.bad.yaml")
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "wJalrXUtnFEMI") {
		t.Errorf("error shows the password:\n%v", err)
	}
}
