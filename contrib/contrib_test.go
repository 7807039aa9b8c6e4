// Package contrib_test checks the files under contrib/ against homelab:
// the Prometheus rules with promtool, the Grafana dashboard's shape, and
// that both name only metrics homelab exports (server.MetricNames).
package contrib_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"homelab/internal/server"
	"homelab/internal/testenv"
)

var metricName = regexp.MustCompile(`\bhomelab_[a-z0-9_]+\b`)

// checkNames fails for every homelab_ name in text that homelab does not
// export, and returns the names found.
func checkNames(t *testing.T, file, text string) []string {
	t.Helper()
	known := server.MetricNames()
	var found []string
	for _, n := range metricName.FindAllString(text, -1) {
		if !slices.Contains(known, n) {
			t.Errorf("%s names %s, which homelab does not export (it exports %v)", file, n, known)
		}
		found = append(found, n)
	}
	slices.Sort(found)
	return slices.Compact(found)
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool not found in PATH (Debian package prometheus)")
	}
	return p
}

// TestPrometheusRules runs promtool check rules and promtool test rules
// on contrib/prometheus, and checks that a test expecting something else
// fails (so the harness can fail).
func TestPrometheusRules(t *testing.T) {
	bin := promtool(t)
	dir := "prometheus"
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(dir, "check", "rules", "homelab-rules.yml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := run(dir, "test", "rules", "homelab-rules.test.yml"); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	rules, err := os.ReadFile(filepath.Join(dir, "homelab-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	names := checkNames(t, "homelab-rules.yml", string(rules))
	for _, want := range []string{"homelab_target_overdue", "homelab_job_failures_total", "homelab_upgrade_unfinished",
		"homelab_cert_window_start_timestamp_seconds", "homelab_filesystem_filling"} {
		if !slices.Contains(names, want) {
			t.Errorf("the rules do not use %s", want)
		}
	}

	// The same tests, expecting the overdue alert's summary wrong.
	tmp := t.TempDir()
	tests, err := os.ReadFile(filepath.Join(dir, "homelab-rules.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(tests), `summary: "backup of db is overdue"`, `summary: "backup of db is fine"`, 1)
	if wrong == string(tests) {
		t.Fatal("the overdue summary is not in the tests")
	}
	os.WriteFile(filepath.Join(tmp, "homelab-rules.yml"), rules, 0o644)
	os.WriteFile(filepath.Join(tmp, "homelab-rules.test.yml"), []byte(wrong), 0o644)
	if out, err := run(tmp, "test", "rules", "homelab-rules.test.yml"); err == nil || !strings.Contains(out, "HomelabBackupOverdue") {
		t.Errorf("a wrong expectation passed: %v\n%s", err, out)
	}
}

// TestGrafanaDashboard: the dashboard parses, every panel queries the
// data source variable with an expression, and the expressions name only
// metrics homelab exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "homelab.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID, Title string
		Panels     []struct {
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("homelab.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 10 {
		t.Fatalf("uid %q, title %q, %d panels", d.UID, d.Title, len(d.Panels))
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.Expr == "" {
				t.Errorf("panel %q: an empty query", p.Title)
			}
			exprs = append(exprs, q.Expr)
		}
	}
	names := checkNames(t, "homelab.json", strings.Join(exprs, "\n"))
	// Every metric homelab exports has a panel.
	for _, n := range server.MetricNames() {
		if !slices.Contains(names, n) {
			t.Errorf("no panel shows %s", n)
		}
	}
}
