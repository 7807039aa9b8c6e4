package providertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/testenv"
)

// argvLog records the argv of every process the cases start: restic
// through a shim given as the client's binary, and each of the kind's and
// the harness's commands through a shim of the same name first in PATH.
// A shim appends "<name> <args>" to the log and execs the real program,
// so the process (its pid, its signals) is the real one. The shims and
// the log are reachable by every user: a provider may run its commands
// as a cluster's OS user (runuser keeps PATH).
type argvLog struct {
	path     string
	restic   string   // the restic shim, once a case needed it
	commands []string // the kind's and the harness's commands
	mu       sync.Mutex
	secrets  []string // every secret the cases used
	// resticUsed: a case used a restic repository, so restic must have
	// been started.
	resticUsed bool
}

// newArgvLog writes the shims into a directory of t and puts it first in
// PATH for t and its subtests (so t must not be parallel).
func newArgvLog(t *testing.T, commands []string) *argvLog {
	t.Helper()
	dir := testenv.SearchableDir(t)
	l := &argvLog{path: filepath.Join(dir, "argv.log"), commands: commands}
	if err := os.WriteFile(l.path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(l.path, 0o666); err != nil { // whatever the umask
		t.Fatal(err)
	}
	for _, name := range commands {
		real, err := exec.LookPath(name)
		if err != nil {
			testenv.Missing(t, "%s not found in PATH", name)
		}
		l.shim(t, name, real)
	}
	t.Setenv("PATH", l.bin()+string(os.PathListSeparator)+os.Getenv("PATH"))
	return l
}

// bin is the directory of the shims.
func (l *argvLog) bin() string { return filepath.Join(filepath.Dir(l.path), "bin") }

// shim writes the shim of program name, which execs real, and returns
// its path.
func (l *argvLog) shim(t *testing.T, name, real string) string {
	t.Helper()
	p := filepath.Join(l.bin(), name)
	body := "#!/bin/sh\nprintf '%s\\n' " + backup.ShellQuote(name) + `" $*" >> ` + backup.ShellQuote(l.path) + "\nexec " + backup.ShellQuote(real) + ` "$@"` + "\n"
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// resticShim returns the shim of restic, for a case that uses a restic
// repository (written on first use, so a provider that uses none needs
// no restic), and requires restic to have been started by the end.
func (l *argvLog) resticShim(t *testing.T) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.restic == "" {
		l.restic = l.shim(t, "restic", testenv.Restic(t))
	}
	l.resticUsed = true
	return l.restic
}

// addSecrets adds values that must not appear in any argv.
func (l *argvLog) addSecrets(secrets ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			l.secrets = append(l.secrets, s)
		}
	}
}

// check fails t if a secret is in any recorded argv, or if a command was
// never started (the record would prove nothing about it).
func (l *argvLog) check(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(l.path)
	if err != nil {
		t.Fatalf("no argv recorded: %v", err)
	}
	var lines []string
	if text := strings.TrimSpace(string(b)); text != "" {
		lines = strings.Split(text, "\n")
	}
	started := map[string]int{}
	for _, line := range lines {
		name, _, _ := strings.Cut(line, " ")
		started[name]++
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	required := l.commands
	if l.resticUsed {
		required = append([]string{"restic"}, required...)
	}
	for _, name := range required {
		if started[name] == 0 {
			t.Errorf("%s was never started: its argv was not checked", name)
		}
	}
	if len(l.secrets) == 0 {
		t.Fatal("no secrets to look for")
	}
	for _, line := range lines {
		for _, s := range l.secrets {
			if strings.Contains(line, s) {
				t.Errorf("a secret in argv: %s", strings.ReplaceAll(line, s, "<secret>"))
			}
		}
	}
	t.Logf("%d processes started: %v", len(lines), started)
}
