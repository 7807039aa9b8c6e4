package notify

import (
	"strings"
	"time"
)

// Event kinds. They are also the values of a lab file's notify[].on
// (lab.NotifyEvents is Kinds).
const (
	BackupFailed = "backup_failed"
	DrillFailed  = "drill_failed"
	CheckFailed  = "check_failed"
	PruneFailed  = "prune_failed"
	Overdue      = "overdue"
	Recovered    = "recovered"
	// UpgradeFailed: an upgrade did not finish done (rolled back, or its
	// rollback failed); Target is the service.
	UpgradeFailed = "upgrade_failed"
	// DiskFilling: a filesystem holding the lab's data is forecast to
	// fill within hosts.warn_days; Target is its mount point. Sent once
	// until the forecast clears.
	DiskFilling = "disk_filling"
	// ArchivingStuck: a completed WAL segment of a pgbackrest target has
	// waited for its repository longer than archive_timeout
	// (status.Window.Stuck); Target is the target. Sent once until
	// archiving moves again.
	ArchivingStuck = "archiving_stuck"
)

// Kinds lists every event kind.
var Kinds = []string{BackupFailed, DrillFailed, CheckFailed, PruneFailed, Overdue, Recovered, UpgradeFailed, DiskFilling, ArchivingStuck}

// Event is something worth telling a person about. Title and body
// templates are executed with the Event as their data, so every field and
// method below is available to them ({{.Target}}, {{.Summary}},
// {{.Time.Format "2006-01-02 15:04"}}).
type Event struct {
	Kind   string // one of Kinds
	Lab    string // lab name
	Target string // backup target, or repository for checks and prunes
	// Job is what failed or recovered: "backup", "drill", "check" or
	// "prune". When empty it is implied by Kind (overdue: backup).
	Job string
	// Time is when it happened. Notify sets a zero Time to Options.Now().
	Time       time.Time
	Error      string // failure reason, already free of secrets
	RunID      string
	SnapshotID string
	// Detail is free text, e.g. "last good backup 2026-11-22 02:00, due
	// by 2026-11-23 02:10".
	Detail string
}

// JobName returns Job, or the job implied by Kind when Job is empty.
func (e Event) JobName() string {
	if e.Job != "" {
		return e.Job
	}
	switch e.Kind {
	case BackupFailed, Overdue:
		return "backup"
	case DrillFailed:
		return "drill"
	case CheckFailed:
		return "check"
	case PruneFailed:
		return "prune"
	case UpgradeFailed:
		return "upgrade"
	case DiskFilling:
		return "disk"
	case ArchivingStuck:
		return "archiving"
	}
	return "job"
}

// Summary is one line saying what happened, without the lab name:
// "backup of db failed", "restore drill of db failed", "backup of db is
// overdue", "repository check of offsite recovered".
func (e Event) Summary() string {
	job := e.JobName()
	switch job {
	case "drill":
		job = "restore drill"
	case "check":
		job = "repository check"
	}
	subject := job
	if e.Target != "" {
		subject += " of " + e.Target
	}
	switch e.Kind {
	case BackupFailed, DrillFailed, CheckFailed, PruneFailed, UpgradeFailed:
		return subject + " failed"
	case Overdue:
		return subject + " is overdue"
	case Recovered:
		return subject + " recovered"
	case DiskFilling:
		return "filesystem " + e.Target + " is filling"
	case ArchivingStuck:
		return "WAL archiving of " + e.Target + " is stuck"
	}
	return subject + ": " + e.Kind
}

// DefaultTitle is the title used when a Channel has none:
// "homelab <lab>: <Summary>".
func DefaultTitle(e Event) string {
	if e.Lab == "" {
		return "homelab: " + e.Summary()
	}
	return "homelab " + e.Lab + ": " + e.Summary()
}

// DefaultBody is the body used when a Channel has none: one "name: value"
// line for each of target, job, time (RFC 3339), error, detail, run and
// snapshot that is set.
func DefaultBody(e Event) string {
	var b strings.Builder
	line := func(name, value string) {
		if value != "" {
			b.WriteString(name + ": " + value + "\n")
		}
	}
	line("target", e.Target)
	line("job", e.JobName())
	if !e.Time.IsZero() {
		line("time", e.Time.Format(time.RFC3339))
	}
	line("error", e.Error)
	line("detail", e.Detail)
	line("run", e.RunID)
	line("snapshot", e.SnapshotID)
	return strings.TrimSuffix(b.String(), "\n")
}

// sampleEvent has every field set; Validate executes templates with it so
// that a template naming a field Event lacks fails at load time.
var sampleEvent = Event{
	Kind:       BackupFailed,
	Lab:        "lab",
	Target:     "target",
	Job:        "backup",
	Time:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	Error:      "error",
	RunID:      "run",
	SnapshotID: "snapshot",
	Detail:     "detail",
}
