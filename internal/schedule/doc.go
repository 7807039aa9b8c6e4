// Package schedule decides when the daemon's jobs (backups, restore drills,
// repository checks) are due. It is pure: it never sleeps, starts no
// goroutines and never reads the clock; every call takes the current time.
// The daemon sleeps until [Scheduler.Next], then runs what [Scheduler.Due]
// returns.
//
// Schedules are cron.Schedule values from lab.ParseSchedule: 5-field cron
// specs and descriptors (evaluated in their CRON_TZ zone, or else in the
// zone of the time passed in) and "@every d", whose slots are not tied to
// the wall clock but follow one interval after another.
//
// # Catch-up
//
// When a job is set up ([New], or [Scheduler.Reload] for a new or changed
// job) the latest slot at or before now is found with [Prev]. If that slot
// exists and the job has no successful run since (none at all, or the
// newest success started before the slot), the job is pending: the next Due
// returns it once, with CatchUp set and Slot the latest missed slot,
// however many slots were missed. For "@every" schedules a full interval
// must also have passed since the last success, since their Prev is only
// somewhere in the last interval.
//
// # Clock jumps
//
// A job remembers the slot it last fired. After a fire its next slot is
// the first one after max(now, fired slot), so a clock that leaps forward
// over several slots gives one fire (CatchUp set, Slot the first missed
// slot), and a clock that steps back never fires a slot again.
//
// # Daylight saving time
//
// robfig/cron's Next works on the wall clock, with two surprises that this
// package corrects for cron specs that do not run every hour:
//
//   - Fall-back: the repeated hour comes twice, and Next returns both
//     copies ("30 1 * * *" in America/New_York gives 01:30 EDT, then 01:30
//     EST). A slot whose wall-clock reading (date and time in the
//     schedule's zone) is not after the last fired slot's is skipped, so
//     each wall-clock slot fires once.
//   - Spring-forward: Next skips slots in the missing hour, and for a
//     daily "30 2 * * *" in Europe/Berlin that means the whole day (it
//     goes from 02:30 on Saturday to 02:30 on Monday). A slot in the gap
//     fires instead at the first instant after it (03:00 CEST), so the day
//     still gets its run.
//
// Specs that run every hour (an hour field of "*") keep robfig's
// behaviour: they fire in both copies of a repeated hour and skip the
// missing one, like elapsed-time schedules. "@every" schedules are
// untouched.
//
// # Jitter
//
// A job with Jitter > 0 fires at slot + offset, where offset is the FNV-1a
// hash of the job's key and the slot's Unix second, modulo Jitter: spread
// across jobs, stable across restarts, and computed without randomness.
// The typed backups of one target (Key.Type) share the target's offset,
// so slots they have in common fire together.
// Catch-up runs get no jitter. Jitter should be shorter than the interval
// between slots.
package schedule
