package status

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// DeployStatus is a blue/green service on the status page: which color
// serves at which version, what the idle one does, and the last deploy,
// rollback or cleanup (with its reason: the incident record).
type DeployStatus struct {
	Service string `json:"service"`
	// Active serves at Version ("" before the first deploy).
	Active  string `json:"active"`
	Version string `json:"version"`
	// Idle is the other color, its state (running, stopped, unknown) and,
	// when the last deploy kept it for a fast rollback, its version.
	Idle        string `json:"idle"`
	IdleState   string `json:"idle_state"`
	IdleVersion string `json:"idle_version,omitempty"`
	// Last is the newest record; nil before the first.
	Last *LastDeploy `json:"last"`
	// Error is why the state could not be read (HAProxy's configuration
	// and the catalog disagree, say); it makes the report unhealthy.
	Error string `json:"error,omitempty"`
}

// LastDeploy is the newest deploy record of a service.
type LastDeploy struct {
	Kind    string    `json:"kind"`
	Time    time.Time `json:"time"`
	Version string    `json:"version"`
	Who     string    `json:"who"`
	Reason  string    `json:"reason,omitempty"`
}

// AddDeploys puts the blue/green services' states in r; one whose state
// could not be read makes r unhealthy.
func (r *Report) AddDeploys(ds []DeployStatus) {
	r.Deploys = ds
	for _, d := range ds {
		if d.Error != "" {
			r.Healthy = false
		}
	}
}

// DeploysUnknown counts the blue/green services whose state could not
// be read.
func (r Report) DeploysUnknown() int {
	n := 0
	for _, d := range r.Deploys {
		if d.Error != "" {
			n++
		}
	}
	return n
}

// DeployLine is a blue/green service's state in words: "blue 1.0.5
// serving; green 1.0.0 running (fast rollback ready)".
func DeployLine(d DeployStatus) string {
	if d.Error != "" {
		return "UNKNOWN: " + d.Error
	}
	serving := "nothing serving"
	if d.Active != "" {
		serving = d.Active + " " + d.Version + " serving"
	}
	idle := d.Idle + " " + d.IdleState
	if d.IdleVersion != "" {
		idle = d.Idle + " " + d.IdleVersion + " " + d.IdleState
		if d.IdleState == "running" {
			idle += " (fast rollback ready)"
		}
	}
	return serving + "; " + idle
}

// LastLine is the last deploy record in words: "rollback to 1.0.0 by
// alice, 5m ago: v2 slow"; "-" when none.
func LastLine(d DeployStatus, now time.Time) string {
	if d.Last == nil {
		return "-"
	}
	s := fmt.Sprintf("%s to %s by %s, %s", d.Last.Kind, d.Last.Version, dash(d.Last.Who), Ago(d.Last.Time, now))
	if d.Last.Reason != "" {
		s += ": " + d.Last.Reason
	}
	return s
}

// writeDeploys writes the DEPLOYS section of the text report.
func writeDeploys(b *strings.Builder, ds []DeployStatus, now time.Time) {
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCOLORS\tLAST")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Service, DeployLine(d), LastLine(d, now))
	}
	tw.Flush()
}
