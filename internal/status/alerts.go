package status

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"homelab/internal/catalog"
)

const (
	// ResolvedWindow is how far back the resolved alerts go.
	ResolvedWindow = 24 * time.Hour
	// EventAlertResolved is the kind of the catalog event the daemon
	// records when an alert it saw firing is no longer firing: Target is
	// the alert's name, Message "severity: summary" (ResolvedMessage).
	EventAlertResolved = "alert_resolved"
)

// Alert is an alert of the lab's Alertmanager.
type Alert struct {
	// Fingerprint is Alertmanager's identity of the alert (its labels).
	Fingerprint string
	Name        string // the alertname label
	Severity    string // the severity label, "" when none
	Summary     string // the summary (or description) annotation
	// Since is when it started firing; Resolved when the daemon saw it
	// stop (zero while firing).
	Since, Resolved time.Time
	// SilencedBy are the silences that mute it and InhibitedBy the names
	// of the alerts that inhibit it (or their fingerprints, those not
	// active): set on AlertsStatus.Silenced alerts only.
	SilencedBy  []Silence
	InhibitedBy []string
}

// Silence is an Alertmanager silence that mutes an alert. Only ID is
// sure: the rest is empty when the silences were not read.
type Silence struct {
	ID, CreatedBy, Comment string
	EndsAt                 time.Time
}

// Why says what suppresses a, its times relative to now: "silenced by
// alice, ends in 55m: disk swap; inhibited by NodeDown".
func (a Alert) Why(now time.Time) string {
	var parts []string
	for _, s := range a.SilencedBy {
		w := "silenced"
		if s.CreatedBy != "" {
			w += " by " + s.CreatedBy
		}
		if s.EndsAt.IsZero() {
			w += " (silence " + s.ID + ")"
		} else {
			w += ", ends " + Ago(s.EndsAt, now)
		}
		if s.Comment != "" {
			w += ": " + oneLine(s.Comment)
		}
		parts = append(parts, w)
	}
	if len(a.InhibitedBy) > 0 {
		parts = append(parts, "inhibited by "+strings.Join(a.InhibitedBy, ", "))
	}
	if len(parts) == 0 {
		return "suppressed"
	}
	return strings.Join(parts, "; ")
}

// AlertsStatus is what the lab's Alertmanager says.
type AlertsStatus struct {
	// URL is the Alertmanager's base URL.
	URL string
	// Firing are the alerts active now, by severity name order as
	// Alertmanager gives them.
	Firing []Alert
	// Silenced are the alerts active but silenced or inhibited (so
	// Alertmanager notifies no one of them), in the same order: not
	// resolved.
	Silenced []Alert
	// Resolved are those the daemon saw resolved within ResolvedWindow,
	// newest first (EventAlertResolved events).
	Resolved []Alert
	// Error says why the Alertmanager did not answer: a warning line,
	// not a failure of status.
	Error string
}

// ResolvedMessage is the catalog event message that records a's
// resolution.
func ResolvedMessage(a Alert) string { return a.Severity + ": " + a.Summary }

// ResolvedFrom returns the alerts resolved within ResolvedWindow before
// now, from events (newest first): those of kind EventAlertResolved.
func ResolvedFrom(events []catalog.Event, now time.Time) []Alert {
	var out []Alert
	for _, e := range events {
		if e.Kind != EventAlertResolved || e.Time.Before(now.Add(-ResolvedWindow)) || e.Time.After(now) {
			continue
		}
		sev, sum, _ := strings.Cut(e.Message, ": ")
		out = append(out, Alert{Name: e.Target, Severity: sev, Summary: sum, Resolved: e.Time})
	}
	return out
}

// AddAlerts records a on r (nil: the lab names no Alertmanager). Alerts
// never change Healthy: they are Alertmanager's verdict, shown beside
// homelab's own, and an Alertmanager that does not answer is a warning.
func (r *Report) AddAlerts(a *AlertsStatus) { r.Alerts = a }

// writeAlerts writes the ALERTS section of RenderText; what the
// Alertmanager says is written printable.
func writeAlerts(b *strings.Builder, a *AlertsStatus, now time.Time) {
	if a.Error != "" {
		fmt.Fprintf(b, "WARNING: alertmanager %s did not answer: %s\n", a.URL, oneLine(printable(a.Error)))
	}
	if len(a.Firing) == 0 && a.Error == "" {
		b.WriteString("none firing\n")
	}
	if len(a.Firing) > 0 {
		tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "FIRING\tSEVERITY\tSINCE\tSUMMARY")
		for _, x := range a.Firing {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(x.Name), strings.ToUpper(dash(printable(x.Severity))), Ago(x.Since, now), truncate(dash(printable(x.Summary)), 50))
		}
		tw.Flush()
	}
	if len(a.Silenced) > 0 {
		tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SILENCED\tSEVERITY\tSINCE\tWHY")
		for _, x := range a.Silenced {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(x.Name), dash(printable(x.Severity)), Ago(x.Since, now), truncate(printable(x.Why(now)), 60))
		}
		tw.Flush()
	}
	if len(a.Resolved) > 0 {
		tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOLVED (24 H)\tSEVERITY\tRESOLVED\tSUMMARY")
		for _, x := range a.Resolved {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(x.Name), dash(printable(x.Severity)), Ago(x.Resolved, now), truncate(dash(printable(x.Summary)), 50))
		}
		tw.Flush()
	}
}

// jsonAlerts is the "alerts" object of RenderJSON.
type jsonAlerts struct {
	URL      string      `json:"url"`
	Error    string      `json:"error,omitempty"` // the Alertmanager did not answer
	Firing   []jsonAlert `json:"firing"`
	Silenced []jsonAlert `json:"silenced"` // active, but silenced or inhibited
	Resolved []jsonAlert `json:"resolved"`
}

type jsonAlert struct {
	Name        string        `json:"name"`
	Severity    string        `json:"severity"`
	Summary     string        `json:"summary"`
	Since       *string       `json:"since,omitempty"`
	Resolved    *string       `json:"resolved,omitempty"`
	SilencedBy  []jsonSilence `json:"silenced_by,omitempty"`
	InhibitedBy []string      `json:"inhibited_by,omitempty"`
}

type jsonSilence struct {
	ID        string  `json:"id"`
	CreatedBy string  `json:"created_by,omitempty"`
	Comment   string  `json:"comment,omitempty"`
	EndsAt    *string `json:"ends_at,omitempty"`
}

func jsonAlertsOf(a *AlertsStatus) *jsonAlerts {
	if a == nil {
		return nil
	}
	j := &jsonAlerts{URL: a.URL, Error: a.Error, Firing: []jsonAlert{}, Silenced: []jsonAlert{}, Resolved: []jsonAlert{}}
	for _, x := range a.Firing {
		j.Firing = append(j.Firing, jsonAlert{Name: x.Name, Severity: x.Severity, Summary: x.Summary, Since: optTime(x.Since)})
	}
	for _, x := range a.Silenced {
		ja := jsonAlert{Name: x.Name, Severity: x.Severity, Summary: x.Summary, Since: optTime(x.Since), InhibitedBy: x.InhibitedBy}
		for _, s := range x.SilencedBy {
			ja.SilencedBy = append(ja.SilencedBy, jsonSilence{ID: s.ID, CreatedBy: s.CreatedBy, Comment: s.Comment, EndsAt: optTime(s.EndsAt)})
		}
		j.Silenced = append(j.Silenced, ja)
	}
	for _, x := range a.Resolved {
		j.Resolved = append(j.Resolved, jsonAlert{Name: x.Name, Severity: x.Severity, Summary: x.Summary, Resolved: optTime(x.Resolved)})
	}
	return j
}
