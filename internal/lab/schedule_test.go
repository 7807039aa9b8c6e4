package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestParseScheduleZone checks the time zone prefixes that panicked
// robfig/cron (issue 12) and the intervals it silently ran every second.
func TestParseScheduleZone(t *testing.T) {
	for _, tt := range []struct{ spec, err string }{
		{"TZ=", "no time zone after TZ="},
		{"CRON_TZ=", "no time zone after CRON_TZ="},
		{"TZ=Europe/Paris", "no schedule after the time zone TZ=Europe/Paris"},
		{"CRON_TZ=Europe/Paris", "no schedule after the time zone CRON_TZ=Europe/Paris"},
		{"CRON_TZ=Europe/Paris   ", "no schedule after the time zone CRON_TZ=Europe/Paris"},
		{"TZ= 0 2 * * *", "no time zone after TZ="}, // robfig/cron: UTC
		{"CRON_TZ=Nowhere/Else 0 2 * * *", `unknown time zone "Nowhere/Else"`},
		{"CRON_TZ=../../etc/passwd 0 2 * * *", `unknown time zone "../../etc/passwd"`},
		{"@every 0s", "@every needs a positive interval, got 0s"},
		{"@every -5m", "@every needs a positive interval, got -5m0s"},
		{"CRON_TZ=UTC @every 0s", "@every needs a positive interval, got 0s"},
	} {
		if _, err := ParseSchedule(tt.spec); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseSchedule(%q) error = %v, want %q", tt.spec, err, tt.err)
		}
	}
	// A tab after the zone: robfig/cron looks for a space only.
	s, err := ParseSchedule("CRON_TZ=Europe/Paris\t30 5 * * 0")
	if err != nil {
		t.Fatal(err)
	}
	if loc := s.(*cron.SpecSchedule).Location.String(); loc != "Europe/Paris" {
		t.Errorf("location = %s, want Europe/Paris", loc)
	}
	// ParseSchedule leaves the floor to the lab file's checks.
	if _, err := ParseSchedule("@every 1s"); err != nil {
		t.Errorf("ParseSchedule(@every 1s): %v", err)
	}
}

func TestMinEvery(t *testing.T) {
	lab := func(schedule string) string {
		return "repositories: {r: {url: /r, password_env: P}}\n" +
			"backups: {b: {provider: restic, repository: r, source: {paths: [/x]}, schedule: \"" + schedule + "\"}}\n"
	}
	for _, tt := range []struct{ env, schedule, want string }{
		{"", "@every 1m", ""},
		{"", "@every 59s", `lab.yaml:2:81: backups.b.schedule: bad cron expression "@every 59s": the interval must be at least 1m`},
		{"", "CRON_TZ=UTC @every 1h", ""},
		{"2s", "@every 2s", ""},
		{"2s", "@every 1s", `lab.yaml:2:81: backups.b.schedule: bad cron expression "@every 1s": the interval must be at least 2s`},
		{"2s", "@every 0s", `lab.yaml:2:81: backups.b.schedule: bad cron expression "@every 0s": the interval must be at least 2s`},
		{"500ms", "@every 1m", `lab.yaml:2:81: backups.b.schedule: bad HOMELAB_MIN_EVERY="500ms" in the environment: expected a duration of at least 1s`},
		{"soon", "0 2 * * *", ""}, // only @every schedules read it
	} {
		t.Run(tt.env+" "+tt.schedule, func(t *testing.T) {
			t.Setenv(EnvMinEvery, tt.env)
			_, err := Parse("lab.yaml", []byte(lab(tt.schedule)))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("error = %s, want %s", got, tt.want)
			}
		})
	}
	if got := shortDuration(MinEvery); got != "1m" {
		t.Errorf("shortDuration(MinEvery) = %s", got)
	}
	if got := shortDuration(90 * time.Minute); got != "1h30m" {
		t.Errorf("shortDuration(90m) = %s", got)
	}
}
