package status

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/health"
	"homelab/internal/lab"
)

// servicesLab has a healthy, a failing and an unprobed service, probed for
// real by shell commands.
const servicesLab = `
name: devlab
services:
  web:
    runtime: {compose: {project: devlab, service: web}}
    health: {command: {run: "true"}}
  worker:
    runtime: {systemd: {unit: worker.service}}
    health: {command: {run: "echo 'queue stalled' >&2; exit 1", timeout: 2s}}
  docs:
    runtime: {exec: {start: "./docs start", stop: "./docs stop", status: "./docs status"}}
`

func TestAddServices(t *testing.T) {
	// The commands run in the lab file's directory.
	l, err := lab.Parse(filepath.Join(t.TempDir(), "lab.yaml"), []byte(servicesLab))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(t.Context(), l, openCatalog(t), epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Healthy || len(r.Services) != 0 {
		t.Fatalf("Build alone: healthy %v, %d services; want healthy and none", r.Healthy, len(r.Services))
	}
	r.AddServices(l, health.CheckAll(t.Context(), l.Services, health.Options{}))
	if r.Healthy {
		t.Error("healthy with a failing service")
	}
	if r.FailingServices() != 1 || r.CheckedServices() != 2 {
		t.Errorf("failing %d probed %d, want 1 2", r.FailingServices(), r.CheckedServices())
	}
	want := []ServiceStatus{
		{Name: "docs", Runtime: "exec"},
		{Name: "web", Runtime: "compose", Probe: lab.ProbeCommand, Healthy: true},
		{Name: "worker", Runtime: "systemd", Probe: lab.ProbeCommand, Detail: "queue stalled (exit status 1)"},
	}
	if len(r.Services) != len(want) {
		t.Fatalf("services %+v", r.Services)
	}
	for i, s := range r.Services {
		w := want[i]
		if s.Name != w.Name || s.Runtime != w.Runtime || s.Probe != w.Probe || s.Healthy != w.Healthy ||
			(w.Detail != "" && s.Detail != w.Detail) || (s.Probe != "") != (s.Duration > 0) {
			t.Errorf("service %d = %+v, want %+v", i, s, w)
		}
	}

	var b bytes.Buffer
	if err := RenderText(&b, r, epoch); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"NEEDS ATTENTION: 1 service failing",
		"docs     exec     -      -        -          -\n",
		"web      compose  -      command  ✓ ok       exit 0 in ",
		"worker   systemd  -      command  ✗ FAILING  queue stalled (exit status 1)\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, b.String())
		}
	}

	b.Reset()
	if err := RenderJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Healthy  bool
		Services []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Healthy || len(got.Services) != 3 {
		t.Fatalf("json: %s", b.String())
	}
	if s := got.Services[0]; s["probe"] != nil || s["healthy"] != nil || s["duration_seconds"] != nil {
		t.Errorf("unprobed service: %v, want null probe, healthy and duration", s)
	}
	if s := got.Services[2]; s["probe"] != "command" || s["healthy"] != false || s["detail"] != "queue stalled (exit status 1)" {
		t.Errorf("worker: %v", s)
	}
}

func TestAddServicesVerdict(t *testing.T) {
	l, err := lab.Parse("/srv/lab/lab.yaml", []byte(servicesLab))
	if err != nil {
		t.Fatal(err)
	}
	ok := []health.Result{{Service: "web", Kind: "command", Healthy: true}, {Service: "worker", Kind: "command", Healthy: true}}
	tests := []struct {
		name    string
		results []health.Result
		healthy bool
		verdict string
	}{
		{"all ok", ok, true, "healthy: no backup targets, all 2 services"},
		{"one ok", ok[:1], false, "NEEDS ATTENTION: 1 service failing"}, // worker has no result: not probed
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Lab: "devlab", Generated: epoch, Healthy: true}
			r.AddServices(l, tt.results)
			if r.Healthy != tt.healthy || verdict(r) != tt.verdict {
				t.Errorf("healthy %v verdict %q, want %v %q", r.Healthy, verdict(r), tt.healthy, tt.verdict)
			}
		})
	}
	// A failing service does not hide the targets' problems, nor the
	// other way round.
	r := Report{Lab: "devlab", Generated: epoch, Overdue: 1, Targets: []TargetStatus{{Name: "db", Overdue: true}}}
	r.AddServices(l, ok[:1])
	if want := "NEEDS ATTENTION: 1 overdue, 1 service failing"; verdict(r) != want {
		t.Errorf("verdict %q, want %q", verdict(r), want)
	}
	single := &lab.Lab{Services: map[string]*lab.Service{"web": l.Services["web"]}}
	r = Report{Healthy: true, Targets: []TargetStatus{{Name: "db"}}}
	r.AddServices(single, ok[:1])
	if want := "healthy: 1 target, 1 service"; verdict(r) != want {
		t.Errorf("verdict %q, want %q", verdict(r), want)
	}
}
