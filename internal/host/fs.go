package host

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// FS is a mounted filesystem and the paths asked about that it holds.
type FS struct {
	// Mount is where it is mounted; Source and Type are what mountinfo
	// says of it ("/dev/sda1", "ext4").
	Mount, Source, Type string
	// Total, Used and Avail are bytes as df counts them: f_blocks,
	// f_blocks-f_bfree and f_bavail, each times f_frsize. Avail is what
	// an unprivileged writer may still use, so Used+Avail may be less
	// than Total (blocks reserved for root).
	Total, Used, Avail uint64
	// Paths are the paths asked about that live on it, in the order
	// asked.
	Paths []string
}

// Filesystems returns the filesystems that hold paths, one per mount
// point, sorted by mount point. A path that does not exist (yet) counts
// for its nearest existing parent. mountinfo is a mountinfo file
// ("/proc/self/mountinfo"). An error names the path or file it concerns.
func Filesystems(mountinfo string, paths []string) ([]FS, error) {
	mounts, err := readMountinfo(mountinfo)
	if err != nil {
		return nil, err
	}
	byMount := map[string]*FS{}
	for _, p := range paths {
		real, err := existing(p)
		if err != nil {
			return nil, err
		}
		m := mountOf(mounts, real)
		if m == nil {
			return nil, fmt.Errorf("filesystem of %s: no mount point in %s", p, mountinfo)
		}
		f := byMount[m.Mount]
		if f == nil {
			var st syscall.Statfs_t
			if err := syscall.Statfs(m.Mount, &st); err != nil {
				return nil, fmt.Errorf("statfs %s (for %s): %w", m.Mount, p, err)
			}
			bs := uint64(st.Frsize)
			if bs == 0 {
				bs = uint64(st.Bsize)
			}
			f = &FS{Mount: m.Mount, Source: m.Source, Type: m.Type,
				Total: st.Blocks * bs, Used: (st.Blocks - st.Bfree) * bs, Avail: st.Bavail * bs}
			byMount[m.Mount] = f
		}
		if !slices.Contains(f.Paths, p) {
			f.Paths = append(f.Paths, p)
		}
	}
	out := make([]FS, 0, len(byMount))
	for _, f := range byMount {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b FS) int { return strings.Compare(a.Mount, b.Mount) })
	return out, nil
}

// existing is p made absolute with its symbolic links resolved, or that
// of its nearest existing parent.
func existing(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("filesystem of %s: %w", p, err)
	}
	for cur := abs; ; cur = filepath.Dir(cur) {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return real, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || cur == filepath.Dir(cur) {
			return "", fmt.Errorf("filesystem of %s: %w", p, err)
		}
	}
}

// mount is one line of mountinfo.
type mount struct{ Mount, Source, Type string }

// mountOf is the mount whose point is the longest prefix of path; the
// last one mounted wins among equals (it hides the earlier ones).
func mountOf(ms []mount, path string) *mount {
	var best *mount
	for i := range ms {
		m := &ms[i]
		if !within(path, m.Mount) {
			continue
		}
		if best == nil || len(m.Mount) >= len(best.Mount) {
			best = m
		}
	}
	return best
}

func within(path, dir string) bool {
	return dir == "/" || path == dir || strings.HasPrefix(path, dir+"/")
}

// readMountinfo parses a mountinfo file (proc(5)): field 5 is the mount
// point, and after the " - " separator come the type and the source.
func readMountinfo(file string) ([]mount, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %w", err)
	}
	var ms []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		ms = append(ms, mount{Mount: unescape(f[4]), Type: g[0], Source: unescape(g[1])})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("read %s: no mounts", file)
	}
	return ms, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
