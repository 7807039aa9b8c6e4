package app

import (
	"context"

	"homelab/internal/catalog"
	"homelab/internal/saga"
)

// OpenSaga is an unfinished saga (running, compensating or needing
// attention) and whether a process works on it now.
type OpenSaga struct {
	saga.Record
	// InProgress is true while a homelab process works on it (it holds
	// the subject's lock); Holder describes that process. One that no
	// process works on was interrupted (killed, power lost) or failed its
	// rollback, and waits for `homelab <kind> --resume <id>`.
	InProgress bool
	Holder     string
}

// UnfinishedIn returns the unfinished sagas of the journal j
// (saga.Unfinished), newest first, each checked for a live process with
// saga.InProgress against the lab's state directory.
func (a *App) UnfinishedIn(ctx context.Context, j catalog.Journal) ([]OpenSaga, error) {
	recs, err := saga.Unfinished(ctx, j)
	if err != nil {
		return nil, err
	}
	out := make([]OpenSaga, len(recs))
	for i, r := range recs {
		out[i].Record = r
		out[i].InProgress, out[i].Holder = saga.InProgress(a.Lab.StateDir, r)
	}
	return out, nil
}
