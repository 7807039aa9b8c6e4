package pgbackrest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"homelab/internal/atomicfile"
	"homelab/internal/execx"
	"homelab/internal/lab"
)

// retentionFullMax is pgBackRest's largest repo1-retention-full: set so
// that a backup never expires anything by itself (prune does, see doc.go).
const retentionFullMax = 9999999

// Dir is the directory homelab keeps a target's pgBackRest files in:
// state_dir/pgbackrest/<target>.
func Dir(stateDir, target string) string { return filepath.Join(stateDir, "pgbackrest", target) }

// ConfigPath is the target's pgbackrest.conf.
func ConfigPath(stateDir, target string) string {
	return filepath.Join(Dir(stateDir, target), "pgbackrest.conf")
}

// includeDir holds cipher.conf, read by archive_command only.
func includeDir(stateDir, target string) string {
	return filepath.Join(Dir(stateDir, target), "conf.d")
}

// ArchiveCommand is the archive_command the cluster's postgresql.conf
// needs for target: pgbackrest archive-push with homelab's configuration.
func ArchiveCommand(stateDir string, b *lab.Backup) string {
	return fmt.Sprintf("pgbackrest --config=%s --config-include-path=%s --stanza=%s archive-push %%p",
		ConfigPath(stateDir, b.Name), includeDir(stateDir, b.Name), b.PgBackRest.Stanza)
}

// ConfLines are the postgresql.conf lines WAL archiving to the target's
// repository needs, one per line.
func ConfLines(stateDir string, b *lab.Backup) string {
	return fmt.Sprintf("archive_mode = on\narchive_command = '%s'\n", ArchiveCommand(stateDir, b))
}

// renderConfig is the target's pgbackrest.conf (no secret in it).
func renderConfig(stateDir string, b *lab.Backup, encrypted bool) string {
	g := b.PgBackRest
	dir := Dir(stateDir, b.Name)
	var s strings.Builder
	s.WriteString("# written by homelab for target " + b.Name + "; changes are overwritten\n[global]\n")
	fmt.Fprintf(&s, "repo1-path=%s\nrepo1-retention-full=%d\n", g.Repo.Path, retentionFullMax)
	if encrypted {
		s.WriteString("repo1-cipher-type=aes-256-cbc\n")
	}
	fmt.Fprintf(&s, "process-max=%d\nstart-fast=y\narchive-timeout=60\n", g.ProcessMax)
	fmt.Fprintf(&s, "lock-path=%s\nlog-path=%s\nlog-level-file=off\nlog-level-console=off\nlog-level-stderr=warn\nspool-path=%s\n",
		filepath.Join(dir, "lock"), filepath.Join(dir, "log"), filepath.Join(dir, "spool"))
	fmt.Fprintf(&s, "\n[%s]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\npg1-user=%s\n",
		g.Stanza, g.Cluster.DataDir, g.Cluster.Port, g.Cluster.SocketDir, g.Cluster.User)
	return s.String()
}

// osUser is who runs pgbackrest and pg_ctl: the cluster's OS user when
// homelab is root, nil (homelab itself) otherwise.
type osUser struct {
	name     string
	uid, gid int
}

func lookupOSUser(b *lab.Backup) (*osUser, error) {
	if os.Geteuid() != 0 || b.PgBackRest.Cluster.OSUser == "root" {
		return nil, nil
	}
	u, err := user.Lookup(b.PgBackRest.Cluster.OSUser)
	if err != nil {
		return nil, fmt.Errorf("target %s: cluster.os_user: %w", b.Name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &osUser{name: u.Username, uid: uid, gid: gid}, nil
}

// chown gives path to the OS user (no-op when homelab is not root).
func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, u.uid, u.gid)
}

// canReach checks that the OS user can pass through dir and each of its
// parents (o+x, or owned by it), so that pgbackrest run as that user (and
// the server's archive_command) reads the configuration under dir.
func (u *osUser) canReach(dir string) error {
	if u == nil {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm()&0o001 == 0 && (st == nil || int(st.Uid) != u.uid) {
			return fmt.Errorf("os_user %s cannot enter %s (mode %s), which holds the pgbackrest configuration: chmod o+x %s", u.name, d, fi.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// cmd runs name as the OS user (runuser keeps the environment).
func (u *osUser) cmd(c execx.Cmd) execx.Cmd {
	if u == nil {
		return c
	}
	c.Args = append([]string{"-u", u.name, "--", c.Name}, c.Args...)
	c.Name = "runuser"
	return c
}

// writeConfig writes the target's configuration (and, for an encrypted
// repository, conf.d/cipher.conf for archive_command), each 0600, owned
// by the OS user, in directories only it can enter. It returns the
// passphrase ("" for none).
func writeConfig(stateDir string, b *lab.Backup, u *osUser) (string, error) {
	var pass string
	if sec := b.PgBackRest.CipherSecret(); sec.IsSet() {
		v, err := sec.Resolve()
		if err != nil {
			return "", fmt.Errorf("target %s: %w", b.Name, err)
		}
		pass = v
	}
	dir := Dir(stateDir, b.Name)
	if err := u.canReach(stateDir); err != nil {
		return "", err
	}
	for _, d := range []string{filepath.Dir(dir), dir, filepath.Join(dir, "conf.d"), filepath.Join(dir, "lock"), filepath.Join(dir, "log"), filepath.Join(dir, "spool")} {
		mode := os.FileMode(0o700)
		if d == filepath.Dir(dir) {
			mode = 0o755 // state_dir/pgbackrest: the OS user must pass through
		}
		if err := os.MkdirAll(d, mode); err != nil {
			return "", err
		}
		if d != filepath.Dir(dir) {
			if err := errors.Join(os.Chmod(d, mode), u.chown(d)); err != nil {
				return "", err
			}
		}
	}
	write := func(path, text string) error {
		if err := atomicfile.Write(path, []byte(text), 0o600, 0o600); err != nil {
			return err
		}
		return u.chown(path)
	}
	if err := write(ConfigPath(stateDir, b.Name), renderConfig(stateDir, b, pass != "")); err != nil {
		return "", err
	}
	cipher := filepath.Join(includeDir(stateDir, b.Name), "cipher.conf")
	if pass == "" {
		if err := os.Remove(cipher); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return "", nil
	}
	return pass, write(cipher, "[global]\nrepo1-cipher-pass="+pass+"\n")
}

// runner runs pgbackrest for one target.
type runner struct {
	stateDir string
	b        *lab.Backup
	user     *osUser
	pass     string
}

func (p *Provider) runner(b *lab.Backup) (*runner, error) {
	u, err := lookupOSUser(b)
	if err != nil {
		return nil, err
	}
	pass, err := writeConfig(p.StateDir, b, u)
	if err != nil {
		return nil, fmt.Errorf("target %s: write pgbackrest configuration: %w", b.Name, err)
	}
	return &runner{stateDir: p.StateDir, b: b, user: u, pass: pass}, nil
}

// cmd is `pgbackrest --config=... --stanza=... <command> args...` with
// the passphrase in the environment only.
func (r *runner) cmd(command string, args ...string) execx.Cmd {
	a := []string{"--config=" + ConfigPath(r.stateDir, r.b.Name), "--stanza=" + r.b.PgBackRest.Stanza}
	a = append(append(a, args...), command)
	c := execx.Cmd{Name: "pgbackrest", Args: a}
	if r.pass != "" {
		c.Env = []string{"PGBACKREST_REPO1_CIPHER_PASS=" + r.pass}
		c.Secrets = []string{r.pass}
	}
	return r.user.cmd(c)
}

func (r *runner) run(ctx context.Context, command string, args ...string) error {
	return r.wrap(execx.Run(ctx, r.cmd(command, args...)))
}

func (r *runner) output(ctx context.Context, command string, args ...string) ([]byte, error) {
	out, err := execx.Output(ctx, r.cmd(command, args...))
	return out, r.wrap(err)
}

// wrap adds the fix to an error that says WAL does not reach the
// repository: the postgresql.conf lines.
func (r *runner) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ce *execx.CmdError
	if errors.As(err, &ce) && archivingError(ce.Stderr) {
		return &ArchiveError{Target: r.b.Name, Lines: ConfLines(r.stateDir, r.b), Err: err}
	}
	return err
}

// archivingError reports whether pgbackrest's stderr says WAL archiving
// is off or does not reach this stanza's repository.
func archivingError(stderr string) bool {
	for _, s := range []string{"archive_mode must be enabled", "archive_command", "was not archived before the", "[087]", "[082]"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// ArchiveError is WAL archiving not configured, or not reaching the
// target's repository: Lines are what postgresql.conf needs.
type ArchiveError struct {
	Target string
	Lines  string
	Err    error
}

// Error is one line: the fix, then pgbackrest's first error line.
func (e *ArchiveError) Error() string {
	cause := e.Err.Error()
	var ce *execx.CmdError
	if errors.As(e.Err, &ce) {
		for _, l := range strings.Split(ce.Stderr, "\n") {
			if strings.Contains(l, "ERROR") {
				cause = strings.TrimSpace(l)
				break
			}
		}
	}
	return fmt.Sprintf("target %s: WAL does not reach the pgBackRest repository: set %s in postgresql.conf and restart PostgreSQL (pgbackrest: %s)",
		e.Target, strings.Join(strings.Split(strings.TrimSpace(e.Lines), "\n"), " and "), cause)
}

func (e *ArchiveError) Unwrap() error { return e.Err }
