package deploy_test

import (
	"testing"

	"homelab/internal/deploy"
	"homelab/internal/deploy/deploytest"
)

// BenchmarkFastRollback times `homelab rollback`'s fast path end to end
// against a real HAProxy and testapp processes: plan (the catalog, the
// live configuration, the kept color's state and probe), check alive,
// flip (render, haproxy -c, atomic swap, master-socket reload), the public
// URL answering from the kept version, and the record. Each iteration
// rolls back to the color the previous one left (the goal: under
// 5 s).
func BenchmarkFastRollback(b *testing.B) {
	f := deploytest.New(b, deploytest.Options{})
	if _, err := f.Deploy(b, deploytest.V2, deploy.Options{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p, err := f.D.PlanRollback(b.Context(), "web", deploy.RollbackOptions{Reason: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.D.Run(b.Context(), p); err != nil {
			b.Fatal(err)
		}
	}
}
