package bluegreen

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"homelab/internal/deploy"
	"homelab/internal/deploy/deploytest"
	"homelab/internal/lab"
	"homelab/internal/runtime"
)

// TestVerbs: homelab deploy, rollback (with its reason), rollback
// --history, status and deploy --cleanup, as an operator runs them.
func TestVerbs(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{})
	run := func(args ...string) string {
		t.Helper()
		out, err := f.Homelab(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("homelab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("deploy", "web", "--to", deploytest.V2, "--yes")
	if !strings.Contains(out, "web: green serves 1.0.5") || !strings.Contains(out, "→ flip haproxy to green") {
		t.Errorf("deploy said:\n%s", out)
	}
	out = run("rollback", "web", "--reason", "p99 doubled", "--yes")
	if !strings.Contains(out, "web: blue serves 1.0.0") || !strings.Contains(out, "check blue alive") {
		t.Errorf("rollback said:\n%s", out)
	}
	if got, _ := f.Answer(http.DefaultClient); got != deploytest.V1 {
		t.Errorf("public URL answers %q after the rollback", got)
	}
	out = run("rollback", "web", "--history")
	for _, re := range []string{
		`(?m)^TIME +KIND +SERVING +KEPT +WHO +REASON$`,
		`(?m)^\S+ +rollback +blue 1\.0\.0 +green 1\.0\.5 +\S+@\S+ +p99 doubled$`,
		`(?m)^\S+ +deploy +green 1\.0\.5 +blue 1\.0\.0 +\S+@\S+ +-$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("history lacks %s:\n%s", re, out)
		}
	}
	sb, _ := f.Homelab("status").CombinedOutput() // its exit status is the lab's health, not this test's
	if !regexp.MustCompile(`(?m)^web +blue 1\.0\.0 serving; green 1\.0\.5 running \(fast rollback ready\) +rollback to 1\.0\.0 by \S+, .*: p99 doubled$`).Match(sb) {
		t.Errorf("status:\n%s", sb)
	}
	out = run("deploy", "--cleanup", "web", "--yes")
	if !strings.Contains(out, "web: green stopped; blue (1.0.0) serves") || f.State(t, lab.Green) != runtime.Stopped {
		t.Errorf("cleanup said:\n%s", out)
	}
	st, err := f.D.State(t.Context(), "web")
	if err != nil || st.Kept.Color != "" || st.Active != (deploy.Side{Color: lab.Blue, Version: deploytest.V1}) {
		t.Errorf("state after cleanup %+v, %v", st, err)
	}
	b, err := f.Homelab("rollback", "web", "--reason", "again", "--yes").CombinedOutput()
	if err == nil || !strings.Contains(string(b), "no previous color is kept") {
		t.Errorf("fast rollback after a cleanup: %v\n%s", err, b)
	}
}
