package status

import (
	"fmt"
	"time"
)

// Window is the recoverable window of a pgbackrest target: a
// point-in-time restore can go anywhere from From to To. It is read from
// pgBackRest (`info` and `repo-ls` of the newest archived segment) and
// from the cluster's pg_wal/archive_status (the pgbackrest provider's
// Window), by `homelab status` when it runs and by the daemon after each
// job of the target and every WindowRefresh, never per request.
type Window struct {
	// From is the start of the oldest backup; zero when there is none.
	From time.Time `json:"from"`
	// To is when the newest archived WAL segment (WAL) reached the
	// repository, whole seconds (pgBackRest's repo-ls): transactions
	// committed before the segment was switched are recoverable.
	To  time.Time `json:"to"`
	WAL string    `json:"wal"`
	// Backups is the number of backup sets in the repository.
	Backups int `json:"backups"`
	// Waiting is the number of WAL segments the cluster has completed
	// and not archived yet (pg_wal/archive_status/*.ready); Oldest is the
	// oldest of them and WaitingSince when it was completed. -1: the
	// cluster's archive_status was not readable.
	Waiting      int       `json:"waiting"`
	Oldest       string    `json:"oldest_waiting,omitempty"`
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	// ArchiveTimeout is the target's pgbackrest.archive_timeout: how long
	// a completed segment may wait for the repository before archiving
	// counts as stuck.
	ArchiveTimeout time.Duration `json:"-"`
	// Read is when this was read; Error why it could not be (the other
	// fields are then those of the last good reading, if any).
	Read  time.Time `json:"read"`
	Error string    `json:"error,omitempty"`
}

// WindowRefresh is how often the daemon reads the windows again between
// jobs: two pgbackrest commands (about 30 ms of CPU) per target each
// time, 0.2 s an hour.
const WindowRefresh = 10 * time.Minute

// Stuck reports whether archiving is stuck: a completed segment has waited
// for the repository longer than the target's archive_timeout (the time
// pgBackRest itself gives a segment to arrive) when the window was read.
// archive_command failing, or a repository that cannot be written, do
// that; an idle database (no segment completed) does not, however old its
// newest archived segment.
func (w Window) Stuck() bool {
	t := w.ArchiveTimeout
	if t <= 0 {
		t = time.Minute
	}
	return w.Waiting > 0 && !w.WaitingSince.IsZero() && w.Read.Sub(w.WaitingSince) > t
}

// Lag is how old the newest archived segment is at now (0 when none is):
// what a restore would lose if the cluster were lost now, at most (an idle
// database's lag grows with nothing to lose).
func (w Window) Lag(now time.Time) time.Duration {
	if w.To.IsZero() {
		return 0
	}
	return max(0, now.Sub(w.To))
}

// WindowText is the window in one line for the text and the page: "from
// 2026-12-06 02:00 to 10:41:07 (WAL 2m ago)", then the problems.
func WindowText(w Window, now time.Time) string {
	var s string
	switch {
	case w.Backups == 0 && w.Error == "":
		s = "no backup yet"
	case w.From.IsZero():
		s = "unknown"
	default:
		s = fmt.Sprintf("from %s to %s (newest WAL %s)", w.From.In(now.Location()).Format("2006-01-02 15:04:05"),
			w.To.In(now.Location()).Format("2006-01-02 15:04:05"), Ago(w.To, now))
	}
	if w.Stuck() {
		s += fmt.Sprintf("; ARCHIVING STUCK: %d WAL segments waiting, %s since %s", w.Waiting, w.Oldest, w.WaitingSince.In(now.Location()).Format("15:04:05"))
	}
	if w.Error != "" {
		s += "; not read: " + w.Error
	}
	return s
}

// AddWindows sets the Window of each pgbackrest target that ws has, and
// marks the report unhealthy when archiving of one is stuck (Window.Stuck).
func (r *Report) AddWindows(ws map[string]Window) {
	for i := range r.Targets {
		w, ok := ws[r.Targets[i].Name]
		if !ok {
			continue
		}
		r.Targets[i].Window = &w
		if w.Stuck() {
			r.Healthy = false
		}
	}
}
