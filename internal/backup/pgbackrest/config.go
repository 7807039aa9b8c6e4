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
	"time"

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

// includeDir holds secrets.conf, read only by the commands PostgreSQL
// starts (archive_command, a restored cluster's restore_command).
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
func renderConfig(stateDir string, b *lab.Backup, encrypted bool) (string, error) {
	g := b.PgBackRest
	dir := Dir(stateDir, b.Name)
	var s strings.Builder
	s.WriteString("# written by homelab for target " + b.Name + "; changes are overwritten\n[global]\n")
	if g.Repo.IsS3() {
		repo, err := s3Options(g.Repo, caPath(stateDir, b.Name))
		if err != nil {
			return "", fmt.Errorf("target %s: pgbackrest.repo: %w", b.Name, err)
		}
		s.WriteString(repo)
	} else {
		fmt.Fprintf(&s, "repo1-path=%s\n", g.Repo.Path)
	}
	fmt.Fprintf(&s, "repo1-retention-full=%d\n", retentionFullMax)
	if encrypted {
		s.WriteString("repo1-cipher-type=aes-256-cbc\n")
	}
	timeout := g.ArchiveTimeout
	if timeout == 0 { // a spec not from lab.Load
		timeout = lab.DefaultArchiveTimeout
	}
	fmt.Fprintf(&s, "process-max=%d\nstart-fast=y\narchive-timeout=%d\n", g.ProcessMax, max(1, int(timeout/time.Second)))
	fmt.Fprintf(&s, "lock-path=%s\nlog-path=%s\nlog-level-file=off\nlog-level-console=off\nlog-level-stderr=warn\nspool-path=%s\n",
		filepath.Join(dir, "lock"), filepath.Join(dir, "log"), filepath.Join(dir, "spool"))
	fmt.Fprintf(&s, "\n[%s]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\npg1-user=%s\n",
		g.Stanza, g.Cluster.DataDir, g.Cluster.Port, g.Cluster.SocketDir, g.Cluster.User)
	return s.String(), nil
}

// caPath is where the S3 endpoint's CA (the repository's ca_file) is
// copied for the OS user to read: pgBackRest's repo1-storage-ca-file.
func caPath(stateDir, target string) string { return filepath.Join(Dir(stateDir, target), "s3-ca.pem") }

// secrets are what pgBackRest reads from its PGBACKREST_* environment
// variables (its documentation, "Configuration": any option may be given
// as PGBACKREST_<OPTION>): the repository's cipher passphrase and its S3
// keys, "" when not used.
type secrets struct {
	cipherPass, s3Key, s3KeySecret string
}

// resolveSecrets reads the target's secrets from their *_env/_file
// references.
func resolveSecrets(b *lab.Backup) (secrets, error) {
	var s secrets
	g := b.PgBackRest
	for _, r := range []struct {
		ref lab.Secret
		to  *string
		use bool
	}{
		{g.CipherSecret(), &s.cipherPass, true},
		{g.Repo.AccessKeyID(), &s.s3Key, g.Repo.IsS3()},
		{g.Repo.SecretAccessKey(), &s.s3KeySecret, g.Repo.IsS3()},
	} {
		if !r.use || !r.ref.IsSet() {
			continue
		}
		v, err := r.ref.Resolve()
		if err != nil {
			return s, fmt.Errorf("target %s: %w", b.Name, err)
		}
		*r.to = v
	}
	return s, nil
}

// options are the secrets as pgBackRest option names and values.
func (s secrets) options() [][2]string {
	var out [][2]string
	for _, o := range [][2]string{{"repo1-cipher-pass", s.cipherPass}, {"repo1-s3-key", s.s3Key}, {"repo1-s3-key-secret", s.s3KeySecret}} {
		if o[1] != "" {
			out = append(out, o)
		}
	}
	return out
}

// env is PGBACKREST_REPO1_CIPHER_PASS, PGBACKREST_REPO1_S3_KEY and
// PGBACKREST_REPO1_S3_KEY_SECRET, those set.
func (s secrets) env() []string {
	var out []string
	for _, o := range s.options() {
		out = append(out, "PGBACKREST_"+strings.ToUpper(strings.ReplaceAll(o[0], "-", "_"))+"="+o[1])
	}
	return out
}

// values are the secret values, for redaction.
func (s secrets) values() []string {
	var out []string
	for _, o := range s.options() {
		out = append(out, o[1])
	}
	return out
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

// writeConfig writes the target's configuration, each file 0600 and
// owned by the OS user, in directories only it can enter: pgbackrest.conf
// (no secret), the copy of an S3 endpoint's CA, and, when the target has
// secrets, conf.d/secrets.conf for the commands PostgreSQL starts (the
// archive_command, and a restored cluster's restore_command), which
// cannot get homelab's environment. It returns the secrets.
func writeConfig(stateDir string, b *lab.Backup, u *osUser) (secrets, error) {
	sec, err := resolveSecrets(b)
	if err != nil {
		return sec, err
	}
	enc := sec.cipherPass != ""
	conf, err := renderConfig(stateDir, b, enc)
	if err != nil {
		return sec, err
	}
	dir := Dir(stateDir, b.Name)
	if err := u.canReach(stateDir); err != nil {
		return sec, err
	}
	for _, d := range []string{filepath.Dir(dir), dir, filepath.Join(dir, "conf.d"), filepath.Join(dir, "lock"), filepath.Join(dir, "log"), filepath.Join(dir, "spool")} {
		mode := os.FileMode(0o700)
		if d == filepath.Dir(dir) {
			mode = 0o755 // state_dir/pgbackrest: the OS user must pass through
		}
		if err := os.MkdirAll(d, mode); err != nil {
			return sec, err
		}
		if d != filepath.Dir(dir) {
			if err := errors.Join(os.Chmod(d, mode), u.chown(d)); err != nil {
				return sec, err
			}
		}
	}
	write := func(path string, text []byte) error {
		if err := atomicfile.Write(path, text, 0o600, 0o600); err != nil {
			return err
		}
		return u.chown(path)
	}
	if err := write(ConfigPath(stateDir, b.Name), []byte(conf)); err != nil {
		return sec, err
	}
	if ca := b.PgBackRest.Repo.CAFile; ca != "" && b.PgBackRest.Repo.IsS3() {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return sec, fmt.Errorf("pgbackrest.repo.ca_file: %w", err)
		}
		if err := write(caPath(stateDir, b.Name), pem); err != nil {
			return sec, err
		}
	}
	// cipher.conf: what homelab before secrets.conf wrote (a passphrase
	// maybe no longer right), read by the same --config-include-path.
	if err := os.Remove(filepath.Join(includeDir(stateDir, b.Name), "cipher.conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return sec, err
	}
	path := filepath.Join(includeDir(stateDir, b.Name), "secrets.conf")
	opts := sec.options()
	if len(opts) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return sec, err
		}
		return sec, nil
	}
	text := "[global]\n"
	for _, o := range opts {
		text += o[0] + "=" + o[1] + "\n"
	}
	return sec, write(path, []byte(text))
}

// runner runs pgbackrest for one target.
type runner struct {
	stateDir string
	b        *lab.Backup
	user     *osUser
	sec      secrets
}

func (p *Provider) runner(b *lab.Backup) (*runner, error) {
	u, err := lookupOSUser(b)
	if err != nil {
		return nil, err
	}
	sec, err := writeConfig(p.StateDir, b, u)
	if err != nil {
		return nil, fmt.Errorf("target %s: write pgbackrest configuration: %w", b.Name, err)
	}
	return &runner{stateDir: p.StateDir, b: b, user: u, sec: sec}, nil
}

// cmd is `pgbackrest --config=... --stanza=... <command> args...` with
// the secrets in its environment only (PGBACKREST_*), redacted from its
// errors.
func (r *runner) cmd(command string, args ...string) execx.Cmd {
	a := []string{"--config=" + ConfigPath(r.stateDir, r.b.Name), "--stanza=" + r.b.PgBackRest.Stanza}
	a = append(append(a, args...), command)
	c := execx.Cmd{Name: "pgbackrest", Args: a}
	c.Env, c.Secrets = r.sec.env(), r.sec.values()
	return r.user.cmd(c)
}

func (r *runner) run(ctx context.Context, command string, args ...string) error {
	c := r.cmd(command, args...)
	w := &watch{s3: r.b.PgBackRest.Repo.IsS3()}
	c.OnStderr = w.line
	return r.wrap(execx.Run(ctx, c), w)
}

func (r *runner) output(ctx context.Context, command string, args ...string) ([]byte, error) {
	return r.exec(ctx, &watch{s3: r.b.PgBackRest.Repo.IsS3()}, command, args...)
}

// exec runs a pgbackrest command with w reading its stderr and returns
// its stdout, and its error with the fix when it names one (wrap).
func (r *runner) exec(ctx context.Context, w *watch, command string, args ...string) ([]byte, error) {
	c := r.cmd(command, args...)
	c.OnStderr = w.line
	out, err := execx.Output(ctx, c)
	return out, r.wrap(err, w)
}

// wrap adds the fix to an error whose cause homelab knows: WAL that does
// not reach the repository (*ArchiveError: the postgresql.conf lines),
// an S3 server that refuses or cannot be reached (*S3Error), a stanza
// not created (ErrNoStanza).
func (r *runner) wrap(err error, w *watch) error {
	if err == nil {
		return nil
	}
	var ce *execx.CmdError
	if errors.As(err, &ce) && archivingError(ce.Stderr) {
		return &ArchiveError{Target: r.b.Name, Lines: ConfLines(r.stateDir, r.b), Err: err}
	}
	if s3 := r.s3Error(w, err); s3 != nil {
		return s3
	}
	if w.noStanza {
		return r.noStanza(firstError(err))
	}
	return err
}

// ErrNoStanza is matched (errors.Is) by the error of a command that needs
// the stanza in the repository when it is not there.
var ErrNoStanza = errors.New("stanza not in the repository")

// noStanza is ErrNoStanza for the target, one line with the fix and
// pgBackRest's words.
func (r *runner) noStanza(detail string) error {
	return fmt.Errorf("%w (%s): run homelab backup setup %s, which creates stanza %s (a repository on S3 needs its bucket)",
		ErrNoStanza, detail, r.b.Name, r.b.PgBackRest.Stanza)
}

// firstError is the first "ERROR: [NNN]: ..." line of a failed command's
// stderr, or the error's text.
func firstError(err error) string {
	var ce *execx.CmdError
	if errors.As(err, &ce) {
		for _, l := range strings.Split(ce.Stderr, "\n") {
			if strings.Contains(l, "ERROR") {
				return strings.TrimSpace(l)
			}
		}
	}
	return err.Error()
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

// Error is one line: the fix, then pgbackrest's first error line (the
// caller names the target).
func (e *ArchiveError) Error() string {
	cause := firstError(e.Err)
	return fmt.Sprintf("WAL does not reach the pgBackRest repository: set %s in postgresql.conf and restart PostgreSQL (pgbackrest: %s)",
		strings.Join(strings.Split(strings.TrimSpace(e.Lines), "\n"), " and "), cause)
}

func (e *ArchiveError) Unwrap() error { return e.Err }
