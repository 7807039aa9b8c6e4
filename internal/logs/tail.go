package logs

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// blockSize is how much a backward scan reads at a time.
const blockSize = 64 << 10

// scanBack calls fn for each line of r[0:end], from the last to the first,
// with the offset where the line starts and its first bytes (at most
// max, without the newline; nil when max is 0). end is where the text of
// the last line ends (its newline excluded), so r[0:end] holds at least
// one line, maybe empty. fn returns true to stop the scan.
//
// It reads r backwards in blocks of block bytes, so finding the last n
// lines costs about the size of those lines, not of r.
func scanBack(r io.ReaderAt, end int64, block, max int, fn func(start int64, prefix []byte) bool) error {
	buf := make([]byte, block)
	var small []byte
	if max > 0 {
		small = make([]byte, max)
	}
	var b []byte // the block last read, starting at off
	var off int64
	lineEnd := end
	prefix := func(start int64) ([]byte, error) {
		if max == 0 {
			return nil, nil
		}
		l := min(int64(max), lineEnd-start)
		if start >= off && start+l <= off+int64(len(b)) {
			return b[start-off : start-off+l], nil
		}
		// A line longer than a block: its start is in this block, its
		// first bytes may not be.
		if err := readFull(r, small[:l], start); err != nil {
			return nil, err
		}
		return small[:l], nil
	}
	for pos := end; pos > 0; pos = off {
		n := min(int64(block), pos)
		off, b = pos-n, buf[:n]
		if err := readFull(r, b, off); err != nil {
			return err
		}
		for i := len(b); ; {
			j := bytes.LastIndexByte(b[:i], '\n')
			if j < 0 {
				break
			}
			start := off + int64(j) + 1
			p, err := prefix(start)
			if err != nil {
				return err
			}
			if fn(start, p) {
				return nil
			}
			lineEnd, i = off+int64(j), j
		}
	}
	p, err := prefix(0)
	if err != nil {
		return err
	}
	fn(0, p)
	return nil
}

// readFull reads len(b) bytes of r at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF // the file shrank while it was read
	}
	return err
}

// textEnd is where the text of the last line of r[0:size] ends: size, or
// size-1 when r ends with a newline.
func textEnd(r io.ReaderAt, size int64) (int64, error) {
	var last [1]byte
	if err := readFull(r, last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return size - 1, nil
	}
	return size, nil
}

// tailStart returns the offset where the last n lines of r[0:size] start
// (n >= 1; a last line without its newline counts as a line), or 0 when
// r has n lines or fewer.
func tailStart(r io.ReaderAt, size int64, n, block int) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	end, err := textEnd(r, size)
	if err != nil {
		return 0, err
	}
	count, start := 0, int64(0)
	err = scanBack(r, end, block, 0, func(s int64, _ []byte) bool {
		count++
		if count == n {
			start = s
			return true
		}
		return false
	})
	return start, err
}

// sinceStart returns the offset of the last line of r[0:size] whose
// timestamp is before since (the file is taken to be in time order: the
// lines kept by --since come after it), or 0 when there is none. seen
// reports whether any line read had a timestamp.
func sinceStart(r io.ReaderAt, size int64, since time.Time, c clock, block int) (start int64, seen bool, err error) {
	if size == 0 {
		return 0, false, nil
	}
	end, err := textEnd(r, size)
	if err != nil {
		return 0, false, err
	}
	err = scanBack(r, end, block, prefixMax, func(s int64, p []byte) bool {
		t, ok := c.parse(p)
		if !ok {
			return false
		}
		seen = true
		if t.Before(since) {
			start = s
			return true
		}
		return false
	})
	return start, seen, err
}
