package logs

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// naiveTailStart is tailStart the obvious way: every line start, from the
// front.
func naiveTailStart(data string, n int) int64 {
	starts := []int64{0}
	for i := 0; i < len(data); i++ {
		if data[i] == '\n' && i+1 < len(data) {
			starts = append(starts, int64(i+1))
		}
	}
	if len(data) == 0 || n >= len(starts) {
		return 0
	}
	return starts[len(starts)-n]
}

func TestTailStart(t *testing.T) {
	long := strings.Repeat("x", 50)
	files := []string{
		"",
		"a",
		"a\n",
		"\n",
		"\n\n\n",
		"a\nb\nc\n",
		"a\nb\nc",                    // no newline at the end
		"a\n\nc\n",                   // an empty line
		long + "\n" + long + "\nb\n", // lines longer than the blocks
		"b\n" + long,
		long,
		long + "\n",
	}
	for _, block := range []int{1, 4, 7, 64 << 10} {
		for _, data := range files {
			for n := 1; n <= 5; n++ {
				got, err := tailStart(strings.NewReader(data), int64(len(data)), n, block)
				if want := naiveTailStart(data, n); err != nil || got != want {
					t.Errorf("block %d: tailStart(%q, %d) = %d, %v; want %d", block, data, n, got, err, want)
				}
			}
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r     *bytes.Reader
	bytes atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	return n, err
}

// numbered returns n lines "<time> line i" one second apart from start,
// with a continuation line (no timestamp) after every tenth.
func numbered(n int, start time.Time) (string, []int64) {
	var b strings.Builder
	var offs []int64 // offset of line i's timestamped line
	for i := range n {
		offs = append(offs, int64(b.Len()))
		fmt.Fprintf(&b, "%s line %d\n", start.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339), i)
		if i%10 == 0 {
			fmt.Fprintf(&b, "\tcontinued %d\n", i)
		}
	}
	return b.String(), offs
}

// TestTailStartCost: the last lines of a 4 MiB file are found by reading
// about their size, not the file's.
func TestTailStartCost(t *testing.T) {
	data, _ := numbered(130_000, epoch)
	if len(data) < 4<<20 {
		t.Fatalf("test file is %d bytes, want 4 MiB or more", len(data))
	}
	r := &countingReader{r: bytes.NewReader([]byte(data))}
	got, err := tailStart(r, int64(len(data)), 10, blockSize)
	if want := naiveTailStart(data, 10); err != nil || got != want {
		t.Fatalf("tailStart = %d, %v; want %d", got, err, want)
	}
	if read := r.bytes.Load(); read > blockSize+1 {
		t.Errorf("tailStart of 10 lines read %d bytes of a %d-byte file, want at most one block (%d)", read, len(data), blockSize+1)
	}
}

func TestSinceStart(t *testing.T) {
	c := clock{now: func() time.Time { return epoch }, loc: zone}
	data, offs := numbered(100_000, epoch)
	for _, tt := range []struct {
		name  string
		since time.Time
		want  int64
	}{
		{"before the first line", epoch.Add(-time.Hour), 0},
		{"at the first line", epoch, 0},
		{"inside", epoch.Add(99_990 * time.Second), offs[99_989]},
		{"between two lines", epoch.Add(99_990*time.Second - time.Millisecond), offs[99_989]},
		{"after the last line", epoch.Add(200_000 * time.Second), offs[99_999]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{r: bytes.NewReader([]byte(data))}
			got, seen, err := sinceStart(r, int64(len(data)), tt.since, c, blockSize)
			if err != nil || got != tt.want || !seen {
				t.Fatalf("sinceStart = %d, %v, %v; want %d, true", got, seen, err, tt.want)
			}
			if tt.want > 0 && r.bytes.Load() > int64(len(data))-tt.want+blockSize+prefixMax {
				t.Errorf("read %d bytes to find the lines of the last %d bytes", r.bytes.Load(), int64(len(data))-tt.want)
			}
		})
	}
	t.Run("long lines across blocks", func(t *testing.T) {
		long := strings.Repeat("y", 100)
		data := "2024-03-10T10:00:00Z a " + long + "\n2024-03-10T11:00:00Z b " + long + "\n\tcontinued\n2024-03-10T12:00:00Z c " + long
		want := int64(strings.Index(data, "2024-03-10T11:00:00Z"))
		for _, block := range []int{3, 16, 64 << 10} {
			got, seen, err := sinceStart(strings.NewReader(data), int64(len(data)), time.Date(2024, 3, 10, 11, 30, 0, 0, time.UTC), c, block)
			if err != nil || got != want || !seen {
				t.Errorf("block %d: sinceStart = %d, %v, %v; want %d, true", block, got, seen, err, want)
			}
		}
	})
	t.Run("no timestamp", func(t *testing.T) {
		data := "one\ntwo\n"
		got, seen, err := sinceStart(strings.NewReader(data), int64(len(data)), epoch, c, blockSize)
		if err != nil || got != 0 || seen {
			t.Errorf("sinceStart = %d, %v, %v; want 0, false", got, seen, err)
		}
	})
}
