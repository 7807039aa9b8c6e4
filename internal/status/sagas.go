package status

import (
	"fmt"
	"strings"

	"homelab/internal/catalog"
	"homelab/internal/saga"
)

// Unfinished is a saga (an upgrade, a deploy, a lab snapshot create or
// restore) that did not finish: its process is
// at work (InProgress), or it died (killed, power lost), or its
// compensation failed and it needs attention. See package saga.
type Unfinished struct {
	ID      string            `json:"id"`
	Kind    string            `json:"kind"`
	Subject string            `json:"subject"`
	State   catalog.SagaState `json:"state"`
	// Describe is saga.Describe's one line.
	Describe string `json:"describe"`
	// InProgress is true while a homelab process works on it (it holds
	// the subject's lock); Holder describes that process.
	InProgress bool   `json:"in_progress"`
	Holder     string `json:"holder,omitempty"`
	// Resume is the command that finishes it; empty while in progress.
	Resume string `json:"resume,omitempty"`
}

// AddUnfinished lists the unfinished sagas (saga.Unfinished) in r, each
// checked for a live process with saga.InProgress against the lab's
// stateDir. One that no process works on makes r unhealthy: a service
// may be half upgraded, or stopped after a failed rollback. One in
// progress is shown but is no problem of its own.
func (r *Report) AddUnfinished(recs []saga.Record, stateDir string) {
	r.Unfinished = nil
	for _, rec := range recs {
		u := Unfinished{ID: rec.ID, Kind: rec.Kind, Subject: rec.Subject, State: rec.State, Describe: saga.Describe(rec)}
		u.InProgress, u.Holder = saga.InProgress(stateDir, rec)
		if !u.InProgress {
			u.Resume = "homelab " + rec.Kind + " --resume " + rec.ID
			r.Healthy = false
		}
		r.Unfinished = append(r.Unfinished, u)
	}
}

// Stalled counts the unfinished sagas no process works on.
func (r Report) Stalled() int {
	n := 0
	for _, u := range r.Unfinished {
		if !u.InProgress {
			n++
		}
	}
	return n
}

// StalledText says how many unfinished sagas no process works on, by
// kind in order of first appearance: "1 unfinished upgrade", "2
// unfinished upgrades, 1 unfinished snapshot restore"; empty when none.
func (r Report) StalledText() string {
	var kinds []string
	n := map[string]int{}
	for _, u := range r.Unfinished {
		if u.InProgress {
			continue
		}
		if n[u.Kind] == 0 {
			kinds = append(kinds, u.Kind)
		}
		n[u.Kind]++
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d unfinished %s%s", n[k], k, plural(n[k]))
	}
	return strings.Join(parts, ", ")
}
