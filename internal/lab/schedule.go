package lab

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
)

// scheduleParser accepts standard 5-field cron expressions (minute hour
// day-of-month month day-of-week), descriptors (@daily, @every 6h) and
// an optional leading "CRON_TZ=Area/City " (or "TZ=") time zone.
var scheduleParser = cron.NewParser(
	cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor,
)

// MinEvery is the shortest "@every" interval a lab file may use: the
// resolution of a cron expression. EnvMinEvery lowers it.
const MinEvery = time.Minute

// EnvMinEvery names the environment variable that, set to a Go duration
// of at least one second, replaces MinEvery when a lab file is checked.
// It exists for tests and demonstrations that need a daemon busy within
// seconds; a real lab has no use for it.
const EnvMinEvery = "HOMELAB_MIN_EVERY"

// ParseSchedule parses a schedule or drill.schedule expression, for
// example "0 2 * * *", "CRON_TZ=Europe/Paris 30 5 * * 0" or "@daily".
// Without a time zone prefix, times are in the local zone of the process.
// It is the one parser used to validate the lab file and to compute next
// runs; an empty spec (meaning "manual only" in the lab file) is an error
// here, so callers check for it first. A "CRON_TZ=" or "TZ=" prefix must
// name a zone that time.LoadLocation knows and be followed by the
// schedule; "@every" needs a positive interval (the lab file's own floor,
// MinEvery, is checked by Load, not here).
func ParseSchedule(spec string) (cron.Schedule, error) {
	spec, err := checkZone(spec)
	if err != nil {
		return nil, err
	}
	if d, ok, err := everyInterval(spec); ok && err == nil && d <= 0 { // robfig/cron would run it every second
		return nil, fmt.Errorf("@every needs a positive interval, got %s", d)
	}
	return scheduleParser.Parse(spec)
}

// checkZone checks a leading "CRON_TZ=" or "TZ=" zone, which robfig/cron
// would take apart without checks (a prefix and no schedule panics it),
// and returns spec with the zone separated from the schedule by one
// space, as robfig/cron expects.
func checkZone(spec string) (string, error) {
	var prefix string
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if strings.HasPrefix(spec, p) {
			prefix = p
			break
		}
	}
	if prefix == "" {
		return spec, nil
	}
	zone, rest, _ := strings.Cut(spec[len(prefix):], " ")
	if i := strings.IndexFunc(zone, unicode.IsSpace); i >= 0 { // a tab or other space
		zone, rest = zone[:i], zone[i:]+" "+rest
	}
	rest = strings.TrimSpace(rest)
	example := prefix + "Europe/Paris 30 5 * * 0"
	switch {
	case zone == "":
		return "", fmt.Errorf("no time zone after %s (expected for example %q)", prefix, example)
	case rest == "":
		return "", fmt.Errorf("no schedule after the time zone %s%s (expected for example %q)", prefix, zone, example)
	}
	if _, err := time.LoadLocation(zone); err != nil {
		return "", fmt.Errorf("unknown time zone %q (expected an IANA name such as Europe/Paris or UTC)", zone)
	}
	return prefix + zone + " " + rest, nil
}

// everyInterval returns the interval of an "@every" schedule, after any
// time zone prefix: ok is false for other schedules (and for a bad zone,
// which ParseSchedule reports), err set when the interval is not a Go
// duration.
func everyInterval(spec string) (d time.Duration, ok bool, err error) {
	spec, err = checkZone(spec)
	if err != nil {
		return 0, false, nil
	}
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		_, spec, _ = strings.Cut(spec, " ")
	}
	text, ok := strings.CutPrefix(spec, "@every ")
	if !ok {
		return 0, false, nil
	}
	d, err = time.ParseDuration(text)
	return d, true, err
}

// minEvery returns the shortest "@every" interval allowed: MinEvery, or
// $HOMELAB_MIN_EVERY when set.
func minEvery() (time.Duration, error) {
	v := os.Getenv(EnvMinEvery)
	if v == "" {
		return MinEvery, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("bad %s=%q in the environment: expected a duration of at least 1s", EnvMinEvery, v)
	}
	return d, nil
}
