package migrations

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"homelab/internal/version"
)

// Release is the migrations of one release version: the *.sql files
// (without *.down.sql) of the directory <dir>/<version>, in name order.
type Release struct {
	Version    string      `json:"version"`
	Statements []Statement `json:"statements"`
}

// Contracts are the contract statements of rs, in order.
func Contracts(rs []Release) []Statement {
	var out []Statement
	for _, r := range rs {
		for _, s := range r.Statements {
			if s.Class == Contract {
				out = append(out, s)
			}
		}
	}
	return out
}

// Check classifies the migrations in dir of the releases after since and
// up to until (each may be zero: no bound), oldest release first. dir
// holds one directory per release version; other entries are ignored. A
// version directory whose name is not a version, a file that cannot be
// read or a statement that does not parse is an error naming the file
// (and line).
func Check(dir string, since, until version.Version) ([]Release, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	type rel struct {
		v    version.Version
		path string
	}
	var rels []rel
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v, err := version.Parse(e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %s: a release directory must be named for its version: %w", filepath.Join(dir, e.Name()), err)
		}
		if !since.IsZero() && version.Compare(v, since) <= 0 || !until.IsZero() && version.Compare(v, until) > 0 {
			continue
		}
		rels = append(rels, rel{v, filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(rels, func(a, b rel) int { return version.Compare(a.v, b.v) })
	var out []Release
	for _, r := range rels {
		files, err := filepath.Glob(filepath.Join(r.path, "*.sql"))
		if err != nil {
			return nil, err
		}
		slices.Sort(files)
		rs := Release{Version: r.v.String(), Statements: []Statement{}}
		for _, f := range files {
			if strings.HasSuffix(f, ".down.sql") {
				continue
			}
			sts, err := classifyFile(f)
			if err != nil {
				return nil, err
			}
			rs.Statements = append(rs.Statements, sts...)
		}
		out = append(out, rs)
	}
	return out, nil
}

func classifyFile(path string) ([]Statement, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if err != nil {
		return nil, err
	}
	sts, err := Classify(string(b))
	if se := (*SyntaxError)(nil); errors.As(err, &se) && se.Line > 0 {
		return nil, fmt.Errorf("migrations: %s:%d: %s", path, se.Line, se.Msg)
	}
	if err != nil {
		return nil, fmt.Errorf("migrations: %s: %w", path, err)
	}
	for i := range sts {
		sts[i].File = path
	}
	return sts, nil
}
