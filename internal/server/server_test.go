package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/status"
)

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestNewBind(t *testing.T) {
	l := &lab.Lab{Name: "x"}
	store := openCatalog(t)
	tests := []struct {
		addr, token string
		insecure    bool
	}{
		{"0.0.0.0:0", "", true},
		{":0", "", true},
		{"[::]:0", "", true},
		{"192.168.1.10:8470", "", true},
		{"nas.lan:8470", "", true},
		{"127.0.0.1:0", "", false},
		{"127.0.0.2:8470", "", false},
		{"[::1]:0", "", false},
		{"localhost:0", "", false},
		{"", "", false}, // the default, 127.0.0.1:8470
		{"0.0.0.0:0", "s3cret", false},
		{"192.168.1.10:8470", "s3cret", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr+"/"+tt.token, func(t *testing.T) {
			s, err := New(Options{Addr: tt.addr, Token: tt.token, Lab: func() *lab.Lab { return l }, Catalog: store})
			if tt.insecure {
				if !errors.Is(err, ErrInsecureBind) {
					t.Fatalf("err %v, want ErrInsecureBind", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "token") || !strings.Contains(msg, "127.0.0.1") {
					t.Errorf("message does not say what to do: %s", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.addr == "" && s.Addr() != DefaultAddr {
				t.Errorf("addr %q, want %q", s.Addr(), DefaultAddr)
			}
		})
	}
	if _, err := New(Options{Addr: "nonsense", Lab: func() *lab.Lab { return l }, Catalog: store}); err == nil {
		t.Error("no error for an address without a port")
	}
	if _, err := New(Options{Catalog: store}); err == nil {
		t.Error("no error without a lab")
	}
}

func TestServeShutdown(t *testing.T) {
	l := &lab.Lab{Name: "x"}
	s, err := New(Options{Addr: "127.0.0.1:0", Lab: func() *lab.Lab { return l }, Catalog: openCatalog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	resp, body := get(t, "http://"+ln.Addr().String()+"/healthz")
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Shutdown: %v, want nil", err)
	}
}

func TestAuth(t *testing.T) {
	const token = "correct-horse-battery-staple"
	f := newFixture(t, token, nil)
	basic := func(user, pass string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return req.Header.Get("Authorization")
	}
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"no header", "/", "", 401},
		{"no header api", "/api/v1/status", "", 401},
		{"no header metrics", "/metrics", "", 401},
		{"bearer", "/", "Bearer " + token, 200},
		{"bearer lowercase scheme", "/api/v1/runs", "bearer " + token, 200},
		{"bearer metrics", "/metrics", "Bearer " + token, 200},
		{"basic any user", "/", basic("phone", token), 200},
		{"basic empty user", "/api/v1/status", basic("", token), 200},
		{"wrong bearer", "/", "Bearer nope", 401},
		{"bearer prefix of token", "/", "Bearer " + token[:5], 401},
		{"wrong basic", "/", basic("admin", "nope"), 401},
		{"token as basic user", "/", basic(token, ""), 401},
		{"other scheme", "/", "Token " + token, 401},
		{"healthz open", "/healthz", "", 200},
		{"healthz wrong token", "/healthz", "Bearer nope", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, f.url+tt.path, "Authorization", tt.auth)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want == 401 {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="homelab"`) {
					t.Errorf("WWW-Authenticate %q", got)
				}
				if bytes.Contains(body, []byte(token)) {
					t.Error("the token is in the body")
				}
			}
		})
	}
	t.Run("no token: open", func(t *testing.T) {
		f := newFixture(t, "", nil)
		if resp, body := get(t, f.url+"/"); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, "", nil)
	resp, body := get(t, f.url+"/healthz")
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, path := range []string{"/nope", "/api/v1/nope", "/index.html"} {
		if resp, _ := get(t, f.url+path); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	resp, err := http.Post(f.url+"/api/v1/status", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

func TestAPIStatus(t *testing.T) {
	// Fixed probe results, so that the comparison with status --json
	// below is byte for byte (real probes are timed).
	probed := []health.Result{
		{Service: "postgres", Kind: lab.ProbePostgres, Detail: "connection refused", Duration: 2 * time.Millisecond},
		{Service: "queue", Kind: lab.ProbeCommand, Healthy: true, Detail: "exit 0 in 3ms", Duration: 3 * time.Millisecond},
	}
	f := newFixture(t, "", nil, func(o *Options) {
		o.Health = func(context.Context, *lab.Lab) []health.Result { return probed }
	})
	resp, body := get(t, f.url+"/api/v1/status")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	// Byte for byte what `homelab status --json` prints (as statusRun in
	// internal/cli builds it).
	rep, err := status.Build(t.Context(), f.lab, f.store, epoch)
	if err != nil {
		t.Fatal(err)
	}
	certRep, err := certs.Status(f.lab, epoch)
	if err != nil {
		t.Fatal(err)
	}
	rep.AddServices(f.lab, probed)
	rep.AddStates(fixtureStates)
	rep.AddCerts(certRep)
	var want bytes.Buffer
	if err := status.RenderJSON(&want, rep); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want.Bytes()) {
		t.Errorf("API and status --json differ:\n got %s\nwant %s", body, want.Bytes())
	}

	var got struct {
		MessageType string `json:"message_type"`
		Lab         string `json:"lab"`
		Healthy     bool   `json:"healthy"`
		Overdue     int    `json:"overdue"`
		Targets     []struct {
			Name, State string
			Overdue     bool
			LastDrill   *struct{ Result string } `json:"last_drill"`
		} `json:"targets"`
		Failures []struct{ Kind, Message string } `json:"failures"`
		Services []struct {
			Name, Probe, Detail string
			Healthy             *bool
		} `json:"services"`
		Certs []struct {
			Name, State string
			DaysLeft    *int `json:"days_left"`
		} `json:"certs"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if s := got.Services; len(s) != 3 || s[0].Name != "postgres" || *s[0].Healthy || s[0].Detail != "connection refused" ||
		s[1].Probe != "command" || !*s[1].Healthy || s[2].Name != "wiki" || s[2].Healthy != nil {
		t.Errorf("services %+v", s)
	}
	if got.MessageType != "status" || got.Lab != "devlab" || got.Healthy || got.Overdue != 1 {
		t.Errorf("report %+v", got)
	}
	states := map[string]string{}
	for _, tg := range got.Targets {
		states[tg.Name] = tg.State
	}
	if want := map[string]string{"files": "ok", "gitlab-db": "overdue", "photos": "ok", "scratch": "manual"}; !equalMaps(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
	if len(got.Failures) != 4 || got.Failures[0].Kind != "xss" {
		t.Errorf("failures %+v", got.Failures)
	}
	var cs []string
	for _, c := range got.Certs {
		days := "null"
		if c.DaysLeft != nil {
			days = fmt.Sprint(*c.DaysLeft)
		}
		cs = append(cs, fmt.Sprintf("%s %s %s", c.Name, c.State, days))
	}
	if got, want := strings.Join(cs, ", "), "ca ok 3580, gitlab ok 80, registry rotate 20, wiki missing null"; got != want {
		t.Errorf("certs %s, want %s", got, want)
	}
}

func equalMaps[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAPIRuns(t *testing.T) {
	f := newFixture(t, "", nil)
	type run struct {
		ID              int64    `json:"id"`
		RunID           string   `json:"run_id"`
		Kind            string   `json:"kind"`
		Target          string   `json:"target"`
		Start           string   `json:"start"`
		End             *string  `json:"end"`
		DurationSeconds *float64 `json:"duration_seconds"`
		Bytes           int64    `json:"bytes"`
		Result          string   `json:"result"`
		Error           string   `json:"error"`
	}
	type runs struct {
		MessageType string `json:"message_type"`
		Runs        []run  `json:"runs"`
	}
	fetch := func(t *testing.T, query string) runs {
		t.Helper()
		resp, body := get(t, f.url+"/api/v1/runs"+query)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		var r runs
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.MessageType != "runs" || r.Runs == nil {
			t.Fatalf("body %s", body)
		}
		return r
	}

	all, err := f.store.Runs(t.Context(), catalog.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := fetch(t, "")
	if len(got.Runs) != len(all) {
		t.Fatalf("%d runs, want %d", len(got.Runs), len(all))
	}
	for i, r := range got.Runs {
		c := all[i]
		if r.ID != c.ID || r.RunID != c.RunID || r.Kind != string(c.Kind) || r.Target != c.Target ||
			r.Bytes != c.Bytes || r.Result != string(c.Result) || r.Error != c.Error ||
			r.Start != c.Start.UTC().Format(time.RFC3339) || r.End == nil || *r.End != c.End.UTC().Format(time.RFC3339) ||
			r.DurationSeconds == nil || *r.DurationSeconds != c.End.Sub(c.Start).Seconds() {
			t.Errorf("run %d: got %+v, catalog %+v", i, r, c)
		}
	}

	tests := []struct {
		query string
		want  int
	}{
		{"?target=files", 4},
		{"?target=files&kind=backup", 3},
		{"?kind=check", 1},
		{"?kind=backup&result=failed", 1},
		{"?target=files&limit=2", 2},
		{"?limit=1000", len(all)},
		{"?target=nope", 0},
		{"?target=&kind=&limit=", len(all)},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if r := fetch(t, tt.query); len(r.Runs) != tt.want {
				t.Errorf("%d runs, want %d", len(r.Runs), tt.want)
			}
		})
	}
	t.Run("newest first", func(t *testing.T) {
		r := fetch(t, "?target=files&kind=backup&limit=1")
		if len(r.Runs) != 1 || r.Runs[0].Start != at(0, -15).Format(time.RFC3339) || r.Runs[0].Bytes != 99_723_674 {
			t.Errorf("got %+v", r.Runs)
		}
	})
	t.Run("running run", func(t *testing.T) {
		addRun(t, f.store, catalog.Run{Kind: catalog.KindBackup, Target: "scratch", Start: at(0, -1), Result: catalog.ResultRunning})
		_, body := get(t, f.url+"/api/v1/runs?target=scratch")
		var m struct{ Runs []map[string]any }
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Runs) != 1 {
			t.Fatalf("got %s", body)
		}
		r := m.Runs[0]
		if end, ok := r["end"]; !ok || end != nil {
			t.Errorf("end %v, want null", end)
		}
		if d, ok := r["duration_seconds"]; !ok || d != nil {
			t.Errorf("duration %v, want null", d)
		}
		if r["result"] != "running" {
			t.Errorf("result %v", r["result"])
		}
	})

	bad := []string{
		"?limit=0", "?limit=-1", "?limit=1001", "?limit=ten", "?limit=1.5",
		"?kind=drill", "?kind=BACKUP", "?result=great", "?targte=files", "?target=a&target=b",
	}
	for _, q := range bad {
		t.Run("bad "+q, func(t *testing.T) {
			resp, body := get(t, f.url+"/api/v1/runs"+q)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var e struct {
				MessageType string `json:"message_type"`
				Error       string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.MessageType != "error" || e.Error == "" {
				t.Errorf("body %s (%v)", body, err)
			}
			t.Log(e.Error)
		})
	}
}

func TestAPIRunsDefaultLimit(t *testing.T) {
	l := &lab.Lab{Name: "x"}
	store := openCatalog(t)
	for i := range DefaultRunsLimit + 5 {
		addRun(t, store, catalog.Run{Kind: catalog.KindBackup, Target: "t", Start: at(0, -i), End: at(0, -i), Result: catalog.ResultOK})
	}
	s, err := New(Options{Lab: func() *lab.Lab { return l }, Catalog: store})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, s)
	_, body := get(t, ts+"/api/v1/runs")
	var r struct{ Runs []json.RawMessage }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != DefaultRunsLimit {
		t.Errorf("%d runs, want %d", len(r.Runs), DefaultRunsLimit)
	}
}

func TestLabReloaded(t *testing.T) {
	// The lab is read per request: a reload shows at once.
	f := newFixture(t, "", nil)
	_, body := get(t, f.url+"/api/v1/status")
	if !bytes.Contains(body, []byte(`"lab":"devlab"`)) {
		t.Fatalf("got %s", body)
	}
	f.lab = parseLab(t, strings.Replace(fixtureLab, "name: devlab", "name: renamed", 1))
	_, body = get(t, f.url+"/api/v1/status")
	if !bytes.Contains(body, []byte(`"lab":"renamed"`)) {
		t.Errorf("got %s", body)
	}
}

func TestCatalogError(t *testing.T) {
	f := newFixture(t, "", nil)
	f.store.Close()
	for _, path := range []string{"/", "/api/v1/status", "/api/v1/runs", "/metrics"} {
		resp, body := get(t, f.url+path)
		if resp.StatusCode != 500 {
			t.Errorf("%s: %d, want 500: %s", path, resp.StatusCode, body)
		}
	}
}
