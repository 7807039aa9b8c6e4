package deploy

import (
	"context"
	"maps"
	"slices"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/status"
)

// StatusTimeout bounds the read of an idle color's state for the status
// report.
const StatusTimeout = 5 * time.Second

// Statuses returns the status lines of l's blue/green services, by name:
// the serving color (the catalog's, checked against HAProxy's
// configuration), the idle color's state and kept version, and the last
// record. nil when l has none.
func Statuses(ctx context.Context, l *lab.Lab, deploys catalog.Deploys) []status.DeployStatus {
	var out []status.DeployStatus
	for _, name := range slices.Sorted(maps.Keys(l.Services)) {
		dp := l.Services[name].Deploy
		if dp == nil {
			continue
		}
		ds := status.DeployStatus{Service: name}
		st, err := readState(ctx, l, deploys, name)
		if err != nil {
			ds.Error = err.Error()
			out = append(out, ds)
			continue
		}
		ds.Active, ds.Version = st.Active.Color, st.Active.Version
		ds.Idle = Other(st.Active.Color)
		if st.Kept.Color == ds.Idle {
			ds.IdleVersion = st.Kept.Version
		}
		ds.IdleState = "unknown"
		if rt, err := runtime.New(dp.Colors.Color(ds.Idle).Service(name, ds.Idle), runtime.Options{}); err == nil {
			sctx, cancel := context.WithTimeout(ctx, StatusTimeout)
			if rs, err := rt.Status(sctx); err == nil {
				ds.IdleState = string(rs.State)
			}
			cancel()
		}
		if h := st.Last; h.ID != 0 {
			ds.Last = &status.LastDeploy{Kind: string(h.Kind), Time: h.Time, Version: h.ToVersion, Who: h.Who, Reason: h.Reason}
		}
		out = append(out, ds)
	}
	return out
}
