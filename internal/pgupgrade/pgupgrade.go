package pgupgrade

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"homelab/internal/execx"
)

// Modes of pg_upgrade (how the data files move to the new cluster).
const (
	ModeClone = "clone"
	ModeCopy  = "copy"
	ModeLink  = "link"
)

// Cluster is one major's cluster: its major ("15"), the directory of its
// binaries and its data directory.
type Cluster struct {
	Major string
	Bin   string
	Data  string
}

func (c Cluster) tool(name string) string { return filepath.Join(c.Bin, name) }

// Tools runs PostgreSQL's tools for one upgrade.
type Tools struct {
	// User is the cluster's bootstrap superuser (-U of psql, pg_upgrade,
	// vacuumdb), connecting over the Unix socket.
	User string
	// Cred, when set, is the user the tools run as.
	Cred *syscall.Credential
	// Owner, when set, owns the directories and files made for the new
	// cluster (the old data directory's owner); default Cred.
	Owner *syscall.Credential
	// Timeout bounds each command but pg_upgrade and vacuumdb; default
	// 2 minutes.
	Timeout time.Duration
	// Note gets each line the long tools (pg_upgrade, vacuumdb) print;
	// may be nil.
	Note func(line string)
}

// outputTail is how many of a failing tool's last stdout lines its error
// carries (pg_upgrade says what is wrong on stdout).
const outputTail = 15

// run runs bin dir tool name in dir; stdout lines go to out (may be nil).
// Its error carries the tool's last stdout lines.
func (t *Tools) run(ctx context.Context, dir, name string, args []string, stdin string, out func(string)) error {
	var tail []string
	c := execx.Cmd{Name: name, Args: args, Dir: dir, Credential: t.Cred, Env: []string{"LC_ALL=C.UTF-8", "PGTZ=UTC"},
		OnStdout: func(l []byte) {
			s := string(l)
			if out != nil {
				out(s)
			}
			if tail = append(tail, s); len(tail) > outputTail {
				tail = tail[1:]
			}
		}}
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	err := execx.Run(ctx, c)
	if err != nil && len(tail) > 0 {
		return fmt.Errorf("%w; its last output: %s", err, strings.Join(slices.DeleteFunc(tail, func(s string) bool { return strings.TrimSpace(s) == "" }), " | "))
	}
	return err
}

func (t *Tools) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	d := t.Timeout
	if d <= 0 {
		d = 2 * time.Minute
	}
	return context.WithTimeout(ctx, d)
}

// output runs a short tool and returns its stdout.
func (t *Tools) output(ctx context.Context, dir, name string, args []string, stdin string) (string, error) {
	ctx, cancel := t.bounded(ctx)
	defer cancel()
	var b strings.Builder
	err := t.run(ctx, dir, name, args, stdin, func(l string) { b.WriteString(l + "\n") })
	return b.String(), err
}

// Postmaster is what a running cluster's postmaster.pid says.
type Postmaster struct {
	PID       int
	Port      int
	SocketDir string
}

// Running reads data's postmaster.pid: ok is false when there is none or
// its process is gone (a stale file after a crash).
func Running(data string) (pm Postmaster, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return pm, false, nil
	}
	if err != nil {
		return pm, false, err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 5 {
		return pm, false, nil // being written: not ready
	}
	pm.PID, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	pm.Port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	pm.SocketDir = strings.TrimSpace(lines[4])
	if pm.PID <= 0 {
		return pm, false, nil
	}
	if err := syscall.Kill(pm.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pm, false, nil
	}
	return pm, true, nil
}

// connArgs are psql's connection arguments for the running cluster c.
func (t *Tools) connArgs(c Cluster) ([]string, error) {
	pm, ok, err := Running(c.Data)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("PostgreSQL %s is not running (no live postmaster.pid in %s)", c.Major, c.Data)
	}
	host := pm.SocketDir
	if host == "" {
		host = "/var/run/postgresql"
	}
	return []string{"-h", host, "-p", strconv.Itoa(pm.Port), "-U", t.User}, nil
}

// PSQL runs sql in database db of the running cluster c (psql -XAt,
// ON_ERROR_STOP, fields separated by a tab) and returns its output.
func (t *Tools) PSQL(ctx context.Context, c Cluster, db, sql string) (string, error) {
	args, err := t.connArgs(c)
	if err != nil {
		return "", err
	}
	args = append(args, "-XAtq", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql)
	out, err := t.output(ctx, "/", c.tool("psql"), args, "")
	return strings.TrimSpace(out), err
}

// Settings are what the new cluster's initdb repeats of the old one.
type Settings struct {
	Encoding string `json:"encoding"`
	Collate  string `json:"collate"`
	Ctype    string `json:"ctype"`
	// Provider is the default locale provider: "libc", "icu" or
	// "builtin" (PostgreSQL 17).
	Provider string `json:"provider"`
	// Locale is the ICU (or builtin) locale when Provider is not libc.
	Locale    string `json:"locale,omitempty"`
	ICURules  string `json:"icu_rules,omitempty"`
	Checksums bool   `json:"checksums"`
}

// ReadSettings reads the running cluster c's template1 encoding, locale
// and locale provider (pg_database) and its data checksums setting
// (pg_controldata).
func (t *Tools) ReadSettings(ctx context.Context, c Cluster) (Settings, error) {
	var s Settings
	out, err := t.PSQL(ctx, c, "template1", `SELECT to_jsonb(d) || jsonb_build_object('encoding_name', pg_encoding_to_char(d.encoding)) FROM pg_database d WHERE datname = 'template1'`)
	if err != nil {
		return s, fmt.Errorf("read the settings of PostgreSQL %s: %w", c.Major, err)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(out), &row); err != nil {
		return s, fmt.Errorf("read the settings of PostgreSQL %s: %q: %w", c.Major, out, err)
	}
	str := func(k string) string { v, _ := row[k].(string); return v }
	s.Encoding, s.Collate, s.Ctype = str("encoding_name"), str("datcollate"), str("datctype")
	switch str("datlocprovider") {
	case "i":
		s.Provider = "icu"
	case "b":
		s.Provider = "builtin"
	default:
		s.Provider = "libc"
	}
	s.Locale = str("daticulocale") // 15, 16
	if l := str("datlocale"); l != "" {
		s.Locale = l // 17
	}
	s.ICURules = str("daticurules")
	cd, err := t.output(ctx, "/", c.tool("pg_controldata"), []string{"-D", c.Data}, "")
	if err != nil {
		return s, err
	}
	v, ok := controlField(cd, "Data page checksum version")
	if !ok {
		return s, fmt.Errorf("pg_controldata of %s: no data page checksum version", c.Data)
	}
	s.Checksums = v != "0"
	return s, nil
}

// controlField is the value of pg_controldata's line "name: value".
func controlField(out, name string) (string, bool) {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// InitdbArgs are initdb's arguments for a new cluster in data with the
// settings s and superuser user (local connections trusted until the old
// pg_hba.conf is carried over; the new cluster listens on no TCP address
// before then).
func InitdbArgs(data, user string, s Settings) []string {
	args := []string{"-D", data, "-U", user, "--auth=trust", "-E", s.Encoding, "--lc-collate=" + s.Collate, "--lc-ctype=" + s.Ctype,
		"--locale-provider=" + s.Provider}
	switch s.Provider {
	case "icu":
		args = append(args, "--icu-locale="+s.Locale)
		if s.ICURules != "" {
			args = append(args, "--icu-rules="+s.ICURules)
		}
	case "builtin":
		args = append(args, "--builtin-locale="+s.Locale)
	}
	if s.Checksums {
		args = append(args, "--data-checksums")
	}
	return args
}

// Initdb makes the new cluster c with the settings s. c.Data must not
// exist, or be empty; its parent is made (0755) when missing, and the
// data directory is made 0700 and owned by Owner.
func (t *Tools) Initdb(ctx context.Context, c Cluster, s Settings) error {
	if err := t.MkdirOwned(c.Data); err != nil {
		return err
	}
	_, err := t.output(ctx, "/", c.tool("initdb"), InitdbArgs(c.Data, t.User, s), "")
	return err
}

// MkdirOwned makes dir (0700, owned by Owner) and its missing parents
// (0755).
func (t *Tools) MkdirOwned(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return t.chown(dir)
}

// chown gives path to Owner (else Cred), when set.
func (t *Tools) chown(path string) error {
	o := t.Owner
	if o == nil {
		o = t.Cred
	}
	if o == nil {
		return nil
	}
	return os.Chown(path, int(o.Uid), int(o.Gid))
}

// Extension is an extension installed in a database.
type Extension struct {
	Database string `json:"database"`
	Name     string `json:"name"`
	Version  string `json:"version"`
}

// Extensions lists the extensions of every database of the running
// cluster c that accepts connections.
func (t *Tools) Extensions(ctx context.Context, c Cluster) ([]Extension, error) {
	dbs, err := t.PSQL(ctx, c, "template1", "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
	if err != nil {
		return nil, err
	}
	var out []Extension
	for _, db := range strings.Split(dbs, "\n") {
		if db == "" {
			continue
		}
		rows, err := t.PSQL(ctx, c, db, "SELECT extname, extversion FROM pg_extension ORDER BY 1")
		if err != nil {
			return nil, err
		}
		for _, r := range strings.Split(rows, "\n") {
			if name, v, ok := strings.Cut(r, "\t"); ok {
				out = append(out, Extension{Database: db, Name: name, Version: v})
			}
		}
	}
	return out, nil
}

// singleName is a row of `postgres --single`'s output for a column "name".
var singleName = regexp.MustCompile(`^\s*1: name = "([^"]*)"`)

// Available lists the extensions the major of c can install
// (pg_available_extensions), asked of c's stopped cluster in single-user
// mode (`postgres --single`), so no server need run.
func (t *Tools) Available(ctx context.Context, c Cluster) ([]string, error) {
	out, err := t.output(ctx, "/", c.tool("postgres"), []string{"--single", "-j", "-D", c.Data, "template1"},
		"SELECT name FROM pg_available_extensions;\n\n")
	if err != nil {
		return nil, fmt.Errorf("list the extensions of PostgreSQL %s: %w", c.Major, err)
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if m := singleName.FindStringSubmatch(l); m != nil {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("list the extensions of PostgreSQL %s: postgres --single listed none", c.Major)
	}
	return names, nil
}

// Upgrade is one pg_upgrade run.
type Upgrade struct {
	Old, New Cluster
	Mode     string
	// Port is the port of pg_upgrade's servers (-P, and -p when the old
	// cluster is stopped).
	Port int
	// WorkDir is pg_upgrade's working directory, writable by Cred: its
	// logs, delete_old_cluster.sh and update_extensions.sql are written
	// there.
	WorkDir string
}

func (u Upgrade) args(check bool) ([]string, error) {
	args := []string{"-b", u.Old.Bin, "-B", u.New.Bin, "-d", u.Old.Data, "-D", u.New.Data, "-P", strconv.Itoa(u.Port), "-s", u.WorkDir}
	pm, running, err := Running(u.Old.Data)
	if err != nil {
		return nil, err
	}
	switch {
	case running && !check:
		return nil, fmt.Errorf("PostgreSQL %s still runs (pid %d): stop it before pg_upgrade", u.Old.Major, pm.PID)
	case running:
		args = append(args, "-p", strconv.Itoa(pm.Port)) // a live check
	default:
		args = append(args, "-p", strconv.Itoa(u.Port))
	}
	switch u.Mode {
	case ModeClone, ModeCopy, ModeLink:
		args = append(args, "--"+u.Mode)
	default:
		return nil, fmt.Errorf("unknown pg_upgrade mode %q", u.Mode)
	}
	if check {
		args = append(args, "--check")
	}
	return args, nil
}

// Check runs `pg_upgrade --check` (a live check when the old cluster
// runs). Its error carries pg_upgrade's last lines and the problem
// lists it wrote (such as loadable_libraries.txt: the libraries of
// extensions the new major lacks).
func (t *Tools) Check(ctx context.Context, u Upgrade) error {
	return t.pgUpgrade(ctx, u, true)
}

// Run runs pg_upgrade; the old cluster must be stopped.
func (t *Tools) Run(ctx context.Context, u Upgrade) error {
	return t.pgUpgrade(ctx, u, false)
}

// problemFile is pg_upgrade's pointer to a file listing what it found.
var problemFile = regexp.MustCompile(`(/\S+\.txt)`)

func (t *Tools) pgUpgrade(ctx context.Context, u Upgrade, check bool) error {
	args, err := u.args(check)
	if err != nil {
		return err
	}
	args = append(args, "-U", t.User)
	var files []string
	err = t.run(ctx, u.WorkDir, u.New.tool("pg_upgrade"), args, "", func(l string) {
		if m := problemFile.FindStringSubmatch(l); m != nil {
			files = append(files, m[1])
		}
		if t.Note != nil && strings.TrimSpace(l) != "" {
			t.Note(strings.TrimSpace(l))
		}
	})
	if err == nil {
		return nil
	}
	for _, f := range files {
		if b, rerr := os.ReadFile(f); rerr == nil {
			err = fmt.Errorf("%w; %s: %s", err, filepath.Base(f), strings.Join(strings.Fields(string(b)), " "))
		}
	}
	return err
}

// StopServer stops c's server (pg_ctl stop -m fast) when it runs: one
// that pg_upgrade left running when it was killed.
func (t *Tools) StopServer(ctx context.Context, c Cluster) error {
	if _, ok, err := Running(c.Data); err != nil || !ok {
		return err
	}
	_, err := t.output(ctx, "/", c.tool("pg_ctl"), []string{"-D", c.Data, "-m", "fast", "-w", "-t", "60", "stop"}, "")
	if _, ok, _ := Running(c.Data); !ok {
		return nil
	}
	return err
}

// Analyze runs `vacuumdb --all --analyze-in-stages` on the running
// cluster c (planner statistics, which pg_upgrade does not carry over).
func (t *Tools) Analyze(ctx context.Context, c Cluster) error {
	args, err := t.connArgs(c)
	if err != nil {
		return err
	}
	return t.run(ctx, "/", c.tool("vacuumdb"), append(args, "--all", "--analyze-in-stages"), "", t.noteLine)
}

func (t *Tools) noteLine(l string) {
	if t.Note != nil && strings.TrimSpace(l) != "" {
		t.Note(strings.TrimSpace(l))
	}
}

// UpdateExtensionsFile is the script pg_upgrade writes into its working
// directory when extensions have newer versions in the new major.
const UpdateExtensionsFile = "update_extensions.sql"

// UpdateExtensions runs dir's update_extensions.sql on the running
// cluster c, when pg_upgrade wrote one; ran says whether it did.
func (t *Tools) UpdateExtensions(ctx context.Context, c Cluster, dir string) (ran bool, err error) {
	file := filepath.Join(dir, UpdateExtensionsFile)
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	args, err := t.connArgs(c)
	if err != nil {
		return false, err
	}
	args = append(args, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", file)
	ctx, cancel := t.bounded(ctx)
	defer cancel()
	return true, t.run(ctx, "/", c.tool("psql"), args, "", t.noteLine)
}

// GUCs lists the setting names the major of c knows (`postgres
// --describe-config`).
func (t *Tools) GUCs(ctx context.Context, c Cluster) (map[string]bool, error) {
	out, err := t.output(ctx, "/", c.tool("postgres"), []string{"--describe-config"}, "")
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if name, _, ok := strings.Cut(l, "\t"); ok && name != "" {
			names[strings.ToLower(name)] = true
		}
	}
	return names, nil
}

// FreeSpace is the bytes available to unprivileged users on the file
// system holding path (statfs(2)).
func FreeSpace(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// DirSize is the size in bytes of the regular files under dir.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file removed meanwhile (WAL)
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

// CanClone reports whether the file system of dir clones files
// (FICLONE, reflinks: btrfs, XFS), which pg_upgrade --clone needs; it
// tries with two files it makes and removes in dir.
func CanClone(dir string) (bool, error) {
	src, err := os.CreateTemp(dir, ".homelab-clone-probe-")
	if err != nil {
		return false, err
	}
	defer os.Remove(src.Name())
	defer src.Close()
	if _, err := src.Write(make([]byte, 4096)); err != nil {
		return false, err
	}
	dst, err := os.CreateTemp(dir, ".homelab-clone-probe-")
	if err != nil {
		return false, err
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	err = unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EXDEV), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return false, nil
	}
	return false, err
}

// SyncFS flushes the file system holding path to disk (syncfs(2)).
func SyncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	return nil
}

// Owner is the user and group owning path.
func Owner(path string) (*syscall.Credential, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no owner", path)
	}
	return &syscall.Credential{Uid: st.Uid, Gid: st.Gid}, nil
}

// Major reads the PG_VERSION file of the data directory data: the major
// of the cluster in it.
func Major(data string) (string, error) {
	b, err := os.ReadFile(filepath.Join(data, "PG_VERSION"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// lines reads a text file's lines.
func lines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}
