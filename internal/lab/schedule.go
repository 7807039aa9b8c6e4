package lab

import "github.com/robfig/cron/v3"

// scheduleParser accepts standard 5-field cron expressions (minute hour
// day-of-month month day-of-week), descriptors (@daily, @every 6h) and
// an optional leading "CRON_TZ=Area/City " (or "TZ=") time zone.
var scheduleParser = cron.NewParser(
	cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor,
)

// ParseSchedule parses a schedule or drill.schedule expression, for
// example "0 2 * * *", "CRON_TZ=Europe/Paris 30 5 * * 0" or "@daily".
// Without a time zone prefix, times are in the local zone of the process.
// It is the one parser used to validate the lab file and to compute next
// runs; an empty spec (meaning "manual only" in the lab file) is an error
// here, so callers check for it first.
func ParseSchedule(spec string) (cron.Schedule, error) {
	return scheduleParser.Parse(spec)
}
