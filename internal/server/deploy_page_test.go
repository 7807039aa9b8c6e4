package server

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"homelab/internal/status"
)

// TestPageDeploys: the page shows each blue/green service's colors and
// its last deploy or rollback with the reason; a service whose state
// could not be read is marked.
func TestPageDeploys(t *testing.T) {
	rep := status.Report{Lab: "bg", Healthy: true}
	rep.AddDeploys([]status.DeployStatus{
		{Service: "web", Active: "blue", Version: "1.0.0", Idle: "green", IdleState: "running", IdleVersion: "1.0.5",
			Last: &status.LastDeploy{Kind: "rollback", Time: epoch.Add(-5 * time.Minute), Version: "1.0.0", Who: "alice", Reason: "v2 slow"}},
		{Service: "api", Error: "HAProxy's configuration serves \"blue\" but the catalog says green serves"},
	})
	if rep.Healthy {
		t.Error("a service whose state could not be read left the report healthy")
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, buildPage(rep, nil, epoch, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<strong>Needs attention</strong><span>no backup targets; 1 blue/green service unknown</span>`,
		`<h2 id="deploys">Blue/green</h2>`,
		"<td class=\"target\">web</td>\n  <td class=\"msg\">blue 1.0.0 serving; green 1.0.5 running (fast rollback ready)</td>\n  <td class=\"msg\">rollback to 1.0.0 by alice, 5m ago: v2 slow</td>",
		"<td class=\"target\">api</td>\n  <td class=\"msg fail-detail\">UNKNOWN: HAProxy&#39;s configuration serves &#34;blue&#34; but the catalog says green serves</td>\n  <td class=\"msg\">-</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	var txt bytes.Buffer
	if err := status.RenderText(&txt, rep, epoch); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "NEEDS ATTENTION: 1 blue/green service unknown\n") || !strings.Contains(txt.String(), "\nBLUE/GREEN\nSERVICE  COLORS") || !regexp.MustCompile(`\nweb +blue 1\.0\.0 serving; green 1\.0\.5 running \(fast rollback ready\) +rollback to 1\.0\.0 by alice, 5m ago: v2 slow\n`).MatchString(txt.String()) {
		t.Errorf("text report:\n%s", txt.String())
	}
}
