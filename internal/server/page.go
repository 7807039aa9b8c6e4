package server

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/status"
)

//go:embed templates/status.html
var templateFS embed.FS

var pageTemplate = template.Must(template.ParseFS(templateFS, "templates/status.html"))

// timeLayout is how the page shows a time (in the clock's zone).
const timeLayout = "2006-01-02 15:04"

// pageData is what templates/status.html renders. Every text is
// preformatted here, so the template only lays it out.
type pageData struct {
	Lab       string
	Generated string // "2026-11-23 10:15 UTC"
	Refresh   int    // seconds
	Healthy   bool
	HasJobs   bool   // the daemon gave its jobs: show the next run column
	Verdict   string // "Healthy" or "Needs attention"
	Summary   string // "3 targets, all ok" or "1 overdue, 1 failing, 1 drill failed"
	Services  []pageService
	Targets   []pageTarget
	Certs     []pageCert // none when the lab uses no certificates: no TLS card
	Failures  []pageFailure
	// Unfinished are the unfinished sagas: saga.Describe's line and
	// the command that finishes each.
	Unfinished []status.Unfinished
	// KeptClusters are the old PostgreSQL clusters that major upgrades
	// kept, awaiting `homelab upgrade SERVICE --finalize`.
	KeptClusters []status.KeptCluster
	// Deploys are the blue/green services' lines (status.DeployLine,
	// status.LastLine).
	Deploys []pageDeploy
	// LabSnapshots are the newest lab snapshots.
	LabSnapshots []pageLabSnapshot
	// Host is the host card (host.go); nil: none.
	Host *pageHost
	// Alerts is the Alertmanager's card (host.go); nil: none.
	Alerts *pageAlerts
	// Charts are the targets' history charts (charts.go).
	Charts []pageChart
}

// pageLabSnapshot is one of the newest lab snapshots.
type pageLabSnapshot struct {
	Name, Created, Ago, State, Note string
	Members                         int
	Bad                             bool // not complete
}

// pageCert is the CA or a leaf certificate, with the marks of `homelab
// status`.
type pageCert struct {
	Name     string
	CA       bool
	Read     bool     // the certificate was read: subject and dates known
	Subject  string   // "CN=gitlab.lab", or "-" when not read
	Expires  string   // "2027-02-11" (UTC), or "-"
	DaysLeft string   // "80 days", "-3 days", or "-"
	Mark     string   // "OK", "ROTATE", "EXPIRED", "MISSING", or "ISSUE"
	Bad      bool     // anything but OK
	Issues   []string // what certs.Status says needs attention
}

type pageService struct {
	Name, Runtime string
	Probe         string // "http", ..., or "-" without a probe
	Health        string // "OK", "FAILING", or "no probe"
	State         string // ok, failing, none (the badge's class)
	Detail        string // "HTTP 200 in 35ms", "connection refused", ...
}

type pageTarget struct {
	Name, Provider, Repository, Schedule string

	State     string // ok, overdue, failing, never, manual
	StateText string // "OK", "OVERDUE", "FAILING", "NEVER BACKED UP", "manual"
	Bad       bool   // the state needs attention
	Attention bool   // the state, the last run or the last drill needs attention
	Due       string // "due 2h ago", "due in 5h", or ""

	LastBackup    string // time, or "never"
	LastBackupAge string // "2h 5m ago"
	Size          string
	Duration      string
	Result        string // "ok", "partial", "FAILED", "running", ...
	ResultBad     bool
	Error         string // the last run's error, if it failed

	Drill      string // "ok", "FAILED", or "never"
	DrillAge   string
	DrillBad   bool
	DrillError string
	RTO        string

	// Window is a pgbackrest target's recoverable window
	// (status.WindowText); WindowBad when its archiving is stuck or it
	// could not be read.
	Window    string
	WindowBad bool

	Next    string // "2026-11-24 02:00", or ""
	NextIn  string // "in 15h 45m"
	Running []string
	Queued  []string
}

type pageFailure struct {
	Time, Target, Kind, Message string
}

// page serves the status page.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	l := s.o.Lab()
	now := s.o.Now()
	store, err := s.store(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	rep, err := s.report(r.Context(), store, l, now)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var jobs []JobInfo
	if s.o.Jobs != nil {
		jobs = s.o.Jobs()
		if jobs == nil {
			jobs = []JobInfo{}
		}
	}
	d := buildPage(rep, jobs, now, s.o.Refresh)
	if d.Charts, err = s.historyCharts(r.Context(), store, l, now.Location()); err != nil {
		s.internalError(w, r, err)
		return
	}
	html, err := s.pages.render(d)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Length", strconv.Itoa(len(html))) // sent as it is, not chunked
	w.Write(html)
}

// pageCache keeps the last page rendered. Every text on the page is in
// its pageData, so a request whose pageData equals the last one's gets
// the same bytes without running the template (most of a page's cost).
// The texts that change with the clock alone (the time the page is "as
// of", ages like "3h 5m ago", "in 15h 45m": relativeTexts) are not
// compared: the template runs on a pageData whose non-empty relative
// texts are markers, and the rendered page is kept as pieces around
// them, into which each request puts its own texts, escaped as the
// template would. So with the catalog unchanged, the template runs again
// only when something other than a clock's text changes (a run, a probe's
// result, a job starting, a relative text becoming empty or not); a
// minute passing only refills the pieces.
type pageCache struct {
	mu     sync.Mutex
	data   pageData    // the last page's, with markers for its relative texts
	pieces []pagePiece // its page, split at the markers; nil until the first page
	texts  []string    // the relative texts of the last page sent
	html   []byte      // the last page sent
}

// pagePiece is rendered bytes, then the relative text numbered slot (none
// when slot is -1).
type pagePiece struct {
	html []byte
	slot int
}

// markerOpen and markerClose enclose a marker: markerOpen, markerNonce,
// the relative text's number, markerClose. The nonce, random for each
// process, keeps a text from the lab file or the catalog that looks like
// a marker from being taken for one.
const (
	markerOpen  = "\uE000"
	markerClose = "\uE001"
)

var markerNonce = func() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// relativeTexts returns pointers to d's texts that depend on the clock
// (buildPage's now) besides the catalog, the lab and the probes. The
// template must show each in an element's text, where textEscaper
// escapes as it does (TestPageCacheRelativeTexts compares).
func relativeTexts(d *pageData) []*string {
	ts := []*string{&d.Generated}
	for i := range d.Services {
		ts = append(ts, &d.Services[i].Runtime)
	}
	for i := range d.Targets {
		t := &d.Targets[i]
		ts = append(ts, &t.Due, &t.LastBackupAge, &t.DrillAge, &t.NextIn)
	}
	if d.Alerts != nil {
		for i := range d.Alerts.Firing {
			ts = append(ts, &d.Alerts.Firing[i].When)
		}
		for i := range d.Alerts.Silenced {
			ts = append(ts, &d.Alerts.Silenced[i].When, &d.Alerts.Silenced[i].Why)
		}
		for i := range d.Alerts.Resolved {
			ts = append(ts, &d.Alerts.Resolved[i].When)
		}
	}
	for i := range d.Deploys {
		ts = append(ts, &d.Deploys[i].Last)
	}
	for i := range d.LabSnapshots {
		ts = append(ts, &d.LabSnapshots[i].Ago)
	}
	return ts
}

// markRelative replaces d's non-empty relative texts with markers and
// returns them, in relativeTexts' order. d's slices are copied first:
// buildPage's are d's own, but its Alerts may be shared.
func markRelative(d *pageData) []string {
	d.Services = slices.Clone(d.Services)
	d.Targets = slices.Clone(d.Targets)
	d.Deploys = slices.Clone(d.Deploys)
	d.LabSnapshots = slices.Clone(d.LabSnapshots)
	if d.Alerts != nil {
		a := *d.Alerts
		a.Firing, a.Silenced, a.Resolved = slices.Clone(a.Firing), slices.Clone(a.Silenced), slices.Clone(a.Resolved)
		d.Alerts = &a
	}
	var texts []string
	for _, p := range relativeTexts(d) {
		if *p == "" {
			continue // "" stays: the template may show no element for it
		}
		*p, texts = markerOpen+markerNonce+strconv.Itoa(len(texts))+markerClose, append(texts, *p)
	}
	return texts
}

// splitMarkers cuts a page rendered with markers into pieces; false if a
// marker names no text (n texts were marked).
func splitMarkers(html []byte, n int) ([]pagePiece, bool) {
	open := []byte(markerOpen + markerNonce)
	var pieces []pagePiece
	for {
		i := bytes.Index(html, open)
		if i < 0 {
			return append(pieces, pagePiece{html: html, slot: -1}), true
		}
		rest := html[i+len(open):]
		j := bytes.Index(rest, []byte(markerClose))
		if j < 0 {
			return nil, false
		}
		slot, err := strconv.Atoi(string(rest[:j]))
		if err != nil || slot < 0 || slot >= n {
			return nil, false
		}
		pieces = append(pieces, pagePiece{html: html[:i], slot: slot})
		html = rest[j+len(markerClose):]
	}
}

// textEscaper escapes a text as html/template does in an element's text
// (its HTML escaper).
var textEscaper = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;")

// fillPieces is the page of pieces with texts in its markers' places.
func fillPieces(pieces []pagePiece, texts []string, size int) []byte {
	b := make([]byte, 0, size+size/8)
	for _, p := range pieces {
		b = append(b, p.html...)
		if p.slot >= 0 {
			b = append(b, textEscaper.Replace(texts[p.slot])...)
		}
	}
	return b
}

// render returns templates/status.html executed on d. The bytes may be
// shared with other requests: they must not be changed.
func (c *pageCache) render(d pageData) ([]byte, error) {
	texts := markRelative(&d)
	c.mu.Lock()
	if c.pieces != nil && reflect.DeepEqual(c.data, d) {
		if !slices.Equal(c.texts, texts) {
			c.texts, c.html = texts, fillPieces(c.pieces, texts, len(c.html))
		}
		html := c.html
		c.mu.Unlock()
		return html, nil
	}
	size := len(c.html)
	c.mu.Unlock()
	var b bytes.Buffer
	b.Grow(size + size/8) // about the last page's size: no copies while growing
	if err := pageTemplate.Execute(&b, d); err != nil {
		return nil, err
	}
	pieces, ok := splitMarkers(b.Bytes(), len(texts))
	if !ok {
		return nil, fmt.Errorf("status page: a relative text's marker was cut")
	}
	html := fillPieces(pieces, texts, b.Len())
	c.mu.Lock()
	c.data, c.pieces, c.texts, c.html = d, pieces, texts, html
	c.mu.Unlock()
	return html, nil
}

func buildPage(rep status.Report, jobs []JobInfo, now time.Time, refresh time.Duration) pageData {
	d := pageData{
		Lab:       rep.Lab,
		Generated: now.Format(timeLayout + " MST"),
		Refresh:   max(1, int(refresh.Round(time.Second)/time.Second)),
		Healthy:   rep.Healthy,
		HasJobs:   jobs != nil,
	}
	d.Verdict, d.Summary = verdict(rep)
	if len(rep.Targets) > 0 {
		d.Targets = make([]pageTarget, 0, len(rep.Targets))
	}
	for _, sv := range rep.Services {
		d.Services = append(d.Services, service(sv, now))
	}
	for _, t := range rep.Targets {
		d.Targets = append(d.Targets, target(t, jobs, now))
	}
	for _, c := range rep.Certs {
		d.Certs = append(d.Certs, cert(c))
	}
	d.Unfinished = rep.Unfinished
	d.KeptClusters = rep.KeptClusters
	d.Host = hostPage(rep.Host)
	d.Alerts = alertsPage(rep.Alerts, now)
	for _, ds := range rep.Deploys {
		d.Deploys = append(d.Deploys, pageDeploy{Service: ds.Service, Colors: status.DeployLine(ds), Last: status.LastLine(ds, now), Bad: ds.Error != ""})
	}
	for _, ls := range rep.LabSnapshots {
		d.LabSnapshots = append(d.LabSnapshots, pageLabSnapshot{Name: ls.Name, Created: ls.Created.In(now.Location()).Format(timeLayout),
			Ago: status.Ago(ls.Created, now), State: string(ls.State), Note: ls.Note, Members: len(ls.Members),
			Bad: ls.State != catalog.LabSnapshotComplete})
	}
	for _, e := range rep.Failures {
		d.Failures = append(d.Failures, pageFailure{
			Time: e.Time.In(now.Location()).Format(timeLayout), Target: e.Target, Kind: e.Kind,
			Message: strings.TrimSpace(e.Message),
		})
	}
	return d
}

// verdict is the headline and the counts under it: the targets', then
// the services' (when some have a probe), then the certificates' (when the
// lab has some).
func verdict(r status.Report) (string, string) {
	head := "Needs attention"
	if r.Healthy {
		head = "Healthy"
	}
	summary := targetsSummary(r)
	if n := r.CheckedServices(); n > 0 {
		switch failing := r.FailingServices(); {
		case failing > 0:
			summary += fmt.Sprintf("; %d of %d service%s failing", failing, n, plural(n))
		case n == 1:
			summary += "; 1 service, ok"
		default:
			summary += fmt.Sprintf("; %d services, all ok", n)
		}
	}
	switch problems, n := r.CertProblems(), len(r.Certs); {
	case len(problems) > 0:
		summary += "; " + strings.Join(problems, ", ")
	case n == 1:
		summary += "; 1 cert, ok"
	case n > 1:
		summary += fmt.Sprintf("; %d certs, all ok", n)
	}
	if t := r.StalledText(); t != "" {
		summary += "; " + t
	}
	if n := len(r.Unfinished) - r.Stalled(); n > 0 {
		summary += fmt.Sprintf("; %d upgrade%s in progress", n, plural(n))
	}
	if n := r.DeploysUnknown(); n > 0 {
		summary += fmt.Sprintf("; %d blue/green service%s unknown", n, plural(n))
	}
	if t := r.FillingText(); t != "" {
		summary += "; " + t
	}
	return head, summary
}

// targetsSummary counts the targets and their problems.
func targetsSummary(r status.Report) string {
	parts := r.TargetProblems()
	if len(parts) > 0 {
		return fmt.Sprintf("%s of %d target%s", strings.Join(parts, ", "), len(r.Targets), plural(len(r.Targets)))
	}
	switch n := len(r.Targets); n {
	case 0:
		return "no backup targets"
	case 1:
		return "1 target, ok"
	default:
		return fmt.Sprintf("%d targets, all ok", n)
	}
}

// service is a service's row.
// The runtime cell says the runtime's kind and, when read, its state and
// uptime ("compose · up 2d 2h", "systemd · STOPPED").
func service(s status.ServiceStatus, now time.Time) pageService {
	p := pageService{Name: s.Name, Runtime: s.Runtime, Probe: s.Probe, Detail: oneLine(status.ServiceDetail(s))}
	if p.Runtime == "" {
		p.Runtime = "-"
	} else if s.State != "" {
		p.Runtime += " · " + status.StateText(s, now)
	}
	switch {
	case s.Failing():
		p.Health, p.State = "FAILING", "failing"
	case s.Probe == "" && s.State == "":
		p.Probe, p.Health, p.State = "-", "no probe", "none"
	default:
		p.Health, p.State = "OK", "ok"
	}
	if p.Probe == "" {
		p.Probe = "-"
	}
	return p
}

// cert is a certificate's row: the marks of `homelab status`, with an
// issue other than the dates shown as ISSUE and every issue in words.
func cert(c status.CertStatus) pageCert {
	p := pageCert{Name: c.Name, CA: c.Kind == certs.KindCA, Subject: c.Subject, Expires: "-", DaysLeft: "-",
		Bad: c.State != status.CertOK, Issues: c.Issues}
	if p.Subject == "" {
		p.Subject = "-"
	}
	if c.Read() {
		p.Read = true
		p.Expires = c.NotAfter.UTC().Format(time.DateOnly)
		p.DaysLeft = fmt.Sprintf("%d day%s", c.DaysLeft, plural(c.DaysLeft))
	}
	switch c.State {
	case status.CertOK:
		p.Mark = "OK"
	case status.CertProblem:
		p.Mark = "ISSUE"
	default:
		p.Mark = c.Mark()
	}
	return p
}

func target(t status.TargetStatus, jobs []JobInfo, now time.Time) pageTarget {
	p := pageTarget{
		Name: t.Name, Provider: t.Provider, Repository: t.Repository, Schedule: t.Schedule,
		State: t.State, LastBackup: "never", Size: "-", Duration: "-", Result: "-",
		Drill: "never", RTO: "-",
	}
	p.StateText = t.StateWord()
	switch t.State {
	case status.StateOverdue, status.StateFailing, status.StateNever:
		p.Bad = true
	}
	if due := t.ProblemDue(); due != nil && (t.State == status.StateOverdue || t.State == status.StateFailing) {
		p.Due = "due " + status.Ago(*due, now)
	}
	if r := t.LastRun; r != nil {
		at := r.End
		if at.IsZero() {
			at = r.Start
		}
		p.LastBackup = at.In(now.Location()).Format(timeLayout)
		p.LastBackupAge = status.Ago(at, now)
		p.Result = string(r.Result)
		switch r.Result {
		case catalog.ResultFailed:
			p.Result, p.ResultBad, p.Error = "FAILED", true, oneLine(r.Error)
		case catalog.ResultInterrupted:
			p.ResultBad = true
		}
		if !r.End.IsZero() {
			p.Duration = status.ShortDuration(r.End.Sub(r.Start))
		}
		if r.Result == catalog.ResultOK || r.Result == catalog.ResultPartial || r.Bytes > 0 {
			p.Size = status.IEC(r.Bytes)
		}
	}
	if dr := t.LastDrill; dr != nil {
		at := dr.End
		if at.IsZero() {
			at = dr.Start
		}
		p.Drill, p.DrillAge = string(dr.Result), status.Ago(at, now)
		if dr.Result == catalog.ResultFailed {
			p.Drill, p.DrillBad, p.DrillError = "FAILED", true, oneLine(dr.Error)
		}
		if dr.RTO > 0 {
			p.RTO = status.ShortDuration(dr.RTO)
		}
	}
	if w := t.Window; w != nil {
		p.Window, p.WindowBad = status.WindowText(*w, now), w.Stuck() || w.Error != ""
	}
	var next time.Time
	for _, j := range jobs {
		if j.Name != t.Name || j.Kind == string(catalog.KindCheck) {
			continue
		}
		if j.Kind == string(catalog.KindBackup) && !j.Next.IsZero() && (next.IsZero() || j.Next.Before(next)) {
			next = j.Next
		}
		if j.Running {
			p.Running = append(p.Running, j.Kind)
		}
		if j.Queued {
			p.Queued = append(p.Queued, j.Kind)
		}
	}
	if !next.IsZero() {
		p.Next, p.NextIn = next.In(now.Location()).Format(timeLayout), status.Ago(next, now)
	}
	p.Attention = p.Bad || p.ResultBad || p.DrillBad || (t.Window != nil && t.Window.Stuck())
	return p
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// pageDeploy is a blue/green service's row.
type pageDeploy struct {
	Service, Colors, Last string
	Bad                   bool
}
