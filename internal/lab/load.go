package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	// DefaultFile is the lab file looked for in the current directory.
	DefaultFile = "lab.yaml"
	// EnvLab names the environment variable holding the lab file's path,
	// used when there is no --lab flag and no ./lab.yaml.
	EnvLab = "HOMELAB_LAB"

	// DefaultStateDir is the state directory, relative to the lab file's
	// directory, when state_dir is not set.
	DefaultStateDir = ".homelab"
	// DefaultPostgresPort is the port of postgres sources without one.
	DefaultPostgresPort = 5432
	// DefaultDrillTimeout bounds a whole restore drill.
	DefaultDrillTimeout = time.Hour
	// DefaultHookTimeout bounds each hook command.
	DefaultHookTimeout = 5 * time.Minute
	// DefaultBackupTimeout bounds a scheduled backup run.
	DefaultBackupTimeout = 6 * time.Hour
	// DefaultCheckTimeout bounds a scheduled repository check.
	DefaultCheckTimeout = 6 * time.Hour
	// DefaultListen is the daemon's HTTP address.
	DefaultListen = "127.0.0.1:8470"
	// DefaultConcurrency is how many repositories run jobs at once.
	DefaultConcurrency = 2
	// DefaultStaleLockAge is when a restic lock whose holder is gone is
	// stale (restic's own threshold: live locks are refreshed every 5m).
	DefaultStaleLockAge = 30 * time.Minute
	// DefaultShutdownTimeout bounds the daemon's shutdown.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultPruneTimeout bounds a scheduled prune.
	DefaultPruneTimeout = time.Hour
	// DefaultRefresh is the status page's reload interval.
	DefaultRefresh = 30 * time.Second
)

// Find returns the lab file to use: flag when non-empty, else ./lab.yaml
// when it exists, else $HOMELAB_LAB when set, else "lab.yaml" (so that
// Load's error names the file that was expected).
func Find(flag string) string {
	if flag != "" {
		return flag
	}
	if _, err := os.Stat(DefaultFile); err == nil {
		return DefaultFile
	}
	if env := os.Getenv(EnvLab); env != "" {
		return env
	}
	return DefaultFile
}

// MaxFileSize is the size in bytes of the largest lab file Load and
// Parse accept (1 MiB). A real lab file is a few KiB; the cap bounds the
// time and memory that checking a file costs.
const MaxFileSize = 1 << 20 // tooLarge says "1 MiB"

// Load reads, validates and defaults the lab file at path. Any problem,
// including an unreadable file or one larger than MaxFileSize (refused
// before it is read), is returned as a *Errors listing every problem
// found, with path as given in each message; for an unreadable file
// errors.Is(err, fs.ErrNotExist) and friends work as usual.
func Load(path string) (*Lab, error) {
	data, err := readFile(path)
	if err != nil {
		msg := err.Error()
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			msg = pe.Err.Error()
		}
		return nil, &Errors{File: path, List: []FieldError{{File: path, Msg: msg, Err: err}}}
	}
	return Parse(path, data)
}

// readFile reads at most MaxFileSize bytes of path: a regular file
// larger than that is refused from its size, anything else (a pipe, a
// device) once it has given more.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, errors.New(tooLarge(fi.Size()))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, errors.New(tooLarge(-1))
	}
	return data, nil
}

// tooLarge says that a file of size bytes (-1: unknown) is over
// MaxFileSize.
func tooLarge(size int64) string {
	const limit = "a lab file may be at most 1 MiB"
	switch {
	case size < 0:
		return "too large: " + limit
	case size < 10<<20:
		return fmt.Sprintf("too large (%d bytes): %s", size, limit)
	}
	return fmt.Sprintf("too large (%d MiB): %s", size>>20, limit)
}

// errInternal marks a panic in Parse turned into an error.
var errInternal = errors.New("internal error")

// Parse validates and defaults the lab file content data. path is shown
// in error messages as given, and its directory (made absolute) is the
// base for relative paths in the file. Problems are returned as a *Errors
// sorted by line; each names the file and, but for the size of data (at
// most MaxFileSize bytes), the line. Parse does not panic: a bug that
// would panic is returned as a *Errors naming the file.
func Parse(path string, data []byte) (*Lab, error) {
	return guard(path, func() (*Lab, error) { return parse(path, data) })
}

// guard runs parse, returning a panic in it as an error naming path
// (with the panic's stack in the FieldError's Err), so that neither
// `homelab lab validate` nor a daemon reloading its lab file dies of a
// bug in the loader.
func guard(path string, parse func() (*Lab, error)) (l *Lab, err error) {
	defer func() {
		if r := recover(); r != nil {
			l, err = nil, &Errors{File: path, List: []FieldError{{
				File: path,
				Msg:  fmt.Sprintf("internal error while checking the lab file (please report it): %v", r),
				Err:  fmt.Errorf("%w: %v\n%s", errInternal, r, debug.Stack()),
			}}}
		}
	}()
	return parse()
}

func parse(path string, data []byte) (*Lab, error) {
	if len(data) > MaxFileSize {
		return nil, &Errors{File: path, List: []FieldError{{File: path, Msg: tooLarge(int64(len(data)))}}}
	}
	if fe, ok := checkText(path, data); !ok {
		return nil, &Errors{File: path, List: []FieldError{fe}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Errors{File: path, List: []FieldError{syntaxError(path, data, err)}}
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	l := &Lab{}
	d := newDecoder(path, root)
	d.decode("", root, reflect.ValueOf(l).Elem())
	if !d.tooMuch { // l is partly decoded: the rules would report what is missing
		d.validate(l)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, &Errors{File: path, List: d.errs}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Errors{File: path, List: []FieldError{{File: path, Msg: err.Error(), Err: err}}}
	}
	l.Path = abs
	l.setDefaults(filepath.Dir(abs))
	return l, nil
}

var (
	syntaxLine    = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parserProblems are the messages of yaml.v3's parser, as opposed to its
// scanner: yaml.v3 v3.0.1 numbers the lines of parser errors from 0 and
// those of scanner errors from 1.
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// unclosedProblems are yaml.v3's messages for a flow collection or a
// quoted scalar left open, which are best reported where they open.
var unclosedProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found unexpected end of stream",
}

// syntaxError turns a yaml.v3 parse error of data into a FieldError with
// the line of the problem: for an unknown anchor, the first alias naming
// it; for a "[", "{" or quote left open, the line where it opens; else
// the line yaml.v3 gives, corrected.
//
// yaml.v3 v3.0.1 gives the line of the construct the problem is in (a
// "[", a quoted string, a block mapping) unless that is the first line,
// numbered 0 inside, where it gives the line where the problem was found
// instead, or no line at all when that is the first line too; and it
// numbers the lines of parser errors (but not of scanner errors) from 0,
// so an unclosed "[" on line 4 is reported on line 3. For an unclosed
// construct, data is parsed again behind an empty line, which moves every
// line down one and none onto line 0, so that the line is the construct's.
func syntaxError(path string, data []byte, err error) FieldError {
	fe := FieldError{File: path, Line: 1, Msg: yamlMessage(err), Err: err}
	if m := unknownAnchor.FindStringSubmatch(err.Error()); m != nil {
		fe.Line, fe.Column = findAlias(data, m[1])
		return fe
	}
	shift := 0
	if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
		fe.Msg = m[2]
	}
	if slices.Contains(unclosedProblems, fe.Msg) {
		var bom []byte
		body, ok := bytes.CutPrefix(data, []byte("\xef\xbb\xbf"))
		if ok {
			bom = []byte("\xef\xbb\xbf") // yaml.v3 reads a byte order mark only at the start
		}
		var doc yaml.Node
		if serr := yaml.Unmarshal(slices.Concat(bom, []byte("\n"), body), &doc); serr != nil {
			err, shift = serr, 1
		}
	}
	if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
		fe.Line -= shift
		if fe.Msg = m[2]; slices.Contains(parserProblems, fe.Msg) {
			fe.Line++
		}
	}
	// A problem found at the end of the stream may be past the last line.
	fe.Line = max(1, min(fe.Line, lineCount(data)))
	return fe
}

// setDefaults fills in names, defaults and absolute paths; dir is the lab
// file's absolute directory.
func (l *Lab) setDefaults(dir string) {
	if l.Name == "" {
		l.Name = nameFrom(filepath.Base(dir))
	}
	if l.StateDir == "" {
		l.StateDir = DefaultStateDir
	}
	l.StateDir = absPath(dir, l.StateDir)
	for name, r := range l.Repositories {
		r.Name = name
		r.URL = repositoryURL(dir, r.URL)
		if r.PasswordFile != "" {
			r.PasswordFile = absPath(dir, r.PasswordFile)
		}
		r.S3Credentials.resolvePaths(dir)
		if r.Check.Timeout == 0 {
			r.Check.Timeout = DefaultCheckTimeout
		}
	}
	for _, n := range l.Notify {
		if n != nil && n.URLFile != "" {
			n.URLFile = absPath(dir, n.URLFile)
		}
	}
	l.Serve.setDefaults(dir)
	l.Certs.setDefaults(dir, l.Name)
	l.Hosts.setDefaults(dir)
	l.Alerts.setDefaults(dir)
	l.Energy.setDefaults(dir)
	for _, loc := range l.S3Locations {
		if loc != nil {
			loc.resolvePaths(dir)
		}
	}
	for name, s := range l.Services {
		s.Name = name
	}
	for name, b := range l.Backups {
		b.Name = name
		for i, p := range b.Source.Paths {
			b.Source.Paths[i] = absPath(dir, p)
		}
		if b.Source.PasswordFile != "" {
			b.Source.PasswordFile = absPath(dir, b.Source.PasswordFile)
		}
		b.Source.S3Location.resolvePaths(dir)
		b.Destination.resolvePaths(dir)
		if b.PgBackRest != nil {
			b.PgBackRest.Repo.S3Location.resolvePaths(dir)
		}
		if b.Provider == ProviderPostgres && b.Source.Port == 0 {
			b.Source.Port = DefaultPostgresPort
		}
		if b.Provider == ProviderRestic {
			for i := range b.Drill.Checks {
				c := &b.Drill.Checks[i]
				c.Path = absPath(dir, c.Path)
				c.SHA256 = strings.ToLower(c.SHA256)
			}
		}
		if b.Drill.Timeout == 0 {
			b.Drill.Timeout = DefaultDrillTimeout
		}
		if b.Hooks.Timeout == 0 {
			b.Hooks.Timeout = DefaultHookTimeout
		}
		if b.Timeout == 0 {
			b.Timeout = DefaultBackupTimeout
		}
	}
}

func (s *Serve) setDefaults(dir string) {
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if s.TokenFile != "" {
		s.TokenFile = absPath(dir, s.TokenFile)
	}
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.StaleLockAge == 0 {
		s.StaleLockAge = DefaultStaleLockAge
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = DefaultShutdownTimeout
	}
	if s.PruneTimeout == 0 {
		s.PruneTimeout = DefaultPruneTimeout
	}
	if s.Refresh == 0 {
		s.Refresh = DefaultRefresh
	}
}

func absPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// repositoryURL makes a local repository path absolute and leaves URLs
// with a backend prefix (s3:, sftp:, rest:, ...) alone.
func repositoryURL(dir, url string) string {
	if rest, ok := strings.CutPrefix(url, "local:"); ok {
		return "local:" + absPath(dir, rest)
	}
	if urlScheme.MatchString(url) {
		return url
	}
	return absPath(dir, url)
}

var invalidNameChars = regexp.MustCompile(`[^a-z0-9_-]+`)

// nameFrom turns a directory name into a valid lab name.
func nameFrom(base string) string {
	name := strings.TrimLeft(invalidNameChars.ReplaceAllString(strings.ToLower(base), "-"), "-_")
	if name == "" {
		return "lab"
	}
	return name
}
