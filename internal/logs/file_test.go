package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a log destination safe for the Stream goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), msg)
}

// testFile is a File over path, polling every 5 ms, that counts its
// polls and keeps its notes.
type testFile struct {
	*File
	polls atomic.Int64
	notes *syncBuffer
}

func newTestFile(path string) *testFile {
	tf := &testFile{notes: &syncBuffer{}}
	tf.File = &File{
		Path:        path,
		Poll:        5 * time.Millisecond,
		RotateGrace: 200 * time.Millisecond,
		Log:         slog.New(slog.NewTextHandler(tf.notes, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:         func() time.Time { return epoch },
		Location:    zone,
		polled:      func() { tf.polls.Add(1) },
	}
	return tf
}

// waitPolls waits until the follow has looked at the file n more times,
// so that it has seen whatever was done before.
func (tf *testFile) waitPolls(t *testing.T, n int64) {
	t.Helper()
	want := tf.polls.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for tf.polls.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the follow looked at the file %d times in 10s, want %d", tf.polls.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appender opens path for appending, as a logging process does.
func appender(t *testing.T, path string) *os.File {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, w *os.File, s string) {
	t.Helper()
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestFileConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "")
	testSource(t, sourceHarness{
		src: newTestFile(path),
		say: func(t *testing.T, lines ...string) {
			w := appender(t, path)
			for _, l := range lines {
				write(t, w, time.Now().UTC().Format(time.RFC3339Nano)+" "+l+"\n")
			}
		},
	})
}

func TestFileTail(t *testing.T) {
	long := strings.Repeat("0123456789", 10_000) // 100 kB: longer than a block
	tests := []struct {
		name, data string
		tail       int
		want       []string
	}{
		{"last 3", "1\n2\n3\n4\n5\n", 3, []string{"3", "4", "5"}},
		{"no newline at the end", "1\n2\n3\n4\n5", 3, []string{"3", "4", "5"}},
		{"more than the file has", "1\n2\n", 10, []string{"1", "2"}},
		{"all", "1\n2\n3\n", -1, []string{"1", "2", "3"}},
		{"none", "1\n2\n3\n", 0, nil},
		{"empty file", "", 5, nil},
		{"empty lines", "1\n\n\n", 2, []string{"", ""}},
		{"carriage returns", "1\r\n2\r\n", 1, []string{"2"}},
		{"long lines across blocks", "a" + long + "\nb" + long + "\nc" + long + "\n", 2, []string{"b" + long, "c" + long}},
		{"long last line without newline", "a\nb" + long, 1, []string{"b" + long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			writeFile(t, path, tt.data)
			got := texts(read(t, newTestFile(path), Options{Tail: tt.tail}))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("got %d lines %.80q, want %d lines %.80q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

// TestFileTailBig reads the last lines of a 4 MiB file (tail_test.go
// checks that only the end of it is read).
func TestFileTailBig(t *testing.T) {
	data, _ := numbered(130_000, epoch)
	path := filepath.Join(t.TempDir(), "big.log")
	writeFile(t, path, data)
	lines := read(t, newTestFile(path), Options{Tail: 3})
	all := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
	if got, want := texts(lines), all[len(all)-3:]; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !lines[2].Time.Equal(epoch.Add(129_999 * time.Second)) {
		t.Errorf("last line's time %v, want %v", lines[2].Time, epoch.Add(129_999*time.Second))
	}
}

// TestFileSince: each timestamp format, lines without a timestamp taking
// the verdict of the line before, and --since with --tail.
func TestFileSince(t *testing.T) {
	t0 := time.Date(2024, 3, 9, 23, 58, 0, 0, zone)
	formats := []struct {
		name   string
		format func(time.Time, string) string
	}{
		{"rfc3339", func(tm time.Time, s string) string { return tm.UTC().Format(time.RFC3339Nano) + " " + s }},
		{"rfc3339 offset", func(tm time.Time, s string) string {
			return tm.In(time.FixedZone("", -5*3600)).Format(time.RFC3339) + " " + s
		}},
		{"iso space local", func(tm time.Time, s string) string { return tm.Format("2006-01-02 15:04:05") + " " + s }},
		{"python logging", func(tm time.Time, s string) string { return tm.Format("2006-01-02 15:04:05,000") + " INFO " + s }},
		{"bracketed", func(tm time.Time, s string) string { return "[" + tm.Format("2006-01-02T15:04:05.000") + "] " + s }},
		{"syslog", func(tm time.Time, s string) string { return tm.Format(time.Stamp) + " nas app[7]: " + s }},
		{"common log format", func(tm time.Time, s string) string {
			return `10.0.0.7 - - [` + tm.Format(clfLayout) + `] "GET /` + s + ` HTTP/1.1" 200 512`
		}},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			var b strings.Builder
			line := func(i int, s string) { b.WriteString(f.format(t0.Add(time.Duration(i)*time.Minute), s) + "\n") }
			b.WriteString("no timestamp before the first one\n")
			line(0, "l0")
			b.WriteString("\tcontinues l0\n")
			line(1, "l1")
			b.WriteString("\tcontinues l1\n")
			line(2, "l2")
			line(3, "l3")
			path := filepath.Join(t.TempDir(), "app.log")
			writeFile(t, path, b.String())
			tf := newTestFile(path)

			got := read(t, tf, Options{Tail: -1, Since: t0.Add(time.Minute)})
			check := func(got []Line, want ...string) {
				t.Helper()
				ok := len(got) == len(want)
				for i := 0; ok && i < len(want); i++ {
					ok = strings.Contains(got[i].Text, want[i])
				}
				if !ok {
					t.Errorf("got %q, want lines with %q", texts(got), want)
				}
			}
			check(got, "l1", "continues l1", "l2", "l3")
			if len(got) == 4 {
				if !got[0].Time.Equal(t0.Add(time.Minute)) || !got[1].Time.IsZero() {
					t.Errorf("times %v and %v, want %v and zero (no timestamp)", got[0].Time, got[1].Time, t0.Add(time.Minute))
				}
			}
			check(read(t, tf, Options{Tail: -1, Since: t0.Add(90 * time.Second)}), "l2", "l3")
			check(read(t, tf, Options{Tail: 3, Since: t0.Add(time.Minute)}), "continues l1", "l2", "l3")
			check(read(t, tf, Options{Tail: -1, Since: t0.Add(-time.Hour)}), "l0", "continues l0", "l1", "continues l1", "l2", "l3")
			check(read(t, tf, Options{Tail: -1, Since: t0.Add(time.Hour)}))
		})
	}
}

func TestFileSinceNoTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "started\nlistening on :8080\n")
	tf := newTestFile(path)
	expectLines(t, "since", read(t, tf, Options{Tail: -1, Since: epoch.Add(-time.Hour)}))
	if tf.notes.count("no line read has a timestamp") != 1 {
		t.Errorf("notes %q, want one saying no timestamp was recognised", tf.notes.b.String())
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.log")
	err := newTestFile(missing).Stream(context.Background(), Options{Tail: 10}, func(Line) error { return nil })
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want fs.ErrNotExist naming it", err)
	}
	err = newTestFile(dir).Stream(context.Background(), Options{Tail: 10}, func(Line) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v, want not a regular file", err)
	}
}

func TestFileFollowPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "1\n2\n3")
	tf := newTestFile(path)
	w := appender(t, path)
	f := follow(t, tf, Options{Tail: 2})
	f.expect("2") // "3" is being written
	write(t, w, " done\npar")
	f.expect("3 done")
	tf.waitPolls(t, 2) // "par" was read, and kept back
	write(t, w, "tial\n")
	f.expect("partial")
	write(t, w, "the end without newline")
	tf.waitPolls(t, 2)
	if err := f.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream = %v, want context.Canceled", err)
	}
	f.expect("the end without newline") // delivered when the follow ends
}

func TestFileFollowNewOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "old 1\nold 2\n")
	tf := newTestFile(path)
	w := appender(t, path)
	f := follow(t, tf, Options{Tail: 0})
	tf.waitPolls(t, 1) // positioned at the end
	write(t, w, "new 1\n")
	f.expect("new 1")
}

// TestFileFollowRename: logrotate's default (create): the file is renamed,
// the writer goes on writing to it until it reopens its log, a new file
// is created at the path.
func TestFileFollowRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "old 1\n")
	tf := newTestFile(path)
	old := appender(t, path)
	f := follow(t, tf, Options{Tail: -1})
	f.expect("old 1")
	write(t, old, "old 2\n")
	f.expect("old 2")

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	tf.waitPolls(t, 3) // it saw the path empty
	write(t, old, "old 3\n")
	f.expect("old 3") // the renamed file is still read
	tf.waitPolls(t, 3)
	if n := tf.notes.count("log file is gone"); n != 1 {
		t.Errorf("said %d times that the file is gone, want once:\n%s", n, tf.notes.b.String())
	}

	// The new file appears while the writer still writes to the old one.
	write(t, old, "old 4\n")
	writeFile(t, path, "new 1\n")
	write(t, old, "old 5\n")
	write(t, old, "old 6 without newline")
	f.expectAnyOrder("old 4", "new 1", "old 5")
	f.expect("old 6 without newline") // when the old file's grace ends
	old.Close()

	w := appender(t, path)
	write(t, w, "new 2\n")
	f.expect("new 2")
	if err := f.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream = %v, want context.Canceled", err)
	}
}

// TestFileFollowRenameLinesBeforeSwitch: lines written to the old file
// before the new one appears come before the new file's lines.
func TestFileFollowRenameLinesBeforeSwitch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "")
	tf := newTestFile(path)
	old := appender(t, path)
	f := follow(t, tf, Options{Tail: -1})
	tf.waitPolls(t, 1)
	write(t, old, "old 1\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, old, "old 2\n")
	old.Close()
	writeFile(t, path, "new 1\nnew 2\n")
	f.expect("old 1", "old 2", "new 1", "new 2")
}

// TestFileFollowCopytruncate: logrotate's copytruncate: the file is
// copied and truncated in place; the writer (O_APPEND) goes on at its
// new end.
func TestFileFollowCopytruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "a 1\na 2 is a longer line\n")
	tf := newTestFile(path)
	w := appender(t, path)
	f := follow(t, tf, Options{Tail: 1})
	f.expect("a 2 is a longer line")

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path+".1", string(data))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	write(t, w, "b 1\n")
	f.expect("b 1")
	write(t, w, "b 2\n")
	f.expect("b 2")

	// Truncated again while the follow is between polls.
	tf.waitPolls(t, 1)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	tf.waitPolls(t, 2)
	write(t, w, "c 1\n")
	f.expect("c 1")
}

// TestFileFollowDeleted: the file is deleted, missing for a while (said
// once), then created again.
func TestFileFollowDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "x 1\n")
	tf := newTestFile(path)
	f := follow(t, tf, Options{Tail: -1})
	f.expect("x 1")
	for round := 1; round <= 2; round++ {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		tf.waitPolls(t, 5)
		if n := tf.notes.count("log file is gone"); n != round {
			t.Fatalf("round %d: said %d times that the file is gone, want %d:\n%s", round, n, round, tf.notes.b.String())
		}
		writeFile(t, path, fmt.Sprintf("y %d\n", round))
		f.expect(fmt.Sprintf("y %d", round))
	}
}

// TestFileFollowMissingAtStart: a follow of a file that does not exist
// yet waits for it (said once) and reads all of it.
func TestFileFollowMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	tf := newTestFile(path)
	f := follow(t, tf, Options{Tail: 1})
	tf.waitPolls(t, 5)
	if n := tf.notes.count("log file does not exist yet"); n != 1 {
		t.Errorf("said %d times that the file does not exist, want once:\n%s", n, tf.notes.b.String())
	}
	writeFile(t, path, "z 1\nz 2\n")
	f.expect("z 1", "z 2")
}

// TestFileFollowSince: while following, lines older than --since (and
// their continuations) are still dropped.
func TestFileFollowSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	ts := func(min int) string { return epoch.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }
	writeFile(t, path, ts(0)+" a\n"+ts(10)+" b\n")
	tf := newTestFile(path)
	w := appender(t, path)
	f := follow(t, tf, Options{Tail: -1, Since: epoch.Add(5 * time.Minute)})
	f.expect(ts(10) + " b")
	write(t, w, ts(1)+" late\n\tcontinues late\n"+ts(11)+" c\n\tcontinues c\n")
	f.expect(ts(11)+" c", "\tcontinues c")
}

func TestFileEmitErrorEndsFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "1\n2\n3\n")
	errStop := errors.New("stdout closed")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	err := newTestFile(path).Stream(ctx, Options{Tail: -1, Follow: true}, func(Line) error { n++; return errStop })
	if !errors.Is(err, errStop) || n != 1 || ctx.Err() != nil {
		t.Errorf("Stream = %v after %d lines (context %v), want the emit error after 1", err, n, ctx.Err())
	}
}

func TestFileLongLineSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	long := strings.Repeat("z", MaxLine+10)
	writeFile(t, path, "short\n"+long+"\nafter\n")
	got := texts(read(t, newTestFile(path), Options{Tail: -1}))
	if len(got) != 4 || got[0] != "short" || got[1] != long[:MaxLine] || got[2] != long[MaxLine:] || got[3] != "after" {
		t.Errorf("got %d lines, want short, %d bytes, 10 bytes, after", len(got), MaxLine)
	}
}
