package lab

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line and column numbers here are those of yaml.v3's nodes: 1-based,
// lines broken by "\r\n", "\r", "\n", U+0085, U+2028 and U+2029, columns
// counted in characters.

// checkText checks that data is text yaml.v3 reads, UTF-8 without control
// characters, and otherwise returns the first problem with its line and
// column (yaml.v3's own messages have neither). ok is true when data is
// fine.
func checkText(path string, data []byte) (fe FieldError, ok bool) {
	if bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")) {
		return FieldError{File: path, Line: 1, Column: 1, Msg: "the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8"}, false
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		msg := ""
		switch {
		case r == utf8.RuneError && size <= 1:
			msg = fmt.Sprintf("invalid UTF-8 (byte 0x%02x): a lab file must be UTF-8 text", data[i])
		case !yamlChar(r):
			msg = fmt.Sprintf("control character %U is not allowed", r)
		}
		if msg != "" {
			line, col := position(data, i)
			return FieldError{File: path, Line: line, Column: col, Msg: msg}, false
		}
		i += size
	}
	return FieldError{}, true
}

// yamlChar reports whether YAML allows r in a stream: tab, line breaks,
// printable ASCII and most of Unicode but for C1 controls other than NEL
// (as yaml.v3's reader checks).
func yamlChar(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}

// lineBreak returns the length of the line break at data[i:], 0 if none.
func lineBreak(data []byte, i int) int {
	switch {
	case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case data[i] == '\r' || data[i] == '\n':
		return 1
	}
	if data[i] < 0x80 {
		return 0
	}
	switch r, size := utf8.DecodeRune(data[i:]); r {
	case 0x85, 0x2028, 0x2029:
		return size
	}
	return 0
}

// position returns the line and column of byte offset off in data. An
// invalid UTF-8 byte counts as one column.
func position(data []byte, off int) (line, col int) {
	line, col = 1, 1
	for i := 0; i < off && i < len(data); {
		if n := lineBreak(data, i); n > 0 {
			line, col = line+1, 1
			i += n
			continue
		}
		_, size := utf8.DecodeRune(data[i:])
		col++
		i += size
	}
	return line, col
}

// lineCount returns the number of lines in data: at least 1, and a final
// line break does not start another line.
func lineCount(data []byte) int {
	line, col := position(data, len(data))
	if col == 1 && line > 1 {
		return line - 1
	}
	return line
}

// findAlias returns the line and column of the first alias "*name" in
// data, or line 1 and column 0 (unknown) when there is none to be seen.
func findAlias(data []byte, name string) (line, col int) {
	alias := "*" + name
	text := string(data)
	for off := 0; ; {
		i := strings.Index(text[off:], alias)
		if i < 0 {
			return 1, 0
		}
		i += off
		end := i + len(alias)
		before := i == 0 || strings.ContainsRune(" \t\r\n[{,", rune(text[i-1]))
		after := end == len(text) || strings.ContainsRune(" \t\r\n]},", rune(text[end]))
		if before && after {
			return position(data, i)
		}
		off = i + 1
	}
}
