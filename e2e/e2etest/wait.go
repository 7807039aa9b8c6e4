package e2etest

import (
	"testing"
	"time"
)

// PollInterval is how often Poll and Eventually look again.
const PollInterval = 100 * time.Millisecond

// Poll calls cond every PollInterval until it returns true, and reports
// whether it did within limit. cond is called at least once, and once
// more after the deadline, so a slow cond never loses its last look.
func Poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(PollInterval)
	}
}

// Eventually waits until cond returns true, polling it; after limit it
// fails the test naming what it waited for, followed by dump(). Limits
// are generous (minutes, not seconds): they bound a hang, they do not
// time anything.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool, dump func() string) {
	t.Helper()
	if !Poll(limit, cond) {
		t.Fatalf("timed out after %s waiting for %s\n%s", limit, what, dump())
	}
}
