package status

import (
	"homelab/internal/catalog"
	"homelab/internal/saga"
)

// Unfinished is a saga (an upgrade) that did not finish: its process is
// at work, died (killed, power lost), or its compensation failed and it
// needs attention. See package saga.
type Unfinished struct {
	ID      string            `json:"id"`
	Kind    string            `json:"kind"`
	Subject string            `json:"subject"`
	State   catalog.SagaState `json:"state"`
	// Describe is saga.Describe's one line.
	Describe string `json:"describe"`
	// Resume is the command that finishes it.
	Resume string `json:"resume"`
}

// AddUnfinished lists the unfinished sagas (saga.Unfinished) in r; any
// makes r unhealthy: a service may be half upgraded, or stopped after a
// failed rollback.
func (r *Report) AddUnfinished(recs []saga.Record) {
	r.Unfinished = nil
	for _, rec := range recs {
		r.Unfinished = append(r.Unfinished, Unfinished{
			ID: rec.ID, Kind: rec.Kind, Subject: rec.Subject, State: rec.State,
			Describe: saga.Describe(rec), Resume: "homelab " + rec.Kind + " --resume " + rec.ID,
		})
		r.Healthy = false
	}
}
