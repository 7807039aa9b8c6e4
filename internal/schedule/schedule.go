package schedule

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"time"

	"github.com/robfig/cron/v3"
)

// Kind is what a job does.
type Kind string

// The kinds of scheduled job.
const (
	KindBackup Kind = "backup"
	KindDrill  Kind = "drill"
	KindCheck  Kind = "check"
)

// Key identifies a job: Name is a backup target, or a repository for
// checks. Type tells apart the backups of one target that run on
// schedules of their own (a pgbackrest target's full, diff and incr);
// it is empty otherwise.
type Key struct {
	Kind Kind
	Name string
	Type string
}

// String returns "kind:name", for example "backup:db", or with a type
// "kind:name:type" ("backup:db:incr").
func (k Key) String() string {
	if k.Type != "" {
		return string(k.Kind) + ":" + k.Name + ":" + k.Type
	}
	return string(k.Kind) + ":" + k.Name
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Type, b.Type))
}

// Spec is one job's schedule.
type Spec struct {
	Key Key
	// Expr is the schedule as written; a changed Expr on Reload is a new
	// schedule.
	Expr string
	// Schedule is Expr parsed by lab.ParseSchedule; it must not be nil.
	Schedule cron.Schedule
	// Jitter delays each scheduled fire by a stable offset in [0, Jitter);
	// 0 (or less) means none.
	Jitter time.Duration
}

// LastSuccess reports the start time of the job's newest successful run
// (from the catalog), false if none.
type LastSuccess func(Key) (time.Time, bool)

// Fire is one run the daemon should start now.
type Fire struct {
	Key Key
	// Slot is the cron slot this run is for.
	Slot time.Time
	// CatchUp is set when the run is late: it was pending at New or Reload,
	// or later slots passed too and were folded into this run.
	CatchUp bool
}

// Entry is a job's state, for the status page.
type Entry struct {
	Key  Key
	Expr string
	// Next is when the next scheduled slot fires (slot plus jitter); zero
	// if the schedule has no slot within five years. A Pending job runs at
	// the next Due whatever Next says.
	Next time.Time
	// LastFired is the slot of the last fire, zero if none since the job
	// was set up.
	LastFired time.Time
	Pending   bool
}

type job struct {
	spec      Spec
	next      time.Time // next slot, without jitter; zero if none
	lastFired time.Time // slot of the last fire; zero if none
	pending   bool
	missed    time.Time // the catch-up slot while pending
}

// Scheduler holds the jobs and their state. It is not safe for concurrent
// use; the daemon guards it.
type Scheduler struct {
	jobs map[Key]*job
}

// New sets up a scheduler for specs at time now. A later spec with the same
// Key replaces an earlier one. last may be nil (no job has succeeded).
func New(specs []Spec, now time.Time, last LastSuccess) *Scheduler {
	s := &Scheduler{}
	s.Reload(specs, now, last)
	return s
}

// Reload replaces the job set at time now. Jobs with the same Key, Expr and
// Jitter as before keep their state (next slot, last fired slot, pending);
// new and changed jobs are set up as in New, catch-up included; jobs not in
// specs are dropped.
func (s *Scheduler) Reload(specs []Spec, now time.Time, last LastSuccess) {
	old := s.jobs
	s.jobs = make(map[Key]*job, len(specs))
	for _, sp := range specs {
		if j, ok := old[sp.Key]; ok && j.spec.Expr == sp.Expr && j.spec.Jitter == sp.Jitter {
			j.spec = sp
			s.jobs[sp.Key] = j
			continue
		}
		s.jobs[sp.Key] = newJob(sp, now, last)
	}
}

func newJob(sp Spec, now time.Time, last LastSuccess) *job {
	j := &job{spec: sp, next: nextSlot(sp.Schedule, now, time.Time{})}
	prev, ok := Prev(sp.Schedule, now)
	if !ok {
		return j
	}
	var ran time.Time
	var succeeded bool
	if last != nil {
		ran, succeeded = last(sp.Key)
	}
	// For cron specs, ran < prev implies Next(ran) <= now; for "@every" the
	// second test asks for a whole interval since the last success.
	if !succeeded || (ran.Before(prev) && !sp.Schedule.Next(ran).After(now)) {
		j.pending, j.missed = true, prev
	}
	return j
}

// dueAt is when the job should next run, false if never.
func (j *job) dueAt() (time.Time, bool) {
	if j.pending {
		return j.missed, true
	}
	if j.next.IsZero() {
		return time.Time{}, false
	}
	return j.next.Add(Jitter(j.spec.Key, j.next, j.spec.Jitter)), true
}

// fire marks the job fired at now and advances it.
func (j *job) fire(now time.Time) Fire {
	f := Fire{Key: j.spec.Key, Slot: j.missed, CatchUp: j.pending}
	if !j.next.IsZero() && !now.Before(j.next.Add(Jitter(j.spec.Key, j.next, j.spec.Jitter))) {
		f.Slot = j.next
		if after := j.spec.Schedule.Next(j.next); !after.IsZero() && !after.After(now) {
			f.CatchUp = true
		}
	}
	j.pending, j.missed = false, time.Time{}
	j.lastFired = f.Slot
	j.next = nextSlot(j.spec.Schedule, later(now, f.Slot), f.Slot)
	return f
}

// Due returns the jobs whose time has come at now, ordered by when they
// were due, then by Key, and marks them fired: each job appears at most
// once, and its next slot is the first after max(now, fired slot).
func (s *Scheduler) Due(now time.Time) []Fire {
	type due struct {
		at time.Time
		j  *job
	}
	var ds []due
	for _, j := range s.jobs {
		if at, ok := j.dueAt(); ok && !now.Before(at) {
			ds = append(ds, due{at, j})
		}
	}
	slices.SortFunc(ds, func(a, b due) int {
		return cmp.Or(a.at.Compare(b.at), compareKeys(a.j.spec.Key, b.j.spec.Key))
	})
	fires := make([]Fire, 0, len(ds))
	for _, d := range ds {
		fires = append(fires, d.j.fire(now))
	}
	return fires
}

// Next returns the earliest time any job is due (a pending job is due at
// its missed slot, in the past), for the daemon's sleep. It returns false
// if there are no jobs or none has a slot within five years.
func (s *Scheduler) Next() (time.Time, bool) {
	var first time.Time
	found := false
	for _, j := range s.jobs {
		if at, ok := j.dueAt(); ok && (!found || at.Before(first)) {
			first, found = at, true
		}
	}
	return first, found
}

// Entries returns every job's state, sorted by Key.
func (s *Scheduler) Entries() []Entry {
	es := make([]Entry, 0, len(s.jobs))
	for _, j := range s.jobs {
		e := Entry{Key: j.spec.Key, Expr: j.spec.Expr, LastFired: j.lastFired, Pending: j.pending}
		if !j.next.IsZero() {
			e.Next = j.next.Add(Jitter(j.spec.Key, j.next, j.spec.Jitter))
		}
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b Entry) int { return compareKeys(a.Key, b.Key) })
	return es
}

// Jitter returns the delay in [0, limit) applied to key's run for slot:
// the FNV-1a hash of key.String() followed by slot.Unix() (8 bytes, big
// endian), modulo limit. It is 0 when limit <= 0.
func Jitter(key Key, slot time.Time, limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key.String()))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(slot.Unix())))
	return time.Duration(h.Sum64() % uint64(limit))
}

// lookBack are the windows Prev searches, smallest first.
var lookBack = []time.Duration{
	time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour,
	367 * 24 * time.Hour, 5 * 365 * 24 * time.Hour,
}

// Prev returns the latest slot of sched at or before now, false if there is
// none within five years. It takes the smallest look-back window w (1m, 1h,
// 1d, 32d, 367d, 5y) with a slot in (now-w, now] and steps forward with
// Next from there, so its work is bounded by the slots in one window (about
// 60 for "@every 1s").
func Prev(sched cron.Schedule, now time.Time) (time.Time, bool) {
	for _, w := range lookBack {
		p := sched.Next(now.Add(-w))
		if p.IsZero() || p.After(now) {
			continue
		}
		for {
			n := sched.Next(p)
			if n.IsZero() || n.After(now) {
				return p, true
			}
			p = n
		}
	}
	return time.Time{}, false
}

// nextSlot returns the first slot of sched after from, zero if none, with
// the DST corrections described in the package comment: a slot whose
// wall-clock reading is not after that of lastFired (a repeated hour) is
// skipped, and a slot in a spring-forward gap fires at the end of the gap.
func nextSlot(sched cron.Schedule, from, lastFired time.Time) time.Time {
	n := sched.Next(from)
	spec, ok := sched.(*cron.SpecSchedule)
	const everyHour = 1<<24 - 1
	if !ok || spec.Hour&everyHour == everyHour {
		return n
	}
	loc := spec.Location
	if loc == time.Local {
		loc = from.Location() // as robfig does
	}
	for !n.IsZero() && !lastFired.IsZero() && !wallClock(n, loc).After(wallClock(lastFired, loc)) {
		n = sched.Next(n)
	}
	if g, ok := gapSlot(spec, loc, from, n); ok {
		return g
	}
	return n
}

// gapSlot reports the end of the first spring-forward gap in loc between
// from and n (n zero: five years) whose missing wall-clock times hold a
// slot of spec, in from's location as robfig returns slots.
func gapSlot(spec *cron.SpecSchedule, loc *time.Location, from, n time.Time) (time.Time, bool) {
	for t := from; ; {
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || (!n.IsZero() && end.After(n)) || end.Year() > from.Year()+5 {
			return time.Time{}, false
		}
		_, before := end.Add(-time.Nanosecond).In(loc).Zone()
		_, after := end.In(loc).Zone()
		if after > before {
			// Read the missing wall-clock times in the old offset, where
			// they exist: [end, end+gap) in that fixed zone.
			old := *spec
			old.Location = time.FixedZone("", before)
			s := old.Next(end.Add(-time.Second))
			if !s.IsZero() && s.Before(end.Add(time.Duration(after-before)*time.Second)) {
				return end.In(from.Location()), true
			}
		}
		t = end
	}
}

// wallClock returns t's date and time of day in loc, as a UTC time, so that
// readings compare as a wall clock would.
func wallClock(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
