package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"homelab/internal/execx"
)

// MinVersion is the oldest restic homelab works with.
var MinVersion = Version{0, 17, 0}

// Version is a restic release number.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

var versionRE = regexp.MustCompile(`restic (\d+)\.(\d+)\.(\d+)`)

// ParseVersion reads the output of `restic version`.
func ParseVersion(out string) (Version, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("cannot read restic version from %q", strings.TrimSpace(out))
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, nil
}

// Config is one repository.
type Config struct {
	// Binary is the restic program; default "restic" from PATH, or
	// $HOMELAB_RESTIC when set.
	Binary string
	// Name is the repository's name in the lab file, for messages
	// (BackendError); empty: the URL.
	Name string
	// Repository is any restic repository URL.
	Repository string
	// PasswordFile is passed as RESTIC_PASSWORD_FILE.
	PasswordFile string
	// Password, when PasswordFile is empty, is passed as RESTIC_PASSWORD.
	Password string
	// Env is extra environment (KEY=VALUE) for restic, e.g. S3 credentials.
	Env []string
	// Secrets are further values to redact from errors (e.g. S3 keys).
	Secrets []string
	// RetryLock makes restic wait up to this long for a repository lock
	// (restic --retry-lock); 0 fails at once with ErrLocked.
	RetryLock time.Duration
	// RemoveStaleLocks: when a command fails with ErrLocked and every lock
	// of the repository was taken on this host by a process that no
	// longer exists (a restic killed with its homelab), the locks are
	// removed (restic unlock, which removes only locks restic itself
	// calls stale) and the command runs once more. Each removed lock is
	// logged as a warning and passed to OnStaleLock. A lock of another
	// host, or of a live process, is never removed: the command fails
	// with ErrLocked as before (see `homelab repo unlock`).
	RemoveStaleLocks bool
	// OnStaleLock, when set, gets each lock RemoveStaleLocks removed.
	OnStaleLock func(LockInfo)
	Logger      *slog.Logger
}

// Client runs restic against one repository.
type Client struct {
	cfg Config
	log *slog.Logger
}

var versionCache sync.Map // binary -> versionResult

type versionResult struct {
	v   Version
	err error
}

// New returns a client after checking, once per binary and process, that
// restic is installed and at least MinVersion. The error says how to get a
// newer restic.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg.Binary = DefaultBinary(cfg.Binary)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PasswordFile == "" && cfg.Password == "" {
		return nil, errors.New("restic: no repository password: set password_file or password_env")
	}
	c := &Client{cfg: cfg, log: cfg.Logger}
	if _, err := c.Version(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// DefaultBinary returns bin, else $HOMELAB_RESTIC, else "restic".
func DefaultBinary(bin string) string {
	if bin == "" {
		bin = os.Getenv("HOMELAB_RESTIC")
	}
	if bin == "" {
		bin = "restic"
	}
	return bin
}

// Version returns the restic version, refusing one older than MinVersion.
func (c *Client) Version(ctx context.Context) (Version, error) { return Probe(ctx, c.cfg.Binary) }

// Probe runs `restic version` of binary (once per process) and refuses a
// version older than MinVersion with an error that says how to get one.
func Probe(ctx context.Context, binary string) (Version, error) {
	if r, ok := versionCache.Load(binary); ok {
		vr := r.(versionResult)
		return vr.v, vr.err
	}
	out, err := execx.Output(ctx, execx.Cmd{Name: binary, Args: []string{"version"}})
	var v Version
	if err == nil {
		v, err = ParseVersion(string(out))
	}
	if err != nil {
		err = fmt.Errorf("restic not usable (%v): install restic >= %s; see README.md (scripts/install-restic.sh builds it from the Go module proxy)", err, MinVersion)
	} else if v.Less(MinVersion) {
		err = fmt.Errorf("%w: found %s, need >= %s (Debian bookworm ships 0.14): run scripts/install-restic.sh, or take restic from Debian trixie or https://github.com/restic/restic/releases", ErrTooOld, v, MinVersion)
	}
	if ctx.Err() == nil {
		versionCache.Store(binary, versionResult{v, err})
	}
	return v, err
}

// env returns the repository environment for the child. The password never
// goes to argv.
func (c *Client) env() []string {
	env := []string{"RESTIC_REPOSITORY=" + c.cfg.Repository, "RESTIC_PROGRESS_FPS=2"}
	if c.cfg.PasswordFile != "" {
		env = append(env, "RESTIC_PASSWORD_FILE="+c.cfg.PasswordFile)
	} else {
		env = append(env, "RESTIC_PASSWORD="+c.cfg.Password)
	}
	return append(env, c.cfg.Env...)
}

// diagnose asks the S3 server of a repository on S3 what is wrong when
// restic's words say too little (exit 10, "no repository", is what
// restic's HEAD request makes of a missing bucket; "Access Denied." of a
// wrong secret key) and sets re.Backend to what it answers (diagnoseS3).
func (c *Client) diagnose(ctx context.Context, re *Error) {
	if ctx.Err() != nil {
		return
	}
	if cause, words := diagnoseS3(ctx, c.cfg.Repository, c.cfg.Env); cause != nil {
		re.Backend = &BackendError{Repository: c.name(), Cause: cause, Detail: execx.Redact(words, c.secrets()...)}
	}
}

// name is the repository's name for messages: Config.Name, else its URL.
func (c *Client) name() string {
	if c.cfg.Name != "" {
		return c.cfg.Name
	}
	return c.cfg.Repository
}

func (c *Client) secrets() []string {
	return append([]string{c.cfg.Password}, c.cfg.Secrets...)
}

// call is one restic invocation.
type call struct {
	op       string
	args     []string
	extraEnv []string
	stdout   io.Writer              // raw stdout (for dump); exclusive with onJSON
	onJSON   func(envelope, []byte) // JSON lines of stdout
	stdin    io.Reader
	noLock   bool
	// secrets are further values redacted from this call's errors (a
	// new key's password).
	secrets []string
}

// run runs one restic command; see Config.RemoveStaleLocks for the one
// retry after removing locks left by dead processes of this host.
func (c *Client) run(ctx context.Context, k call) error {
	if c.cfg.RemoveStaleLocks && c.cfg.RetryLock > 0 && !k.noLock {
		// A waiting command (--retry-lock) would wait out RetryLock on a
		// dead process's lock before failing: look first.
		if _, err := c.RemoveStaleLocks(ctx, StaleRule{}); err != nil && ctx.Err() == nil && !errors.Is(err, ErrNoRepository) {
			c.log.Warn("could not look for stale locks", "op", k.op, "err", err)
		}
	}
	err := c.runOnce(ctx, k)
	if !errors.Is(err, ErrLocked) || !c.cfg.RemoveStaleLocks || k.noLock || k.stdin != nil || ctx.Err() != nil {
		return err
	}
	removed, rerr := c.RemoveStaleLocks(ctx, StaleRule{})
	if rerr != nil {
		c.log.Warn("could not remove stale locks", "op", k.op, "err", rerr)
		return err
	}
	if len(removed) == 0 {
		return err
	}
	return c.runOnce(ctx, k)
}

func (c *Client) runOnce(ctx context.Context, k call) error {
	args := append([]string{}, k.args...)
	if c.cfg.RetryLock > 0 && !k.noLock {
		args = append([]string{"--retry-lock", c.cfg.RetryLock.String()}, args...)
	}
	var exitMsg string
	var itemErrs, plain []string
	// A command failing because of its storage is stopped as soon as
	// stderr says so (backendWatch), not after restic's 15 minutes.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	watch := &backendWatch{repo: c.name()}
	onStderr := func(line string) {
		if watch.line(line) {
			c.log.Debug("restic: stopped: the repository's storage fails", "op", k.op, "err", watch.err)
			stop()
		}
		if env, ok := parseLine([]byte(line)); ok {
			switch env.MessageType {
			case "exit_error":
				exitMsg = env.Message
				return
			case "error":
				itemErrs = append(itemErrs, strings.TrimSpace(env.errorText()))
				return
			}
		}
		// Lines that are not restic's JSON: warnings, or the stderr of a
		// --stdin-from-command child such as pg_dump. Keep the last few.
		if line = strings.TrimSpace(line); line != "" {
			plain = append(plain, line)
			if len(plain) > 4 {
				plain = plain[1:]
			}
		}
		c.log.Debug("restic", "op", k.op, "stderr", line)
	}
	cmd := execx.Cmd{
		Name:     c.cfg.Binary,
		Args:     args,
		Env:      append(c.env(), k.extraEnv...),
		Secrets:  append(c.secrets(), k.secrets...),
		Stdin:    k.stdin,
		Stdout:   k.stdout,
		OnStderr: onStderr,
	}
	if k.onJSON != nil {
		cmd.OnStdout = func(line []byte) {
			if env, ok := parseLine(line); ok {
				k.onJSON(env, line)
				return
			}
			if len(bytes.TrimSpace(line)) > 0 && line[0] == '[' {
				k.onJSON(envelope{MessageType: "array"}, line)
				return
			}
			c.log.Debug("restic", "op", k.op, "stdout", string(line))
		}
	}
	err := execx.Run(rctx, cmd)
	if err == nil {
		return nil
	}
	re := &Error{Op: k.op, ExitCode: -1, Err: err}
	if watch.err != nil && ctx.Err() == nil {
		re.Backend = watch.err
		c.diagnose(ctx, re)
		return re
	}
	if ce, ok := asCmdError(err); ok {
		re.ExitCode = ce.ExitCode
		re.Message = exitMsg
		if re.Message == "" {
			re.Message = strings.TrimSpace(ce.Stderr)
		}
		if len(itemErrs) > 0 && !strings.Contains(re.Message, itemErrs[0]) {
			re.Message = strings.Join(append(itemErrs[:min(3, len(itemErrs))], re.Message), "; ")
		}
		if exitMsg != "" && len(plain) > 0 {
			re.Message += " (" + strings.Join(plain, "; ") + ")"
		}
		re.Message = strings.TrimPrefix(execx.Redact(re.Message, append(c.secrets(), k.secrets...)...), "Fatal: ")
		// restic's own final words when it printed them: the plain lines
		// may be a --stdin-from-command child's (pg_dump's own refused
		// connection is no fault of the repository).
		final := re.Message
		if exitMsg != "" {
			final = execx.Redact(exitMsg, append(c.secrets(), k.secrets...)...)
		}
		re.Backend = watch.final(final)
		if re.ExitCode == 10 || re.Backend != nil {
			c.diagnose(ctx, re)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("restic %s: %w", k.op, ctx.Err())
	}
	return re
}

// Init creates the repository. It returns ErrAlreadyInitialized when a
// repository exists there already.
func (c *Client) Init(ctx context.Context) error {
	err := c.run(ctx, call{op: "init", args: []string{"init", "--json"}, onJSON: func(envelope, []byte) {}, noLock: true})
	var re *Error
	if errors.As(err, &re) && strings.Contains(re.Message, "already") {
		return ErrAlreadyInitialized
	}
	return err
}

// ErrAlreadyInitialized: restic init found an existing repository.
var ErrAlreadyInitialized = errors.New("repository already initialized")

// BackupOptions selects what restic backup reads.
type BackupOptions struct {
	Paths    []string
	Excludes []string
	Tags     []string
	Host     string    // --host; empty: restic's default (the hostname)
	Time     time.Time // --time; zero: now
	// StdinCommand, when set, makes restic run it and store its stdout as
	// StdinFilename (restic --stdin-from-command): a non-zero exit of the
	// command fails the backup and no snapshot is written.
	StdinCommand  []string
	StdinFilename string
	// CommandEnv is extra environment for restic and hence the stdin
	// command (e.g. PGPASSWORD). Never argv.
	CommandEnv []string
}

// Backup runs restic backup and returns its summary. progress, when not
// nil, gets restic's status lines. On exit code 3 it returns the summary
// (the snapshot exists) together with an error matching ErrPartial.
func (c *Client) Backup(ctx context.Context, o BackupOptions, progress func(Status)) (BackupSummary, error) {
	args := []string{"backup", "--json"}
	for _, t := range o.Tags {
		args = append(args, "--tag", t)
	}
	for _, e := range o.Excludes {
		args = append(args, "--exclude", e)
	}
	if o.Host != "" {
		args = append(args, "--host", o.Host)
	}
	if !o.Time.IsZero() {
		args = append(args, "--time", o.Time.Local().Format("2006-01-02 15:04:05"))
	}
	if len(o.StdinCommand) > 0 {
		name := o.StdinFilename
		if name == "" {
			name = "stdin"
		}
		args = append(args, "--stdin-filename", name, "--stdin-from-command", "--")
		args = append(args, o.StdinCommand...)
	} else {
		if len(o.Paths) == 0 {
			return BackupSummary{}, errors.New("restic backup: no paths")
		}
		args = append(args, "--")
		args = append(args, o.Paths...)
	}
	var sum BackupSummary
	var got bool
	err := c.run(ctx, call{op: "backup", args: args, extraEnv: o.CommandEnv, onJSON: func(env envelope, line []byte) {
		switch env.MessageType {
		case "status":
			emitStatus(progress, line)
		case "summary":
			if json.Unmarshal(line, &sum) == nil {
				got = true
			}
		}
	}})
	if err == nil && (!got || sum.SnapshotID == "") {
		err = errors.New("restic backup: finished without a snapshot id in its summary")
	}
	return sum, err
}

// Snapshots lists the snapshots carrying all of tags, oldest first.
func (c *Client) Snapshots(ctx context.Context, tags ...string) ([]Snapshot, error) {
	args := []string{"snapshots", "--json", "--no-lock"}
	if len(tags) > 0 {
		args = append(args, "--tag", strings.Join(tags, ","))
	}
	var buf bytes.Buffer
	if err := c.run(ctx, call{op: "snapshots", args: args, stdout: &buf}); err != nil {
		return nil, err
	}
	var snaps []Snapshot
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &snaps); err != nil {
		return nil, fmt.Errorf("restic snapshots: parse output: %w", err)
	}
	return snaps, nil
}

// RestoreOptions tunes restic restore.
type RestoreOptions struct {
	// Verify makes restic read the restored files back and compare them
	// with the repository (restic restore --verify).
	Verify  bool
	Include []string
	// NoCache reads everything from the repository, never from restic's
	// local cache (restic --no-cache): what a restore drill must prove.
	NoCache bool
}

// Restore restores snapshot id (or "latest" together with tags) into
// target.
func (c *Client) Restore(ctx context.Context, id, target string, o RestoreOptions, progress func(Status)) (RestoreSummary, error) {
	args := []string{"restore", "--json", "--target", target}
	if o.Verify {
		args = append(args, "--verify")
	}
	if o.NoCache {
		args = append([]string{"--no-cache"}, args...)
	}
	for _, i := range o.Include {
		args = append(args, "--include", i)
	}
	args = append(args, "--", id)
	var sum RestoreSummary
	var verifyErrs []string
	err := c.run(ctx, call{op: "restore", args: args, onJSON: func(env envelope, line []byte) {
		switch env.MessageType {
		case "status":
			emitStatus(progress, line)
		case "summary":
			_ = json.Unmarshal(line, &sum)
		case "error":
			verifyErrs = append(verifyErrs, env.errorText())
		}
	}})
	if err == nil && len(verifyErrs) > 0 {
		err = fmt.Errorf("restic restore: %d errors: %s", len(verifyErrs), strings.Join(verifyErrs[:min(3, len(verifyErrs))], "; "))
	}
	return sum, err
}

// Dump writes one file of snapshot id to w (restic dump). With noCache it
// reads only from the repository (restic --no-cache).
func (c *Client) Dump(ctx context.Context, id, path string, w io.Writer, noCache bool) error {
	args := []string{"dump", "--", id, path}
	if noCache {
		args = append([]string{"--no-cache"}, args...)
	}
	return c.run(ctx, call{op: "dump", args: args, stdout: w})
}

// Policy is a restic forget policy (--keep-*). Zero fields are not passed.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Within                                       string
}

// Args returns the policy as restic forget flags.
func (p Policy) Args() []string {
	var a []string
	add := func(flag string, n int) {
		if n > 0 {
			a = append(a, flag, strconv.Itoa(n))
		}
	}
	add("--keep-last", p.Last)
	add("--keep-hourly", p.Hourly)
	add("--keep-daily", p.Daily)
	add("--keep-weekly", p.Weekly)
	add("--keep-monthly", p.Monthly)
	add("--keep-yearly", p.Yearly)
	if p.Within != "" {
		a = append(a, "--keep-within", p.Within)
	}
	return a
}

// ForgetPlan asks restic which snapshots carrying all of tags the policy
// keeps and removes (restic forget --dry-run), treating them as one group.
func (c *Client) ForgetPlan(ctx context.Context, tags []string, p Policy) ([]ForgetGroup, error) {
	args := []string{"forget", "--json", "--dry-run", "--group-by", ""}
	if len(tags) > 0 {
		args = append(args, "--tag", strings.Join(tags, ","))
	}
	args = append(args, p.Args()...)
	var groups []ForgetGroup
	var perr error
	err := c.run(ctx, call{op: "forget", args: args, onJSON: func(env envelope, line []byte) {
		if env.MessageType == "array" {
			perr = json.Unmarshal(line, &groups)
		}
	}})
	if err == nil && perr != nil {
		err = fmt.Errorf("restic forget: parse output: %w", perr)
	}
	return groups, err
}

// Forget removes the snapshots with the given IDs (no policy involved).
func (c *Client) Forget(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return c.run(ctx, call{op: "forget", args: append([]string{"forget", "--"}, ids...), stdout: io.Discard})
}

// Prune removes data no snapshot references any more (restic prune).
func (c *Client) Prune(ctx context.Context) error {
	return c.run(ctx, call{op: "prune", args: []string{"prune"}, stdout: io.Discard})
}

// Check verifies the repository structure and, when readDataSubset is not
// empty (e.g. "5%", "1/10", "500M"), reads that part of the pack data
// (restic check --read-data-subset).
func (c *Client) Check(ctx context.Context, readDataSubset string) (CheckSummary, error) {
	args := []string{"check", "--json"}
	if readDataSubset != "" {
		args = append(args, "--read-data-subset", readDataSubset)
	}
	var sum CheckSummary
	err := c.run(ctx, call{op: "check", args: args, onJSON: func(env envelope, line []byte) {
		if env.MessageType == "summary" {
			_ = json.Unmarshal(line, &sum)
		}
	}})
	return sum, err
}

// Unlock removes stale locks (restic unlock; live locks are kept).
func (c *Client) Unlock(ctx context.Context) error {
	return c.run(ctx, call{op: "unlock", args: []string{"unlock"}, stdout: io.Discard, noLock: true})
}

// UnlockAll removes every lock, live ones too (restic unlock
// --remove-all): an operation still running then works without its lock.
func (c *Client) UnlockAll(ctx context.Context) error {
	return c.run(ctx, call{op: "unlock --remove-all", args: []string{"unlock", "--remove-all"}, stdout: io.Discard, noLock: true})
}

// emitStatus decodes a status line and hands it to progress (when set).
func emitStatus(progress func(Status), line []byte) {
	if progress == nil {
		return
	}
	var s Status
	if json.Unmarshal(line, &s) == nil {
		progress(s)
	}
}

// LockInfo is one lock file of a repository, as `restic cat lock ID`
// prints it.
type LockInfo struct {
	ID        string    `json:"-"`
	Time      time.Time `json:"time"` // created, or last refreshed (restic refreshes live locks every 5 minutes)
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	Username  string    `json:"username"`
	PID       int       `json:"pid"`
}

// Stale reports whether the lock's holder is gone: the lock was not
// refreshed for maxAge (restic refreshes a live lock every 5 minutes and
// itself calls a lock older than 30 minutes stale), or it was taken on
// host and alive says its process no longer exists. alive is asked only
// for locks of this host.
func (l LockInfo) Stale(now time.Time, maxAge time.Duration, host string, alive func(pid int) bool) bool {
	if now.Sub(l.Time) > maxAge {
		return true
	}
	return l.Hostname == host && alive != nil && !alive(l.PID)
}

// Locks lists the repository's locks (restic list locks, then restic cat
// lock for each), oldest first. A lock removed between the two calls is
// left out.
func (c *Client) Locks(ctx context.Context) ([]LockInfo, error) {
	var ids bytes.Buffer
	if err := c.run(ctx, call{op: "list locks", args: []string{"list", "locks", "--no-lock"}, stdout: &ids, noLock: true}); err != nil {
		return nil, err
	}
	var locks []LockInfo
	for _, id := range strings.Fields(ids.String()) {
		var out bytes.Buffer
		if err := c.run(ctx, call{op: "cat lock", args: []string{"cat", "lock", "--no-lock", id}, stdout: &out, noLock: true}); err != nil {
			var re *Error
			if errors.As(err, &re) && ctx.Err() == nil {
				continue // released meanwhile
			}
			return nil, err
		}
		var l LockInfo
		if err := json.Unmarshal(out.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("restic cat lock %s: %w", id, err)
		}
		l.ID = id
		locks = append(locks, l)
	}
	slices.SortFunc(locks, func(a, b LockInfo) int { return a.Time.Compare(b.Time) })
	return locks, nil
}

// StaleRule says which locks are stale: those of this host (Hostname,
// default os.Hostname, as restic records it) whose process Alive says is
// gone (default ProcessAlive), and, when MaxAge > 0, those not refreshed
// for MaxAge (restic refreshes a live lock every 5 minutes). Now defaults
// to time.Now.
type StaleRule struct {
	MaxAge   time.Duration
	Hostname string
	Alive    func(pid int) bool
	Now      func() time.Time
}

// Partition lists the repository's locks split into stale and live ones
// by rule r.
func (c *Client) Partition(ctx context.Context, r StaleRule) (stale, live []LockInfo, err error) {
	locks, err := c.Locks(ctx)
	if err != nil {
		return nil, nil, err
	}
	host, alive, now := r.Hostname, r.Alive, time.Now()
	if host == "" {
		host, _ = os.Hostname()
	}
	if alive == nil {
		alive = ProcessAlive
	}
	if r.Now != nil {
		now = r.Now()
	}
	maxAge := r.MaxAge
	if maxAge <= 0 {
		maxAge = time.Duration(math.MaxInt64)
	}
	for _, l := range locks {
		if l.Stale(now, maxAge, host, alive) {
			stale = append(stale, l)
		} else {
			live = append(live, l)
		}
	}
	return stale, live, nil
}

// RemoveStaleLocks removes the repository's locks when every one of them
// is stale by rule r (restic unlock), logging each as a warning and
// passing it to Config.OnStaleLock; it returns the removed locks. When a
// live lock is among them nothing is removed and it returns none: the
// caller then meets the live lock (restic --retry-lock waits for it).
func (c *Client) RemoveStaleLocks(ctx context.Context, r StaleRule) ([]LockInfo, error) {
	stale, live, err := c.Partition(ctx, r)
	if err != nil || len(stale) == 0 || len(live) > 0 {
		return nil, err
	}
	if err := c.Unlock(ctx); err != nil {
		return nil, err
	}
	for _, l := range stale {
		c.log.Warn("removed stale restic lock", "lock", l.ShortID(), "pid", l.PID, "host", l.Hostname,
			"age", time.Since(l.Time).Round(time.Second), "exclusive", l.Exclusive)
		if c.cfg.OnStaleLock != nil {
			c.cfg.OnStaleLock(l)
		}
	}
	return stale, nil
}

// ShortID is the first 8 characters of the lock's ID, as restic shows IDs.
func (l LockInfo) ShortID() string { return l.ID[:min(8, len(l.ID))] }

// ProcessAlive reports whether a process with pid exists on this host
// (kill -0: ESRCH means gone; EPERM means it exists under another user).
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
