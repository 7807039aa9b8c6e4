// Package e2etest holds what the end-to-end tests under e2e/ share: the
// TestMain that makes the test binary act as `homelab` (testscript.Main
// with cli.Main, so that `homelab` in PATH, in scripts and in exec.Command
// alike, is this build), the custom testscript commands of their scripts
// (pg, expand, damage, bigfile, sagawait, healthy, hook), and waits that
// poll for an event with a generous limit instead of sleeping.
//
// The e2e/ tree holds one package per slow end-to-end test (e2e/serve,
// e2e/upgradescripts, e2e/upgradesystemd, ...), so that `go test ./...`
// runs them in separate processes beside the rest of the suite. They run
// the real homelab against the real tools (restic, PostgreSQL, Docker,
// systemd), found by internal/testenv. It is imported by tests only.
package e2etest
