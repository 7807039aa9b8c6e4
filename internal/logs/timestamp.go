package logs

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// prefixMax is how much of a line is searched for its timestamp (a common
// log format time comes after the client, ident and user fields).
const prefixMax = 512

// clock reads the timestamps of log lines.
//
// The formats recognised, in this order:
//
//   - RFC 3339 / ISO 8601 at the start of the line, optionally after "[":
//     2024-05-01T10:00:00Z, 2024-05-01 10:00:00.123+02:00,
//     2024-05-01T10:00:00,123 (Python's logging), 2024-05-01 10:00
//     (seconds optional). The date and time are separated by "T" or a
//     space; the fraction by "." or ","; the zone is Z, ±hh:mm or ±hhmm,
//     and without a zone the time is in Location.
//   - syslog (RFC 3164) at the start of the line: "Jan _2 15:04:05", with
//     an optional fraction, in Location. The year is not in the line: it is
//     the current year (by Now), or the year before when that would put
//     the time more than a day in the future.
//   - common log format anywhere in the first 512 bytes:
//     "[02/Jan/2006:15:04:05 -0700]" (Apache, nginx).
//
// Anything else has no timestamp.
type clock struct {
	now func() time.Time
	loc *time.Location
}

// parse returns the timestamp of line, or false when it has none.
func (c clock) parse(line []byte) (time.Time, bool) {
	if len(line) > prefixMax {
		line = line[:prefixMax]
	}
	s := line
	if len(s) > 0 && s[0] == '[' {
		s = s[1:]
	}
	if t, n := parseISO(s, c.loc); n > 0 && (n == len(s) || !isDigit(s[n])) {
		return t, true
	}
	if t, ok := c.parseSyslog(line); ok {
		return t, true
	}
	return parseCLF(line)
}

// parseISO reads an ISO 8601 date and time at the start of s and returns
// it and the number of bytes it took, or 0 when s does not start with one.
func parseISO(s []byte, loc *time.Location) (time.Time, int) {
	// 2006-01-02?15:04 is the least: 16 bytes.
	if len(s) < 16 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' {
		return time.Time{}, 0
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return time.Time{}, 0
	}
	n, sec, nsec := 16, 0, 0
	if len(s) >= 19 && s[16] == ':' {
		v, ok := digits(s[17:19])
		if !ok {
			return time.Time{}, 0
		}
		sec, n = v, 19
		if n+1 < len(s) && (s[n] == '.' || s[n] == ',') && isDigit(s[n+1]) {
			m := n + 1
			for m < len(s) && isDigit(s[m]) {
				m++
			}
			nsec = fraction(s[n+1 : m])
			n = m
		}
	}
	zone := loc
	switch {
	case n < len(s) && s[n] == 'Z':
		zone, n = time.UTC, n+1
	case n < len(s) && (s[n] == '+' || s[n] == '-'):
		if off, m := parseOffset(s[n:]); m > 0 {
			zone, n = time.FixedZone("", off), n+m
		}
	}
	if !validDate(year, month, day, hour, minute, sec) {
		return time.Time{}, 0
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, zone), n
}

// parseOffset reads a zone offset ±hh:mm or ±hhmm and returns it in
// seconds east of UTC and its length, or a length of 0.
func parseOffset(s []byte) (int, int) {
	var hh, mm int
	var ok1, ok2 bool
	n := 0
	switch {
	case len(s) >= 6 && s[3] == ':':
		hh, ok1 = digits(s[1:3])
		mm, ok2 = digits(s[4:6])
		n = 6
	case len(s) >= 5:
		hh, ok1 = digits(s[1:3])
		mm, ok2 = digits(s[3:5])
		n = 5
	}
	if n == 0 || !ok1 || !ok2 || hh > 14 || mm > 59 {
		return 0, 0
	}
	off := hh*3600 + mm*60
	if s[0] == '-' {
		off = -off
	}
	return off, n
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseSyslog reads "Jan _2 15:04:05[.frac]" at the start of s.
func (c clock) parseSyslog(s []byte) (time.Time, bool) {
	// "Jan _2 15:04:05" is 15 bytes.
	if len(s) < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' {
		return time.Time{}, false
	}
	month := 0
	for i, m := range months {
		if string(s[:3]) == m {
			month = i + 1
		}
	}
	var day int
	var ok bool
	if s[4] == ' ' {
		day, ok = digits(s[5:6])
	} else {
		day, ok = digits(s[4:6])
	}
	hour, ok1 := digits(s[7:9])
	minute, ok2 := digits(s[10:12])
	sec, ok3 := digits(s[13:15])
	if month == 0 || !(ok && ok1 && ok2 && ok3) {
		return time.Time{}, false
	}
	n, nsec := 15, 0
	if n+1 < len(s) && s[n] == '.' && isDigit(s[n+1]) {
		m := n + 1
		for m < len(s) && isDigit(s[m]) {
			m++
		}
		nsec, n = fraction(s[n+1:m]), m
	}
	if n < len(s) && s[n] != ' ' {
		return time.Time{}, false
	}
	now := c.now().In(c.loc)
	for _, year := range []int{now.Year(), now.Year() - 1} {
		if !validDate(year, month, day, hour, minute, sec) {
			continue // Feb 29 in a year that has none
		}
		t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, c.loc)
		if !t.After(now.Add(24 * time.Hour)) {
			return t, true
		}
	}
	return time.Time{}, false
}

// clfLayout is the time of the common log format, between brackets.
const clfLayout = "02/Jan/2006:15:04:05 -0700"

// parseCLF finds "[02/Jan/2006:15:04:05 -0700]" in s.
func parseCLF(s []byte) (time.Time, bool) {
	for i := 0; i+len(clfLayout)+2 <= len(s); i++ {
		j := bytes.IndexByte(s[i:], '[')
		if j < 0 {
			break
		}
		i += j
		end := i + 1 + len(clfLayout)
		if end >= len(s) || s[end] != ']' {
			continue
		}
		if t, err := time.Parse(clfLayout, string(s[i+1:end])); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// ParseSince reads a --since value: a duration before now (10m, 2h, 1h30m;
// also whole days: 3d) or a time: RFC 3339 (2024-05-01T10:00:00Z), or a
// date and time in loc (2024-05-01 10:00, 2024-05-01T10:00:00, 2024-05-01
// for midnight).
func ParseSince(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, ok := parseDuration(s); ok {
		return now.Add(-d), nil
	}
	if t, n := parseISO([]byte(s), loc); n == len(s) && n > 0 {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("bad --since %q: expected a duration such as 10m, 2h or 3d, or a time such as 2024-05-01T10:00:00Z or \"2024-05-01 10:00\"", s)
}

// parseDuration reads a non-negative Go duration or a whole number of
// days ("3d").
func parseDuration(s string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

// digits reads s as a decimal number made of digits only.
func digits(s []byte) (int, bool) {
	n := 0
	for _, b := range s {
		if !isDigit(b) {
			return 0, false
		}
		n = n*10 + int(b-'0')
	}
	return n, len(s) > 0
}

// fraction turns the digits of a decimal fraction of a second into
// nanoseconds (digits past the ninth are dropped).
func fraction(s []byte) int {
	ns := 0
	for i := range 9 {
		ns *= 10
		if i < len(s) {
			ns += int(s[i] - '0')
		}
	}
	return ns
}

func validDate(year, month, day, hour, minute, sec int) bool {
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 60 {
		return false
	}
	// time.Date normalises Feb 30 into March: a day past the month's end
	// comes back in another month.
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Month() == time.Month(month)
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }
