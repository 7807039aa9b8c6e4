package logs

import (
	"testing"
	"time"
)

// zone is the explicit local zone of the tests (UTC+1, no DST).
var zone = time.FixedZone("UTC+1", 3600)

// epoch is the tests' now: Sunday 10 March 2024, 12:00 in zone.
var epoch = time.Date(2024, 3, 10, 12, 0, 0, 0, zone)

func TestClockParse(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		name, line string
		now        time.Time // default epoch
		want       time.Time // zero: no timestamp
	}{
		{"rfc3339 utc", "2024-03-10T11:22:33Z GET /", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 0, utc)},
		{"rfc3339 nanoseconds", "2024-03-10T11:22:33.123456789Z x", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 123456789, utc)},
		{"fraction past nanoseconds", "2024-03-10T11:22:33.1234567891Z x", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 123456789, utc)},
		{"offset with colon", "2024-03-10T11:22:33+02:00 x", time.Time{}, time.Date(2024, 3, 10, 9, 22, 33, 0, utc)},
		{"offset without colon", "2024-03-10T11:22:33.5-0530 x", time.Time{}, time.Date(2024, 3, 10, 16, 52, 33, 5e8, utc)},
		{"space, no zone: local", "2024-03-10 11:22:33 INFO started", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 0, zone)},
		{"python logging comma fraction", "2024-03-10 11:22:33,456 INFO x", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 456e6, zone)},
		{"no seconds", "2024-03-10 11:22 backup done", time.Time{}, time.Date(2024, 3, 10, 11, 22, 0, 0, zone)},
		{"in brackets", "[2024-03-10 11:22:33] x", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 0, zone)},
		{"alone on the line", "2024-03-10T11:22:33Z", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 0, utc)},
		{"syslog", "Mar 10 11:22:33 nas smbd[812]: x", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 0, zone)},
		{"syslog one-digit day", "Mar  1 01:02:03 nas cron[1]: x", time.Time{}, time.Date(2024, 3, 1, 1, 2, 3, 0, zone)},
		{"syslog fraction", "Mar 10 11:22:33.250 nas x", time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 25e7, zone)},
		{"syslog last year", "Dec 31 23:59:59 nas x", time.Time{}, time.Date(2023, 12, 31, 23, 59, 59, 0, zone)},
		{"syslog less than a day ahead: this year", "Mar 11 10:00:00 nas x", time.Time{}, time.Date(2024, 3, 11, 10, 0, 0, 0, zone)},
		{"syslog more than a day ahead: last year", "Mar 12 13:00:00 nas x", time.Time{}, time.Date(2023, 3, 12, 13, 0, 0, 0, zone)},
		{"syslog Feb 29 in a leap year", "Feb 29 10:00:00 nas x", time.Time{}, time.Date(2024, 2, 29, 10, 0, 0, 0, zone)},
		{"syslog Feb 29 the year after", "Feb 29 10:00:00 nas x", time.Date(2025, 3, 10, 12, 0, 0, 0, zone), time.Date(2024, 2, 29, 10, 0, 0, 0, zone)},
		{"common log format", `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`, time.Time{}, time.Date(2000, 10, 10, 20, 55, 36, 0, utc)},
		{"common log format after a bracket", `[web] 10.0.0.1 - - [10/Mar/2024:11:22:33 +0000] "GET / HTTP/1.1" 200 5`, time.Time{}, time.Date(2024, 3, 10, 11, 22, 33, 0, utc)},

		{"no timestamp", "panic: runtime error: index out of range", time.Time{}, time.Time{}},
		{"continuation", "\tat org.example.Main.run(Main.java:42)", time.Time{}, time.Time{}},
		{"empty", "", time.Time{}, time.Time{}},
		{"month 13", "2024-13-01T00:00:00Z x", time.Time{}, time.Time{}},
		{"Feb 30", "2024-02-30 10:00:00 x", time.Time{}, time.Time{}},
		{"hour 24", "2024-03-10 24:00:00 x", time.Time{}, time.Time{}},
		{"compact ISO", "20240310T112233Z x", time.Time{}, time.Time{}},
		{"digits after the seconds", "2024-03-10T11:22:331 x", time.Time{}, time.Time{}},
		{"date only", "2024-03-10 started", time.Time{}, time.Time{}},
		{"not at the start", "level=info time=2024-03-10T11:22:33Z", time.Time{}, time.Time{}},
		{"syslog bad month", "Foo 10 11:22:33 nas x", time.Time{}, time.Time{}},
		{"syslog glued", "Mar 10 11:22:33nas x", time.Time{}, time.Time{}},
		{"syslog Feb 29 without a leap year near", "Feb 29 10:00:00 x", time.Date(2027, 3, 10, 12, 0, 0, 0, zone), time.Time{}},
		{"common log format unclosed", `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700 "GET /"`, time.Time{}, time.Time{}},
		{"common log format bad month", `1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] "GET /"`, time.Time{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = epoch
			}
			c := clock{now: func() time.Time { return now }, loc: zone}
			got, ok := c.parse([]byte(tt.line))
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("parse(%q) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, !tt.want.IsZero())
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"10m", epoch.Add(-10 * time.Minute)},
		{"2h", epoch.Add(-2 * time.Hour)},
		{"1h30m", epoch.Add(-90 * time.Minute)},
		{"3d", epoch.Add(-72 * time.Hour)},
		{"0s", epoch},
		{" 15m ", epoch.Add(-15 * time.Minute)},
		{"2024-03-10T10:00:00Z", time.Date(2024, 3, 10, 10, 0, 0, 0, time.UTC)},
		{"2024-03-10T10:00:00.5+01:00", time.Date(2024, 3, 10, 9, 0, 0, 5e8, time.UTC)},
		{"2024-03-10T10:00:00", time.Date(2024, 3, 10, 10, 0, 0, 0, zone)},
		{"2024-03-10 10:00", time.Date(2024, 3, 10, 10, 0, 0, 0, zone)},
		{"2024-03-10", time.Date(2024, 3, 10, 0, 0, 0, 0, zone)},
	}
	for _, tt := range tests {
		got, err := ParseSince(tt.in, epoch, zone)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-5m", "10", "yesterday", "2024-03-10 10", "2024-03-10T10:00:00Z junk", "-1d", "1.5d", "2024-02-30"} {
		if got, err := ParseSince(bad, epoch, zone); err == nil {
			t.Errorf("ParseSince(%q) = %v, want an error", bad, got)
		}
	}
}
