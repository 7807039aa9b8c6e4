package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"homelab/internal/catalog"
	"homelab/internal/runtime"
)

const (
	// lineWidth is the terminal width RenderText aims for.
	lineWidth = 80
	// minMessage is the least of a failure's message RenderText shows,
	// in runes, however long the rest of its line.
	minMessage = 50
	// minDetail is the least of a service's health detail RenderText
	// shows, in runes.
	minDetail = 50
	// minIssue is the least of a certificate's issue RenderText shows in
	// its STATE column, in runes; minSubject the least of its subject.
	minIssue   = 30
	minSubject = 12
	// dateLayout is how RenderText shows a certificate's expiry (in UTC).
	dateLayout = "2006-01-02"
)

// RenderText writes r for a terminal: a title, a one-line verdict, a table
// of the services and their health, a table of the backup targets, a table
// of the TLS certificates (left out when the lab has none) and the recent
// failures. Ages are relative to now and times are shown in now's time
// zone, except certificates' expiry dates, which are days in UTC (as `cert
// status` says them). No colour: problems are in capitals (FAILING,
// OVERDUE, ROTATE, EXPIRED, MISSING); a certificate with another issue
// shows the issue in words. The certificate rows fit in 80 columns.
func RenderText(w io.Writer, r Report, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s — %s\n", r.Lab, now.Format("2006-01-02 15:04 MST"))
	b.WriteString(verdict(r) + "\n")

	b.WriteString("\nSERVICES\n")
	if len(r.Services) == 0 {
		b.WriteString("no services\n")
	} else {
		// The detail gets what is left of 80 columns, and at least
		// minDetail runes.
		nameW, runtimeW, stateW, probeW := len("SERVICE"), len("RUNTIME"), len("STATE"), len("PROBE")
		for _, s := range r.Services {
			nameW = max(nameW, utf8.RuneCountInString(s.Name))
			runtimeW = max(runtimeW, utf8.RuneCountInString(dash(s.Runtime)))
			stateW = max(stateW, utf8.RuneCountInString(StateText(s, now)))
			probeW = max(probeW, utf8.RuneCountInString(dash(s.Probe)))
		}
		detailW := max(minDetail, lineWidth-nameW-runtimeW-stateW-probeW-len("✗ FAILING")-5*2)
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tRUNTIME\tSTATE\tPROBE\tHEALTH\tDETAIL")
		for _, s := range r.Services {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, dash(s.Runtime), StateText(s, now), dash(s.Probe), healthText(s), clipEnd(dash(ServiceDetail(s)), detailW))
		}
		tw.Flush()
	}

	b.WriteString("\nBACKUPS\n")
	if len(r.Targets) == 0 {
		b.WriteString("no backup targets\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TARGET\tPROVIDER\tLAST BACKUP\tSIZE\tRESULT\tLAST DRILL\tRTO\tSTATE")
		for _, t := range r.Targets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				t.Name, dash(t.Provider), lastBackup(t.LastRun, now), size(t.LastRun),
				result(t.LastRun), lastDrill(t.LastDrill, now), rto(t.LastDrill), stateText(t, now))
		}
		tw.Flush()
		for _, t := range r.Targets {
			if t.Window != nil {
				fmt.Fprintf(&b, "%s: recoverable window %s\n", t.Name, WindowText(*t.Window, now))
			}
		}
	}

	if len(r.Certs) > 0 {
		b.WriteString("\nTLS\n")
		writeCerts(&b, r.Certs)
	}

	if r.Host != nil {
		b.WriteString("\nHOST\n")
		writeHost(&b, r.Host, now)
	}

	if len(r.Deploys) > 0 {
		b.WriteString("\nBLUE/GREEN\n")
		writeDeploys(&b, r.Deploys, now)
	}

	if len(r.Unfinished) > 0 {
		b.WriteString("\nUNFINISHED CHANGES\n")
		for _, u := range r.Unfinished {
			if u.InProgress {
				fmt.Fprintf(&b, "%s\n  in progress: %s\n", u.Describe, dash(u.Holder))
				continue
			}
			fmt.Fprintf(&b, "UNFINISHED: %s\n  finish it with: %s\n", u.Describe, u.Resume)
		}
	}

	if len(r.KeptClusters) > 0 {
		b.WriteString("\nOLD POSTGRESQL CLUSTERS\n")
		for _, k := range r.KeptClusters {
			fmt.Fprintf(&b, "%s: PostgreSQL %s cluster %s kept after the upgrade to %s\n  delete it with: %s\n", k.Service, k.Major, k.Data, k.Running, k.Finalize)
		}
	}

	if len(r.LabSnapshots) > 0 {
		b.WriteString("\nLAB SNAPSHOTS\n")
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED\tSTATE\tMEMBERS\tNOTE")
		for _, ls := range r.LabSnapshots {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", ls.Name, Ago(ls.Created, now), ls.State, len(ls.Members), truncate(dash(ls.Note), 48))
		}
		tw.Flush()
	}

	if r.Alerts != nil {
		b.WriteString("\nALERTS\n")
		writeAlerts(&b, r.Alerts, now)
	}

	b.WriteString("\nRECENT FAILURES\n")
	if len(r.Failures) == 0 {
		b.WriteString("none\n")
	} else {
		// The message gets what is left of 80 columns, and at least
		// minMessage runes.
		var targetW, kindW int
		for _, e := range r.Failures {
			targetW = max(targetW, utf8.RuneCountInString(dash(e.Target)))
			kindW = max(kindW, utf8.RuneCountInString(e.Kind))
		}
		msgW := max(minMessage, lineWidth-len("2006-01-02 15:04  ")-targetW-2-kindW-2)
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		for _, e := range r.Failures {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Time.In(now.Location()).Format("2006-01-02 15:04"),
				dash(e.Target), e.Kind, truncate(printable(e.Message), msgW))
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCerts writes the TLS table: one row per certificate with its
// name, subject, expiry date, days left and mark. The subject and an
// issue share what is left of 80 columns: the subject gets its width when
// that leaves the issue at least minIssue runes, and never less than
// minSubject; the issue gets the rest. Only names too long to leave
// minSubject and a mark make a row wider.
func writeCerts(b *strings.Builder, cs []CertStatus) {
	nameW, subjectW, markW, issueW := len("CERT"), len("SUBJECT"), len("STATE"), 0
	for _, c := range cs {
		nameW = max(nameW, utf8.RuneCountInString(c.Name))
		subjectW = max(subjectW, utf8.RuneCountInString(oneLine(dash(c.Subject))))
		if c.State == CertProblem {
			issueW = max(issueW, utf8.RuneCountInString(oneLine(c.Mark())))
		} else {
			markW = max(markW, utf8.RuneCountInString(c.Mark()))
		}
	}
	// Left for the subject and the state (the four gaps taken out).
	left := lineWidth - nameW - len(dateLayout) - len("DAYS LEFT") - 4*2
	want := markW
	if issueW > 0 {
		want = max(want, min(issueW, minIssue))
	}
	subjectW = max(minSubject, min(subjectW, left-want))
	stateW := max(markW, left-subjectW)

	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CERT\tSUBJECT\tEXPIRES\tDAYS LEFT\tSTATE")
	for _, c := range cs {
		expires, days := "-", "-"
		if c.Read() {
			expires, days = c.NotAfter.UTC().Format(dateLayout), fmt.Sprint(c.DaysLeft)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, clipEnd(dash(c.Subject), subjectW), expires, days, clipEnd(c.Mark(), stateW))
	}
	tw.Flush()
}

// healthText is the HEALTH cell of a service.
func healthText(s ServiceStatus) string {
	switch {
	case s.Probe == "" && s.State == "":
		return "-"
	case !s.Failing():
		return "✓ ok"
	}
	return "✗ FAILING"
}

// StateText is a service's runtime state for the SERVICES table: "up"
// and the uptime for a running service, the state in capitals otherwise,
// "-" without a runtime.
func StateText(s ServiceStatus, now time.Time) string {
	switch {
	case s.State == "":
		return "-"
	case s.State == string(runtime.Running):
		if up := s.Uptime(now); up > 0 {
			return "up " + Age(up)
		}
		return "up"
	}
	return strings.ToUpper(s.State)
}

// ServiceDetail is the probe's detail, after why the state is unknown.
func ServiceDetail(s ServiceStatus) string {
	switch {
	case s.StateError == "":
		return s.Detail
	case s.Detail == "":
		return "state: " + s.StateError
	}
	return "state: " + s.StateError + "; " + s.Detail
}

// verdict is the one-line summary under the title.
func verdict(r Report) string {
	if r.Healthy {
		var v string
		switch n := len(r.Targets); n {
		case 0:
			v = "healthy: no backup targets"
		case 1:
			v = "healthy: 1 target"
		default:
			v = fmt.Sprintf("healthy: all %d targets", n)
		}
		switch n := r.CheckedServices(); n {
		case 0:
		case 1:
			v += ", 1 service"
		default:
			v += fmt.Sprintf(", all %d services", n)
		}
		switch n := len(r.Certs); n {
		case 0:
		case 1:
			v += ", 1 cert"
		default:
			v += fmt.Sprintf(", all %d certs", n)
		}
		return v
	}
	parts := r.TargetProblems()
	if n := r.FailingServices(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d service%s failing", n, plural(n)))
	}
	parts = append(parts, r.CertProblems()...)
	if t := r.StalledText(); t != "" {
		parts = append(parts, t)
	}
	if t := r.FillingText(); t != "" {
		parts = append(parts, t)
	}
	if n := r.DeploysUnknown(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d blue/green service%s unknown", n, plural(n)))
	}
	return "NEEDS ATTENTION: " + strings.Join(parts, ", ")
}

// TargetProblems lists the targets' problems as counted phrases, in a
// fixed order: "2 overdue", "1 failing" (last backup run failed), "1 drill
// failed". Empty when no target has a problem.
func (r Report) TargetProblems() []string {
	var failing, drills, stuck int
	for _, t := range r.Targets {
		if t.Failed() {
			failing++
		}
		if t.DrillFailed() {
			drills++
		}
		if t.Window != nil && t.Window.Stuck() {
			stuck++
		}
	}
	var parts []string
	if r.Overdue > 0 {
		parts = append(parts, fmt.Sprintf("%d overdue", r.Overdue))
	}
	if failing > 0 {
		parts = append(parts, fmt.Sprintf("%d failing", failing))
	}
	if drills > 0 {
		parts = append(parts, fmt.Sprintf("%d drill%s failed", drills, plural(drills)))
	}
	if stuck > 0 {
		parts = append(parts, fmt.Sprintf("%d archiving stuck", stuck))
	}
	return parts
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lastBackup(r *catalog.Run, now time.Time) string {
	if r == nil {
		return "never"
	}
	return Ago(finished(*r), now)
}

func size(r *catalog.Run) string {
	if r == nil || r.Result == catalog.ResultRunning ||
		(r.Bytes == 0 && r.Result != catalog.ResultOK && r.Result != catalog.ResultPartial) {
		return "-"
	}
	return IEC(r.Bytes)
}

func result(r *catalog.Run) string {
	if r == nil {
		return "-"
	}
	return resultText(r.Result)
}

// resultText shouts failures, so they stand out without colour.
func resultText(res catalog.Result) string {
	if res == catalog.ResultFailed {
		return "FAILED"
	}
	return string(res)
}

func lastDrill(d *catalog.Drill, now time.Time) string {
	if d == nil {
		return "never"
	}
	at := d.End
	if at.IsZero() {
		at = d.Start
	}
	return Ago(at, now) + " " + resultText(d.Result)
}

func rto(d *catalog.Drill) string {
	if d == nil || d.RTO <= 0 {
		return "-"
	}
	return ShortDuration(d.RTO)
}

// stateText is the STATE cell: quiet when all is well, in capitals with
// the detail that matters when not.
func stateText(t TargetStatus, now time.Time) string {
	switch t.State {
	case StateOverdue, StateFailing:
		// For failing: how long until the failures make it overdue,
		// what matters most.
		if due := t.ProblemDue(); due != nil {
			return t.StateWord() + " (due " + Ago(*due, now) + ")"
		}
		return t.StateWord()
	case StateNever:
		return t.StateWord()
	}
	return t.State
}

// Ago is t relative to now: "12m ago", "2d 3h ago", "just now", or "in 5m"
// for a time in the future.
func Ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + Age(-d)
	case d < time.Minute:
		return "just now"
	}
	return Age(d) + " ago"
}

// Age is a coarse duration in the two largest units: "45s", "12m",
// "3h 5m", "2d 3h". It truncates, never rounds up.
func Age(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < day:
		return twoUnits(int(d/time.Hour), "h", int(d%time.Hour/time.Minute), "m")
	}
	return twoUnits(int(d/day), "d", int(d%day/time.Hour), "h")
}

func twoUnits(a int, ua string, b int, ub string) string {
	if b == 0 {
		return fmt.Sprintf("%d%s", a, ua)
	}
	return fmt.Sprintf("%d%s %d%s", a, ua, b, ub)
}

// ShortDuration is a measured time: "850ms", "4.2s", "1m12s", "2h5m".
func ShortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// Seconds renders a run's duration: "-" for none, "12.3s" under a minute,
// else whole seconds ("2m5s").
func Seconds(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// IEC formats a byte count with binary prefixes: "512 B", "95.1 MiB",
// "310 MiB" (one decimal below 100 of a unit).
func IEC(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 99.95 {
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.0f %s", v, units[i])
}

// truncate puts s on one line and, when it has more than n runes, cuts
// out its middle: the start says which tool failed, the end usually says
// why ("pg_dump ...: password authentication failed").
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	const ellipsis = " ..."
	head := string(rs[:n/3])
	if i := strings.IndexByte(head, ' '); i > 0 {
		head = head[:i] // the first word: usually the command that failed
	}
	k := len(rs) - (n - utf8.RuneCountInString(head) - len(ellipsis)) // where the end starts
	// Start the end at a space, so it shows whole words, when one comes
	// soon enough.
	for j := k; j < k+(len(rs)-k)/2; j++ {
		if rs[j] == ' ' {
			k = j
			break
		}
	}
	return head + ellipsis + string(rs[k:])
}

// clipEnd puts s on one line and, when it has more than n runes, cuts its
// end: a probe's detail says what matters first ("HTTP 503 ...", the
// command's own words), and so do a certificate's subject (its CN) and
// issue.
func clipEnd(s string, n int) string {
	s = oneLine(s)
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return strings.TrimRight(string(rs[:n-len(" ...")]), " ") + " ..."
}

// oneLine puts s on one line, its runs of white space made single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// printable is s, text from elsewhere (an Alertmanager's alerts and
// silences, its error replies), made safe to write to a terminal: its
// whitespace control characters (tab, newline, ...) become spaces, which
// keep the columns, and every other control character (the ESC of an
// escape sequence, BEL, C1 controls) becomes U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f':
			return ' '
		case unicode.IsControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// RenderJSON writes r as one JSON object on one line, with
// "message_type":"status". Times are RFC 3339 in UTC, durations and ages
// are seconds (ages relative to r.Generated), and every field is present
// (null when unknown). "certs" is null when the lab uses no certificates
// (or AddCerts was not called), else a list, the CA first: each with its
// state (CertOK, CertRotate, ...), subject, not_after, window_start and
// days_left (null when the certificate was not read), in_window, expired
// and issues (a list, empty when none).
func RenderJSON(w io.Writer, r Report) error {
	out := jsonReport{
		MessageType: "status",
		Lab:         r.Lab,
		Generated:   rfc3339(r.Generated),
		Healthy:     r.Healthy,
		Overdue:     r.Overdue,
		Services:    []jsonService{},
		Targets:     []jsonTarget{},
		Failures:    []jsonEvent{},
	}
	for _, s := range r.Services {
		js := jsonService{Name: s.Name, Runtime: s.Runtime, Detail: s.Detail}
		if s.Probe != "" {
			probe, healthy, secs := s.Probe, s.Healthy, s.Duration.Seconds()
			js.Probe, js.Healthy, js.DurationSeconds = &probe, &healthy, &secs
		}
		if s.State != "" {
			state := s.State
			js.State, js.StateError = &state, s.StateError
			if up := s.Uptime(r.Generated); up > 0 {
				secs := up.Round(time.Second).Seconds()
				js.Since, js.UptimeSeconds = optTime(s.Since), &secs
			}
		}
		js.Failing = s.Failing()
		out.Services = append(out.Services, js)
	}
	for _, t := range r.Targets {
		jt := jsonTarget{
			Name: t.Name, Provider: t.Provider, Repository: t.Repository, Schedule: t.Schedule,
			State: t.State, Overdue: t.Overdue,
			LastRun:   jsonRunOf(t.LastRun, r.Generated),
			LastGood:  jsonRunOf(t.LastGood, r.Generated),
			LastDrill: jsonDrillOf(t.LastDrill, r.Generated),
		}
		if t.DueBy != nil {
			jt.DueBy = optTime(*t.DueBy)
		}
		if w := t.Window; w != nil {
			jt.Window = &jsonWindow{Window: *w, Stuck: w.Stuck(), LagSeconds: w.Lag(r.Generated).Seconds()}
		}
		jt.Problems = t.TypeProblems()
		for _, ty := range t.Types {
			js := jsonType{Type: ty.Type, Schedule: ty.Schedule, State: ty.State, Overdue: ty.Overdue,
				LastGood: jsonRunOf(ty.LastGood, r.Generated), Failed: jsonRunOf(ty.Failed, r.Generated)}
			if ty.DueBy != nil {
				js.DueBy = optTime(*ty.DueBy)
			}
			jt.Types = append(jt.Types, js)
		}
		out.Targets = append(out.Targets, jt)
	}
	for _, c := range r.Certs {
		jc := jsonCert{
			Name: c.Name, Kind: c.Kind, State: c.State, Subject: c.Subject,
			InWindow: c.InWindow, Expired: c.Expired, Issues: c.Issues,
		}
		if c.Read() {
			days := c.DaysLeft
			jc.NotAfter, jc.WindowStart, jc.DaysLeft = optTime(c.NotAfter), optTime(c.WindowStart), &days
		}
		if jc.Issues == nil {
			jc.Issues = []string{}
		}
		out.Certs = append(out.Certs, jc)
	}
	for _, e := range r.Failures {
		out.Failures = append(out.Failures, jsonEvent{
			ID: e.ID, Time: rfc3339(e.Time), Level: e.Level, Target: e.Target, Kind: e.Kind, Message: e.Message,
		})
	}
	out.Host = jsonHostOf(r.Host)
	out.Alerts = jsonAlertsOf(r.Alerts)
	out.Unfinished = r.Unfinished
	out.Deploys = r.Deploys
	out.KeptClusters = r.KeptClusters
	for _, ls := range r.LabSnapshots {
		out.LabSnapshots = append(out.LabSnapshots, jsonLabSnapshot{Name: ls.Name, Created: rfc3339(ls.Created),
			State: string(ls.State), Members: len(ls.Members), Note: ls.Note})
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("render status: %w", err)
	}
	return nil
}

type jsonReport struct {
	MessageType string        `json:"message_type"`
	Lab         string        `json:"lab"`
	Generated   string        `json:"generated"`
	Healthy     bool          `json:"healthy"`
	Overdue     int           `json:"overdue"`
	Services    []jsonService `json:"services"`
	Targets     []jsonTarget  `json:"targets"`
	Certs       []jsonCert    `json:"certs"` // null: no certificates
	Failures    []jsonEvent   `json:"failures"`
	// Host is the host homelab runs on; left out until AddHost.
	Host *jsonHost `json:"host,omitempty"`
	// Alerts are the Alertmanager's; left out when the lab names none.
	Alerts *jsonAlerts `json:"alerts,omitempty"`
	// Unfinished are the unfinished sagas (upgrades, deploys, lab
	// snapshot creates and restores); left out when none.
	Unfinished []Unfinished `json:"unfinished,omitempty"`
	// Deploys are the blue/green services; left out when none.
	Deploys []DeployStatus `json:"deploys,omitempty"`
	// LabSnapshots are the newest lab snapshots; left out when none.
	LabSnapshots []jsonLabSnapshot `json:"lab_snapshots,omitempty"`
	// KeptClusters are old PostgreSQL clusters awaiting --finalize; left
	// out when none.
	KeptClusters []KeptCluster `json:"kept_clusters,omitempty"`
}

// jsonLabSnapshot is one of the newest lab snapshots; members is their
// count (homelab snapshot show lists them).
type jsonLabSnapshot struct {
	Name    string `json:"name"`
	Created string `json:"created"`
	State   string `json:"state"`
	Members int    `json:"members"`
	Note    string `json:"note,omitempty"`
}

// jsonCert is the CA or a leaf; not_after, window_start and days_left are
// null when the certificate was not read (missing or unreadable).
type jsonCert struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	State       string   `json:"state"`
	Subject     string   `json:"subject"`
	NotAfter    *string  `json:"not_after"`
	WindowStart *string  `json:"window_start"`
	DaysLeft    *int     `json:"days_left"`
	InWindow    bool     `json:"in_window"`
	Expired     bool     `json:"expired"`
	Issues      []string `json:"issues"`
}

// jsonService is a service; probe, healthy and duration_seconds are null
// for a service without a health probe.
type jsonService struct {
	Name            string   `json:"name"`
	Runtime         string   `json:"runtime"`
	Probe           *string  `json:"probe"`
	Healthy         *bool    `json:"healthy"`
	Detail          string   `json:"detail"`
	DurationSeconds *float64 `json:"duration_seconds"`
	// State is the runtime's (running, stopped, restarting, unknown);
	// null without a runtime. Since and UptimeSeconds are null unless it
	// runs and its start is known.
	State         *string  `json:"state"`
	Since         *string  `json:"since"`
	UptimeSeconds *float64 `json:"uptime_seconds"`
	StateError    string   `json:"state_error,omitempty"`
	// Failing is true when the probe failed or the service is not running.
	Failing bool `json:"failing"`
}

type jsonTarget struct {
	Name       string     `json:"name"`
	Provider   string     `json:"provider"`
	Repository string     `json:"repository"`
	Schedule   string     `json:"schedule"`
	State      string     `json:"state"`
	Overdue    bool       `json:"overdue"`
	DueBy      *string    `json:"due_by"`
	LastRun    *jsonRun   `json:"last_run"`
	LastGood   *jsonRun   `json:"last_good"`
	LastDrill  *jsonDrill `json:"last_drill"`
	// Window is a pgbackrest target's recoverable window; left out for
	// other targets.
	Window *jsonWindow `json:"window,omitempty"`
	// Problems and Types: per-type schedules only (TypeStatus).
	Problems []string   `json:"problems,omitempty"`
	Types    []jsonType `json:"types,omitempty"`
}

// jsonWindow is a status.Window with its verdicts: stuck (Window.Stuck)
// and lag_seconds (Window.Lag at the report's time).
type jsonWindow struct {
	Window
	Stuck      bool    `json:"stuck"`
	LagSeconds float64 `json:"lag_seconds"`
}

type jsonType struct {
	Type     string   `json:"type"`
	Schedule string   `json:"schedule"`
	State    string   `json:"state"`
	Overdue  bool     `json:"overdue"`
	DueBy    *string  `json:"due_by"`
	LastGood *jsonRun `json:"last_good"`
	Failed   *jsonRun `json:"failed"`
}

type jsonRun struct {
	RunID           string   `json:"run_id"`
	SnapshotID      string   `json:"snapshot_id"`
	Start           string   `json:"start"`
	End             *string  `json:"end"`
	AgeSeconds      float64  `json:"age_seconds"`
	DurationSeconds *float64 `json:"duration_seconds"`
	Bytes           int64    `json:"bytes"`
	BytesAdded      int64    `json:"bytes_added"`
	Files           int64    `json:"files"`
	Result          string   `json:"result"`
	Error           string   `json:"error"`
}

type jsonDrill struct {
	RunID      string  `json:"run_id"`
	SnapshotID string  `json:"snapshot_id"`
	Start      string  `json:"start"`
	End        *string `json:"end"`
	AgeSeconds float64 `json:"age_seconds"`
	RTOSeconds float64 `json:"rto_seconds"`
	Result     string  `json:"result"`
	Error      string  `json:"error"`
}

type jsonEvent struct {
	ID      int64  `json:"id"`
	Time    string `json:"time"`
	Level   string `json:"level"`
	Target  string `json:"target"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func jsonRunOf(r *catalog.Run, now time.Time) *jsonRun {
	if r == nil {
		return nil
	}
	j := &jsonRun{
		RunID: r.RunID, SnapshotID: r.SnapshotID, Start: rfc3339(r.Start), End: optTime(r.End),
		AgeSeconds: now.Sub(finished(*r)).Seconds(),
		Bytes:      r.Bytes, BytesAdded: r.BytesAdded, Files: r.Files,
		Result: string(r.Result), Error: r.Error,
	}
	if !r.End.IsZero() {
		d := r.End.Sub(r.Start).Seconds()
		j.DurationSeconds = &d
	}
	return j
}

func jsonDrillOf(d *catalog.Drill, now time.Time) *jsonDrill {
	if d == nil {
		return nil
	}
	at := d.End
	if at.IsZero() {
		at = d.Start
	}
	return &jsonDrill{
		RunID: d.RunID, SnapshotID: d.SnapshotID, Start: rfc3339(d.Start), End: optTime(d.End),
		AgeSeconds: now.Sub(at).Seconds(), RTOSeconds: d.RTO.Seconds(),
		Result: string(d.Result), Error: d.Error,
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// optTime is t in RFC 3339, or nil (JSON null) for the zero time.
func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}
