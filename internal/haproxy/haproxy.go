// Package haproxy drives the HAProxy in front of a blue/green service:
// it rewrites the server lines of one backend section of the
// configuration file (and nothing else of it), checks a configuration
// with `haproxy -c -f`, swaps it in atomically (package atomicfile), and
// reloads HAProxy in master-worker mode, where new workers take over the
// listening sockets and old ones finish their connections, so a reload
// drops no connection.
package haproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"homelab/internal/atomicfile"
	"homelab/internal/execx"
	"homelab/internal/lab"
)

// sectionKeywords start a section of an HAProxy configuration (HAProxy
// 2.6 configuration manual, 2.1 and chapter 3-4): a line whose first word
// is one of them, unindented by convention.
var sectionKeywords = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"peers": true, "resolvers": true, "userlist": true, "mailers": true, "program": true,
	"http-errors": true, "ring": true, "cache": true, "fcgi-app": true,
}

// ErrNoBackend is returned when the configuration has no backend section
// of the given name.
var ErrNoBackend = errors.New("no such backend section")

// Server is one server line of a backend.
type Server struct {
	Name, Address string
	// Disabled: the line has the "disabled" keyword.
	Disabled bool
}

// fields splits a configuration line into words, dropping a comment.
func fields(line string) []string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	return strings.Fields(line)
}

// section returns the line range [start, end) of backend's body (the
// lines after its "backend NAME" line up to the next section), or
// ErrNoBackend.
func section(lines []string, backend string) (start, end int, err error) {
	start = -1
	for i, l := range lines {
		f := fields(l)
		if len(f) == 0 || !sectionKeywords[f[0]] {
			continue
		}
		if start >= 0 {
			return start, i, nil
		}
		if (f[0] == "backend" || f[0] == "listen") && len(f) >= 2 && f[1] == backend {
			start = i + 1
		}
	}
	if start < 0 {
		return 0, 0, fmt.Errorf("%w %q", ErrNoBackend, backend)
	}
	return start, len(lines), nil
}

// Servers returns the server lines of backend in cfg.
func Servers(cfg []byte, backend string) ([]Server, error) {
	lines := strings.Split(string(cfg), "\n")
	start, end, err := section(lines, backend)
	if err != nil {
		return nil, err
	}
	var out []Server
	for _, l := range lines[start:end] {
		f := fields(l)
		if len(f) >= 3 && f[0] == "server" {
			out = append(out, Server{Name: f[1], Address: f[2], Disabled: contains(f[3:], "disabled")})
		}
	}
	return out, nil
}

func contains(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// Active returns the name of the one enabled server of backend in cfg,
// "" when it has none, and an error when it has several (homelab writes
// one).
func Active(cfg []byte, backend string) (string, error) {
	srv, err := Servers(cfg, backend)
	if err != nil {
		return "", err
	}
	var names []string
	for _, s := range srv {
		if !s.Disabled {
			names = append(names, s.Name)
		}
	}
	switch len(names) {
	case 0:
		return "", nil
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("backend %s has %d enabled servers (%s); homelab writes one, the active color", backend, len(names), strings.Join(names, ", "))
}

// Render returns cfg with the server lines of backend replaced by one,
// "server NAME ADDRESS[ OPTIONS]", where the first one was (else at the
// end of the section's non-blank lines), indented as the section's lines
// are; every other line is kept byte for byte. An empty name leaves the
// backend without servers.
func Render(cfg []byte, backend, name, address, options string) ([]byte, error) {
	lines := strings.Split(string(cfg), "\n")
	start, end, err := section(lines, backend)
	if err != nil {
		return nil, err
	}
	indent := "    "
	at := -1
	var body []string
	for i := start; i < end; i++ {
		l := lines[i]
		f := fields(l)
		if len(f) > 0 && len(body) == 0 && at < 0 {
			indent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		}
		if len(f) > 0 && f[0] == "server" {
			if at < 0 {
				at = len(body)
				indent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			}
			continue
		}
		body = append(body, l)
	}
	if at < 0 { // after the last non-blank line of the section
		at = len(body)
		for at > 0 && strings.TrimSpace(body[at-1]) == "" {
			at--
		}
	}
	if name != "" {
		line := indent + "server " + name + " " + address
		if options = strings.TrimSpace(options); options != "" {
			line += " " + options
		}
		body = append(body[:at], append([]string{line}, body[at:]...)...)
	}
	out := append(append(append([]string{}, lines[:start]...), body...), lines[end:]...)
	return []byte(strings.Join(out, "\n")), nil
}

// Binary returns the haproxy to run: bin if set, else haproxy in PATH,
// else /usr/sbin/haproxy (where Debian installs it).
func Binary(bin string) string {
	if bin != "" {
		return bin
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	return "/usr/sbin/haproxy"
}

// CheckError is a configuration that `haproxy -c` refused; Output is
// what it said (its alerts).
type CheckError struct {
	Path   string
	Output string
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("haproxy -c refused the configuration %s: %s", e.Path, e.Output)
}

// Check runs `haproxy -c -f path` (bounded by timeout); a
// configuration it refuses is a *CheckError.
func Check(ctx context.Context, bin, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := execx.Run(ctx, execx.Cmd{Name: Binary(bin), Args: []string{"-c", "-f", path}, Dir: filepath.Dir(path)})
	var ce *execx.CmdError
	if errors.As(err, &ce) && ce.ExitCode > 0 {
		return &CheckError{Path: path, Output: alerts(ce.Stderr)}
	}
	return err
}

// alerts are the [ALERT] lines of HAProxy's output on one line (all of
// it when it has none).
func alerts(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "[ALERT]") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	if len(out) == 0 {
		return oneLine(s)
	}
	return strings.Join(out, " | ")
}

func oneLine(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, " | ")
}

// Swap checks data as HAProxy's configuration (written to
// <path>.homelab-check beside path, so relative paths in it resolve the
// same, then removed) and, if `haproxy -c` takes it, replaces path with
// it atomically; otherwise path is left as it was and the error is a
// *CheckError.
func Swap(ctx context.Context, bin, path string, data []byte, timeout time.Duration) error {
	check := path + ".homelab-check"
	if err := os.WriteFile(check, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", check, err)
	}
	err := Check(ctx, bin, check, timeout)
	os.Remove(check)
	var ce *CheckError
	if errors.As(err, &ce) {
		ce.Path = path + " (as rendered)"
		return ce
	}
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o644, 0o7777)
}

// Reload asks HAProxy to load its configuration again: "reload" on the
// master CLI socket, SIGUSR2 to the master's pid, or the reload command
// (/bin/sh -c in dir, bounded by timeout). It returns what it did, in
// words. A reload is asynchronous: the caller checks its effect (the
// public URL answering from the new color). The master ignores a reload
// that arrives while it is still finishing the previous one, so a caller
// that does not see the effect may reload again.
func Reload(ctx context.Context, r lab.HAProxyReload, dir string, timeout time.Duration) (string, error) {
	switch {
	case r.MasterSocket != "":
		if err := masterCommand(ctx, r.MasterSocket, "reload", timeout); err != nil {
			return "", err
		}
		return "reload on the master socket " + r.MasterSocket, nil
	case r.PIDFile != "":
		b, err := os.ReadFile(r.PIDFile)
		if err != nil {
			return "", fmt.Errorf("read HAProxy's pid file: %w", err)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || pid <= 0 {
			return "", fmt.Errorf("pid file %s: expected a process id, got %q", r.PIDFile, first)
		}
		if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
			return "", fmt.Errorf("signal USR2 to HAProxy's master, pid %d (from %s): %w", pid, r.PIDFile, err)
		}
		return fmt.Sprintf("signal USR2 to HAProxy's master, pid %d", pid), nil
	case r.Command != "":
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := execx.Run(ctx, execx.Cmd{Name: "/bin/sh", Args: []string{"-c", r.Command}, Dir: dir}); err != nil {
			return "", err
		}
		return "ran " + strconv.Quote(r.Command), nil
	}
	return "", errors.New("no HAProxy reload configured")
}

// masterCommand sends cmd to HAProxy's master CLI socket and reads its
// answer until the master closes the connection.
func masterCommand(ctx context.Context, socket, cmd string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("HAProxy master socket: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return fmt.Errorf("HAProxy master socket: %s: %w", cmd, err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		out.Write(sc.Bytes())
		out.WriteByte('\n')
	}
	// HAProxy 2.7+ answers a reload with "Success=0" when the new
	// configuration did not load; 2.6 closes without an answer.
	if strings.Contains(out.String(), "Success=0") {
		return fmt.Errorf("HAProxy reload failed: %s", oneLine(out.String()))
	}
	return nil
}
