package logs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// sourceHarness is a log source under test and a way to add lines to it.
// Every Source runs testSource (file_test.go, compose_test.go).
type sourceHarness struct {
	src Source
	// say appends lines to the log, in order. The log holds no line before
	// the first say.
	say func(t *testing.T, lines ...string)
}

// said reports whether l is the line said as s: a file's lines carry the
// harness's timestamp before s.
func said(l Line, s string) bool { return l.Text == s || strings.HasSuffix(l.Text, " "+s) }

// read runs a Stream without Follow and returns its lines.
func read(t *testing.T, src Source, opts Options) []Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lines []Line
	if err := src.Stream(ctx, opts, func(l Line) error { lines = append(lines, l); return nil }); err != nil {
		t.Fatalf("%s: Stream(%+v): %v", src, opts, err)
	}
	return lines
}

// expectLines fails unless lines are the lines said as want, in order.
func expectLines(t *testing.T, what string, lines []Line, want ...string) {
	t.Helper()
	ok := len(lines) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = said(lines[i], want[i])
	}
	if !ok {
		t.Errorf("%s: got %q, want %q", what, texts(lines), want)
	}
}

func texts(lines []Line) []string {
	var s []string
	for _, l := range lines {
		s = append(s, l.Text)
	}
	return s
}

// waitSaid waits until the last line of the log is the line said as s
// (Docker's log copier is asynchronous).
func waitSaid(t *testing.T, src Source, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := read(t, src, Options{Tail: 1})
		if len(lines) == 1 && said(lines[0], s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last line %q after 30s, want %q", src, texts(lines), s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// following is a Stream with Follow running in the background.
type following struct {
	t      *testing.T
	lines  chan Line
	done   chan struct{} // closed when Stream has returned err
	err    error
	cancel context.CancelFunc
}

func follow(t *testing.T, src Source, opts Options) *following {
	t.Helper()
	opts.Follow = true
	ctx, cancel := context.WithCancel(context.Background())
	f := &following{t: t, lines: make(chan Line, 1000), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(f.done)
		f.err = src.Stream(ctx, opts, func(l Line) error { f.lines <- l; return nil })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s: Stream still running 30s after its context ended", src)
		}
	})
	return f
}

// next waits for the next line.
func (f *following) next() Line {
	f.t.Helper()
	select {
	case l := <-f.lines:
		return l
	default:
	}
	select {
	case l := <-f.lines:
		return l
	case <-f.done:
		select { // every line was sent before Stream returned
		case l := <-f.lines:
			return l
		default:
		}
		f.t.Fatalf("Stream returned %v while lines were expected", f.err)
	case <-time.After(15 * time.Second):
		f.t.Fatalf("no line within 15s")
	}
	return Line{}
}

// expect waits for the next lines, which must be those said as want.
func (f *following) expect(want ...string) []Line {
	f.t.Helper()
	var got []Line
	for _, w := range want {
		l := f.next()
		got = append(got, l)
		if !said(l, w) {
			f.t.Fatalf("got line %q, want %q (lines so far %q, want %q)", l.Text, w, texts(got), want)
		}
	}
	return got
}

// expectAnyOrder waits for as many lines as want, which must be those
// said as want in some order.
func (f *following) expectAnyOrder(want ...string) {
	f.t.Helper()
	left := slices.Clone(want)
	for range want {
		l := f.next()
		i := slices.IndexFunc(left, func(w string) bool { return said(l, w) })
		if i < 0 {
			f.t.Fatalf("got line %q, want one of %q", l.Text, left)
		}
		left = slices.Delete(left, i, i+1)
	}
}

// stop ends the follow and returns Stream's error.
func (f *following) stop() error {
	f.t.Helper()
	f.cancel()
	select {
	case <-f.done:
		return f.err
	case <-time.After(15 * time.Second):
		f.t.Fatalf("Stream still running 15s after its context was cancelled")
	}
	return nil
}

func tokens(prefix string, n int) []string {
	var s []string
	for i := 1; i <= n; i++ {
		s = append(s, fmt.Sprintf("%s%d", prefix, i))
	}
	return s
}

// testSource is the conformance suite of Source: tail, times, since,
// follow (with tail and since), the end of a follow by its context, and
// an emit error ending a follow.
func testSource(t *testing.T, h sourceHarness) {
	src := h.src
	if lines := read(t, src, Options{Tail: -1}); len(lines) != 0 {
		t.Fatalf("the new log has lines: %q", texts(lines))
	}
	start := time.Now()
	a := tokens("a", 5)
	h.say(t, a...)
	waitSaid(t, src, "a5")

	t.Run("tail", func(t *testing.T) {
		expectLines(t, "tail 3", read(t, src, Options{Tail: 3}), "a3", "a4", "a5")
		expectLines(t, "tail 1", read(t, src, Options{Tail: 1}), "a5")
		expectLines(t, "tail all", read(t, src, Options{Tail: -1}), a...)
		expectLines(t, "tail 10 of 5", read(t, src, Options{Tail: 10}), a...)
		expectLines(t, "tail 0", read(t, src, Options{Tail: 0}))
	})

	t.Run("times", func(t *testing.T) {
		lines := read(t, src, Options{Tail: -1})
		for i, l := range lines {
			if l.Time.Before(start.Add(-time.Minute)) || l.Time.After(time.Now().Add(time.Minute)) {
				t.Errorf("line %q: time %v, want about now (%v)", l.Text, l.Time, start)
			}
			if i > 0 && l.Time.Before(lines[i-1].Time) {
				t.Errorf("line %q: time %v before the previous line's %v", l.Text, l.Time, lines[i-1].Time)
			}
		}
	})

	// Every line said so far is visible, so logged before cutoff; every
	// line said from now on is logged after it.
	cutoff := time.Now()
	for !time.Now().After(cutoff) {
		time.Sleep(time.Microsecond)
	}
	b := tokens("b", 3)
	h.say(t, b...)
	waitSaid(t, src, "b3")

	t.Run("since", func(t *testing.T) {
		expectLines(t, "since", read(t, src, Options{Tail: -1, Since: cutoff}), b...)
		expectLines(t, "since, tail 2", read(t, src, Options{Tail: 2, Since: cutoff}), "b2", "b3")
		expectLines(t, "since, tail 0", read(t, src, Options{Tail: 0, Since: cutoff}))
		expectLines(t, "since the future", read(t, src, Options{Tail: -1, Since: time.Now().Add(time.Hour)}))
		expectLines(t, "since the past", read(t, src, Options{Tail: -1, Since: start.Add(-time.Hour)}), append(slices.Clone(a), b...)...)
	})

	t.Run("follow", func(t *testing.T) {
		f := follow(t, src, Options{Tail: 1})
		f.expect("b3")
		h.say(t, "c1", "c2")
		f.expect("c1", "c2")
		h.say(t, "c3")
		f.expect("c3")
		if err := f.stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Stream ended by its context returned %v, want context.Canceled", err)
		}
	})

	t.Run("follow since", func(t *testing.T) {
		f := follow(t, src, Options{Tail: -1, Since: cutoff})
		f.expect("b1", "b2", "b3", "c1", "c2", "c3")
		h.say(t, "d1")
		f.expect("d1")
		if err := f.stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Stream ended by its context returned %v, want context.Canceled", err)
		}
	})

	t.Run("emit error ends a follow", func(t *testing.T) {
		errStop := errors.New("stop here")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var got []string
		err := src.Stream(ctx, Options{Tail: 2, Follow: true}, func(l Line) error {
			got = append(got, l.Text)
			return errStop
		})
		if !errors.Is(err, errStop) || ctx.Err() != nil {
			t.Errorf("Stream = %v (context: %v), want the emit error before the context ends", err, ctx.Err())
		}
		if len(got) != 1 || !said(Line{Text: got[0]}, "c3") {
			t.Errorf("emit called with %q, want once with c3", got)
		}
	})
}
