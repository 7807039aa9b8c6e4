package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// epoch is the fixed time of test events, in an explicit zone.
var epoch = time.Date(2026, 11, 22, 2, 0, 0, 0, time.FixedZone("CET", 3600))

// secret is put in test URLs; it must never show up in logs or errors.
const secret = "s3cr3t"

func failedEvent() Event {
	return Event{
		Kind: BackupFailed, Lab: "home", Target: "db", Job: "backup", Time: epoch,
		Error: "pg_dump exited 1", RunID: "run-42",
	}
}

// request is what a receiver got.
type request struct {
	Method, Path, RawQuery, ContentType string
	Body                                string
}

// receiver is a local HTTP endpoint that records requests and answers
// with the queued statuses, then with 200.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []request
	statuses []int
	fallback int
	release  chan struct{} // when set, requests wait for it to close
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses, fallback: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, request{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Get("Content-Type"), string(body)})
	status := r.fallback
	if len(r.statuses) > 0 {
		status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	release := r.release
	r.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(status)
}

func (r *receiver) host() string { return r.srv.Listener.Addr().String() }

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// jsonURL is the documented generic webhook form posting JSON over http.
func (r *receiver) jsonURL(path string) string {
	return "generic://" + r.host() + path + "?template=json&disabletls=yes"
}

// logBuffer collects slog JSON records; safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the logged records whose message has msg as a prefix.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.HasPrefix(rec["msg"].(string), msg) {
			out = append(out, rec)
		}
	}
	return out
}

func newLog() (*slog.Logger, *logBuffer) {
	b := new(logBuffer)
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// fastOptions retries quickly.
func fastOptions(log *slog.Logger) Options {
	return Options{Log: log, Attempts: 5, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Timeout: 5 * time.Second}
}

func mustNew(t *testing.T, chans []Channel, o Options) *Notifier {
	t.Helper()
	n, err := New(chans, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

func closeWithin(t *testing.T, n *Notifier, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return n.Close(ctx)
}

func TestGenericWebhookFailureThenRecovery(t *testing.T) {
	recovered := failedEvent()
	recovered.Kind, recovered.Error, recovered.RunID = Recovered, "", "run-43"

	tests := []struct {
		name  string
		url   func(r *receiver) string
		parse func(t *testing.T, req request) (title, body string)
	}{
		{
			name: "generic json",
			url:  func(r *receiver) string { return r.jsonURL("/hook") },
			parse: func(t *testing.T, req request) (string, string) {
				var m map[string]string
				if err := json.Unmarshal([]byte(req.Body), &m); err != nil {
					t.Fatalf("body %q: %v", req.Body, err)
				}
				if req.ContentType != "application/json" {
					t.Errorf("content type %q", req.ContentType)
				}
				return m["title"], m["message"]
			},
		},
		{
			name: "generic+http shortcut json",
			url:  func(r *receiver) string { return "generic+http://" + r.host() + "/hook?template=json" },
			parse: func(t *testing.T, req request) (string, string) {
				var m map[string]string
				if err := json.Unmarshal([]byte(req.Body), &m); err != nil {
					t.Fatalf("body %q: %v", req.Body, err)
				}
				return m["title"], m["message"]
			},
		},
		{
			name: "generic+http shortcut plain text carries the title first",
			url:  func(r *receiver) string { return "generic+http://" + r.host() + "/hook" },
			parse: func(t *testing.T, req request) (string, string) {
				if req.ContentType != "text/plain" {
					t.Errorf("content type %q", req.ContentType)
				}
				title, body, ok := strings.Cut(req.Body, "\n\n")
				if !ok {
					t.Fatalf("plain body %q has no blank line after the title", req.Body)
				}
				return title, body
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			log, logs := newLog()
			n := mustNew(t, []Channel{{Name: "hook", URL: tt.url(r)}}, fastOptions(log))
			n.Notify(failedEvent())
			n.Notify(recovered)
			if err := closeWithin(t, n, 5*time.Second); err != nil {
				t.Fatalf("Close: %v", err)
			}
			reqs := r.requests()
			if len(reqs) != 2 {
				t.Fatalf("got %d requests, want 2: %+v", len(reqs), reqs)
			}
			if reqs[0].Method != http.MethodPost || reqs[0].Path != "/hook" {
				t.Errorf("request %s %s, want POST /hook", reqs[0].Method, reqs[0].Path)
			}
			title, body := tt.parse(t, reqs[0])
			if want := "homelab home: backup of db failed"; title != want {
				t.Errorf("failure title %q, want %q", title, want)
			}
			wantBody := "target: db\njob: backup\ntime: 2026-11-22T02:00:00+01:00\nerror: pg_dump exited 1\nrun: run-42"
			if body != wantBody {
				t.Errorf("failure body\n%s\nwant\n%s", body, wantBody)
			}
			title, body = tt.parse(t, reqs[1])
			if want := "homelab home: backup of db recovered"; title != want {
				t.Errorf("recovery title %q, want %q", title, want)
			}
			if !strings.Contains(body, "run: run-43") {
				t.Errorf("recovery body %q lacks the run id", body)
			}
			if got := logs.records(t, "notify: notification failed"); len(got) != 0 {
				t.Errorf("unexpected failures logged: %v", got)
			}
		})
	}
}

func TestOnFilter(t *testing.T) {
	all, overdueOnly := newReceiver(t), newReceiver(t)
	n := mustNew(t, []Channel{
		{Name: "all", URL: all.jsonURL("/all")},
		{Name: "overdue", URL: overdueOnly.jsonURL("/overdue"), On: []string{Overdue}},
	}, fastOptions(nil))
	overdue := Event{Kind: Overdue, Lab: "home", Target: "photos", Time: epoch, Detail: "last good backup 2026-11-20 02:00, due by 2026-11-21 02:10"}
	n.Notify(failedEvent())
	n.Notify(overdue)
	if err := closeWithin(t, n, 5*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := len(all.requests()); got != 2 {
		t.Errorf("channel without On got %d messages, want 2", got)
	}
	reqs := overdueOnly.requests()
	if len(reqs) != 1 {
		t.Fatalf("overdue channel got %d messages, want 1: %+v", len(reqs), reqs)
	}
	if !strings.Contains(reqs[0].Body, "backup of photos is overdue") || !strings.Contains(reqs[0].Body, "due by 2026-11-21 02:10") {
		t.Errorf("overdue message %s", reqs[0].Body)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	r := newReceiver(t, 500, 500, 200)
	log, logs := newLog()
	n := mustNew(t, []Channel{{Name: "hook", URL: r.jsonURL("/hook")}}, fastOptions(log))
	n.Notify(failedEvent())
	if err := closeWithin(t, n, 5*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := len(r.requests()); got != 3 {
		t.Fatalf("receiver got %d requests, want 3", got)
	}
	if got := logs.records(t, "notify: notification failed, will retry"); len(got) != 2 {
		t.Errorf("logged %d retries, want 2", len(got))
	}
	ok := logs.records(t, "notify: notification delivered")
	if len(ok) != 1 || ok[0]["attempt"] != 3.0 || ok[0]["channel"] != "hook" {
		t.Errorf("delivered records %v, want one at attempt 3 on channel hook", ok)
	}
	if got := logs.records(t, "notify: notification failed, giving up"); len(got) != 0 {
		t.Errorf("gave up: %v", got)
	}
}

func TestPermanentFailure(t *testing.T) {
	tests := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{
			// The receiver always answers 500.
			name: "server error",
			url: func(t *testing.T) string {
				r := newReceiver(t)
				r.fallback = http.StatusInternalServerError
				return "generic://" + r.host() + "/hook/" + secret + "?template=json&disabletls=yes&token=" + secret
			},
		},
		{
			// Nothing listens: net/http's error quotes the whole URL.
			name: "connection refused",
			url: func(t *testing.T) string {
				r := newReceiver(t)
				r.srv.Close()
				return "generic+http://user:" + secret + "@" + r.host() + "/hook/" + secret + "?token=" + secret
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLog()
			o := fastOptions(log)
			o.Attempts = 3
			u := tt.url(t)
			n := mustNew(t, []Channel{{Name: "hook", URL: u}}, o)
			start := time.Now()
			n.Notify(failedEvent())
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("Notify took %s; it must not wait for delivery", d)
			}
			if err := closeWithin(t, n, 5*time.Second); err != nil {
				t.Fatalf("Close: %v", err)
			}
			retries := logs.records(t, "notify: notification failed, will retry")
			final := logs.records(t, "notify: notification failed, giving up")
			if len(retries) != 2 || len(final) != 1 {
				t.Fatalf("logged %d retries and %d final failures, want 2 and 1:\n%s", len(retries), len(final), logs)
			}
			for i, rec := range append(retries, final...) {
				if rec["attempt"] != float64(i+1) || rec["channel"] != "hook" || rec["error"] == "" {
					t.Errorf("record %d: %v", i, rec)
				}
			}
			if final[0]["level"] != "ERROR" {
				t.Errorf("final failure logged at %v", final[0]["level"])
			}
			out := logs.String()
			if strings.Contains(out, secret) || strings.Contains(out, u) {
				t.Errorf("log holds the secret:\n%s", out)
			}
		})
	}
}

func TestPing(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		pings     int
		wantHits  int
		wantFinal int // "giving up" records
	}{
		{name: "once per call", pings: 3, wantHits: 3},
		{name: "retries on 503", statuses: []int{503, 503}, pings: 1, wantHits: 3},
		{name: "404 is final", statuses: []int{404}, pings: 1, wantHits: 1, wantFinal: 1},
		{name: "gives up after attempts", statuses: []int{503, 503, 503, 503, 503}, pings: 1, wantHits: 5, wantFinal: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, tt.statuses...)
			log, logs := newLog()
			n := mustNew(t, nil, fastOptions(log))
			u := "http://" + r.host() + "/ping/" + secret + "-0b1c-4e5f?token=" + secret
			for range tt.pings {
				n.Ping(u, Event{Kind: "heartbeat", Lab: "home", Target: "db"})
			}
			if err := closeWithin(t, n, 5*time.Second); err != nil {
				t.Fatalf("Close: %v", err)
			}
			reqs := r.requests()
			if len(reqs) != tt.wantHits {
				t.Fatalf("heartbeat got %d requests, want %d", len(reqs), tt.wantHits)
			}
			for _, req := range reqs {
				if req.Method != http.MethodGet || req.Body != "" || req.Path != "/ping/"+secret+"-0b1c-4e5f" {
					t.Errorf("request %+v, want GET of the ping path without body", req)
				}
			}
			final := logs.records(t, "notify: heartbeat failed, giving up")
			if len(final) != tt.wantFinal {
				t.Errorf("%d final failures logged, want %d:\n%s", len(final), tt.wantFinal, logs)
			}
			for _, rec := range final {
				if rec["heartbeat"] != r.host() {
					t.Errorf("final failure names heartbeat %v, want the host %s", rec["heartbeat"], r.host())
				}
			}
			if out := logs.String(); strings.Contains(out, secret) {
				t.Errorf("log holds the secret:\n%s", out)
			}
		})
	}
}

func TestPingRejectsNonHTTP(t *testing.T) {
	log, logs := newLog()
	n := mustNew(t, nil, fastOptions(log))
	n.Ping("ftp://"+secret+"@example.com/x", Event{Target: "db"})
	if err := closeWithin(t, n, time.Second); err != nil {
		t.Fatal(err)
	}
	if len(logs.records(t, "notify: heartbeat URL is not an http(s) URL")) != 1 || strings.Contains(logs.String(), secret) {
		t.Errorf("log:\n%s", logs)
	}
}

func TestCloseWaitsForRetries(t *testing.T) {
	r := newReceiver(t, 500, 500, 200)
	o := fastOptions(nil)
	o.Backoff = 50 * time.Millisecond
	n := mustNew(t, []Channel{{Name: "hook", URL: r.jsonURL("/hook")}}, o)
	n.Notify(failedEvent())
	if err := closeWithin(t, n, 5*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := len(r.requests()); got != 3 {
		t.Errorf("when Close returned the receiver had %d requests, want 3", got)
	}
}

func TestCloseAbandonsAtDeadline(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *receiver)
	}{
		// Failing forever with a long backoff: Close cuts the wait short.
		{name: "waiting to retry", setup: func(r *receiver) { r.fallback = 500 }},
		// The receiver never answers: Close cuts the send short.
		{name: "send in flight", setup: func(r *receiver) { r.release = make(chan struct{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			tt.setup(r)
			if r.release != nil {
				t.Cleanup(func() { close(r.release) })
			}
			log, logs := newLog()
			o := fastOptions(log)
			o.Backoff, o.MaxBackoff = time.Hour, time.Hour
			n := mustNew(t, []Channel{{Name: "hook", URL: r.jsonURL("/hook")}}, o)
			start := time.Now()
			n.Notify(failedEvent())
			n.Notify(failedEvent()) // queued behind the first
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("Notify took %s", d)
			}
			err := closeWithin(t, n, 100*time.Millisecond)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Close = %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Close took %s", d)
			}
			ab := logs.records(t, "notify: abandoned")
			if len(ab) != 1 || ab[0]["count"] != 2.0 {
				t.Errorf("abandon records %v, want one with count 2", ab)
			}
			if got := len(r.requests()); got != 1 {
				t.Errorf("receiver got %d requests, want 1", got)
			}
			n.Notify(failedEvent())
			if len(logs.records(t, "notify: notifier closed, event dropped")) != 1 {
				t.Errorf("Notify after Close was not logged as dropped")
			}
			if err := closeWithin(t, n, time.Second); err != nil {
				t.Errorf("second Close = %v", err)
			}
		})
	}
}

func TestQueueFull(t *testing.T) {
	r := newReceiver(t)
	r.release = make(chan struct{})
	log, logs := newLog()
	o := fastOptions(log)
	o.QueueSize = 1
	n := mustNew(t, []Channel{{Name: "hook", URL: r.jsonURL("/hook")}}, o)
	n.Notify(failedEvent())
	// Wait until the first message is being sent, so the queue is empty.
	for deadline := time.Now().Add(5 * time.Second); len(r.requests()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("first message never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	n.Notify(failedEvent()) // fills the queue
	n.Notify(failedEvent()) // dropped
	close(r.release)
	if err := closeWithin(t, n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := len(r.requests()); got != 2 {
		t.Errorf("receiver got %d requests, want 2", got)
	}
	if got := logs.records(t, "notify: queue full"); len(got) != 1 {
		t.Errorf("queue full logged %d times, want 1", len(got))
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		ch      Channel
		wantErr error  // nil: valid
		wantIn  string // in the error text
	}{
		{name: "ntfy", ch: Channel{URL: "ntfy://ntfy.sh/homelab-alerts"}},
		{name: "generic json", ch: Channel{URL: "generic://hooks.example.com/x?template=json"}},
		{name: "generic+https", ch: Channel{URL: "generic+https://hooks.example.com/x/" + secret}},
		{name: "templates and on", ch: Channel{URL: "ntfy://ntfy.sh/t", On: []string{Overdue, Recovered}, Title: "{{.Lab}}", Body: "{{.Summary}} {{.Time.Format \"15:04\"}}"}},
		{name: "unknown scheme", ch: Channel{URL: "bogus://user:" + secret + "@host/" + secret}, wantErr: ErrBadURL, wantIn: `unknown service "bogus"`},
		{name: "malformed", ch: Channel{URL: "generic+http://%zz/" + secret}, wantErr: ErrBadURL, wantIn: "malformed URL"},
		{name: "no scheme", ch: Channel{URL: "hooks.example.com/" + secret}, wantErr: ErrBadURL, wantIn: "no scheme"},
		{name: "empty", ch: Channel{}, wantErr: ErrBadURL, wantIn: "empty URL"},
		{name: "service rejects its URL", ch: Channel{URL: "ntfy://ntfy.sh/t?priority=" + secret}, wantErr: ErrBadURL, wantIn: "ntfy"},
		{name: "no custom URLs", ch: Channel{URL: "slack+https://hooks.slack.com/" + secret}, wantErr: ErrBadURL, wantIn: `does not take slack+https:// URLs`},
		// shoutrrr's router panics on this one.
		{name: "generic+ bad parameter", ch: Channel{URL: "generic+http://host/" + secret + "?disabletls=maybe"}, wantErr: ErrBadURL, wantIn: "generic+http URL"},
		{name: "bad template syntax", ch: Channel{URL: "ntfy://ntfy.sh/" + secret, Title: "{{.Lab"}, wantErr: ErrBadTemplate, wantIn: "title"},
		{name: "bad template field", ch: Channel{URL: "ntfy://ntfy.sh/" + secret, Body: "{{.Nope}}"}, wantErr: ErrBadTemplate, wantIn: "Nope"},
		{name: "unknown kind", ch: Channel{URL: "ntfy://ntfy.sh/" + secret, On: []string{"exploded"}}, wantErr: ErrBadKind, wantIn: `"exploded"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ch.Name = "alerts"
			errs := map[string]error{"Validate": Validate(tt.ch)}
			_, errs["New"] = New([]Channel{{URL: "ntfy://ntfy.sh/ok"}, tt.ch}, Options{})
			for fn, err := range errs {
				if tt.wantErr == nil {
					if err != nil {
						t.Errorf("%s: %v", fn, err)
					}
					continue
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%s = %v, want %v", fn, err, tt.wantErr)
				}
				var ce *ChannelError
				if !errors.As(err, &ce) || ce.Channel != "alerts" {
					t.Errorf("%s: %v is not a *ChannelError for alerts", fn, err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "alerts") || !strings.Contains(msg, tt.wantIn) {
					t.Errorf("%s: %q lacks the channel name or %q", fn, msg, tt.wantIn)
				}
				if strings.Contains(msg, secret) || (tt.ch.URL != "" && strings.Contains(msg, tt.ch.URL)) {
					t.Errorf("%s: %q holds the URL or its secret", fn, msg)
				}
			}
		})
	}
}

func TestNewNamesUnnamedChannels(t *testing.T) {
	_, err := New([]Channel{{URL: "ntfy://ntfy.sh/ok"}, {URL: "bogus://x"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "notify[1]") {
		t.Errorf("New = %v, want an error naming notify[1]", err)
	}
}

func TestCustomTemplates(t *testing.T) {
	r := newReceiver(t)
	n := mustNew(t, []Channel{{
		Name:  "custom",
		URL:   r.jsonURL("/hook"),
		Title: `[{{.Lab}}] {{.Kind}} {{.Target}}`,
		Body:  `{{.Summary}}; job={{.JobName}} at {{.Time.Format "2006-01-02 15:04 MST"}}; err={{.Error}}; run={{.RunID}}; snap={{.SnapshotID}}; {{.Detail}}`,
	}}, Options{Now: func() time.Time { return epoch }})
	e := Event{Kind: DrillFailed, Lab: "home", Target: "photos", Error: "checksum mismatch", RunID: "r1", SnapshotID: "ab12cd34", Detail: "restored 3 of 4 files"}
	n.Notify(e) // zero Time: stamped by Options.Now
	if err := closeWithin(t, n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests", len(reqs))
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(reqs[0].Body), &m); err != nil {
		t.Fatal(err)
	}
	if want := "[home] drill_failed photos"; m["title"] != want {
		t.Errorf("title %q, want %q", m["title"], want)
	}
	want := "restore drill of photos failed; job=drill at 2026-11-22 02:00 CET; err=checksum mismatch; run=r1; snap=ab12cd34; restored 3 of 4 files"
	if m["message"] != want {
		t.Errorf("body\n%q\nwant\n%q", m["message"], want)
	}
}

func TestDefaultRendering(t *testing.T) {
	tests := []struct {
		e         Event
		wantTitle string
		wantBody  string
	}{
		{
			e:         failedEvent(),
			wantTitle: "homelab home: backup of db failed",
			wantBody:  "target: db\njob: backup\ntime: 2026-11-22T02:00:00+01:00\nerror: pg_dump exited 1\nrun: run-42",
		},
		{
			e:         Event{Kind: Overdue, Lab: "home", Target: "db", Time: epoch, Detail: "due by 2026-11-23 02:10"},
			wantTitle: "homelab home: backup of db is overdue",
			wantBody:  "target: db\njob: backup\ntime: 2026-11-22T02:00:00+01:00\ndetail: due by 2026-11-23 02:10",
		},
		{
			e:         Event{Kind: Recovered, Lab: "home", Target: "offsite", Job: "check", Time: epoch},
			wantTitle: "homelab home: repository check of offsite recovered",
			wantBody:  "target: offsite\njob: check\ntime: 2026-11-22T02:00:00+01:00",
		},
		{
			e:         Event{Kind: DrillFailed, Lab: "home", Target: "db", SnapshotID: "ab12"},
			wantTitle: "homelab home: restore drill of db failed",
			wantBody:  "target: db\njob: drill\nsnapshot: ab12",
		},
		{
			e:         Event{Kind: PruneFailed, Target: "local"},
			wantTitle: "homelab: prune of local failed",
			wantBody:  "target: local\njob: prune",
		},
		{
			e:         Event{Kind: CheckFailed, Lab: "home"},
			wantTitle: "homelab home: repository check failed",
			wantBody:  "job: check",
		},
	}
	for _, tt := range tests {
		t.Run(tt.wantTitle, func(t *testing.T) {
			if got := DefaultTitle(tt.e); got != tt.wantTitle {
				t.Errorf("title %q, want %q", got, tt.wantTitle)
			}
			if got := DefaultBody(tt.e); got != tt.wantBody {
				t.Errorf("body\n%s\nwant\n%s", got, tt.wantBody)
			}
		})
	}
}

func TestDiskFillingSummary(t *testing.T) {
	e := Event{Kind: DiskFilling, Lab: "lab", Target: "/srv"}
	if got := DefaultTitle(e); got != "homelab lab: filesystem /srv is filling" {
		t.Errorf("title %q", got)
	}
	if e.JobName() != "disk" {
		t.Errorf("job %q", e.JobName())
	}
}
