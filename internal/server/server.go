package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"homelab/internal/app"
	"homelab/internal/catalog"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/status"
)

const (
	// DefaultAddr is where the server listens when Options.Addr is empty.
	DefaultAddr = "127.0.0.1:8470"
	// DefaultRefresh is how often the status page reloads itself when
	// Options.Refresh is zero.
	DefaultRefresh = 30 * time.Second
)

// ErrInsecureBind is returned by New for a non-loopback address without a
// token: anyone on the network could read the lab's status.
var ErrInsecureBind = errors.New("refusing to serve a non-loopback address without a token")

// JobInfo is one scheduled job as the daemon sees it (for the page).
type JobInfo struct {
	// Kind is the job's kind: "backup", "drill", "prune" or "check".
	Kind string
	// Name is the backup target (the repository for a check).
	Name string
	// Next is when the job runs next; zero if it is not scheduled.
	Next    time.Time
	Running bool
	Queued  bool
}

// Options configure a Server.
type Options struct {
	// Addr is host:port; default DefaultAddr.
	Addr string
	// Token is the bearer token; "" means no authentication, which is only
	// allowed on a loopback address.
	Token string
	// Lab returns the current lab. It is called for every request, since
	// the daemon can reload the lab file (SIGHUP). Required.
	Lab func() *lab.Lab
	// Catalog is read for every request. Required. When it is a
	// catalog.Versioned (the SQLite catalog), the server reads it through
	// a catalog.Cache: the summaries, events and sagas that the page, the
	// API and the metrics show are read again only after something (this
	// daemon, or a CLI command) has written to it.
	Catalog catalog.Store
	// Now is the clock; default time.Now. Times on the page are shown in
	// the location of the time it returns.
	Now func() time.Time
	// Jobs returns the daemon's scheduled jobs; optional.
	Jobs func() []JobInfo
	// Refresh is how often the status page reloads itself; default
	// DefaultRefresh.
	Refresh time.Duration
	// Health probes the lab's services for the page and the API; default
	// app.CheckHealth (health.CheckAll with homelab's environment). It and
	// States are not called for a lab without services.
	Health func(ctx context.Context, l *lab.Lab) []health.Result
	// States reads the services' runtime states for the page and the API
	// (cached with the probes); default app.ReadStates
	// (runtime.StatusAll).
	States func(ctx context.Context, l *lab.Lab) []runtime.Result
	// HealthTTL is how long probe results are reused by later requests;
	// default DefaultHealthTTL, negative to probe for every request.
	// Concurrent requests always share one run.
	HealthTTL time.Duration
	// Host returns the daemon's newest host status (daemon.Daemon.Host),
	// shown on the page and the API and exported by /metrics; nil: no
	// host section.
	Host func() *status.HostStatus
	// Alerts returns what the daemon's newest poll of the Alertmanager
	// saw (daemon.Daemon.Alerts); nil: no alerts section.
	Alerts func() *status.AlertsStatus
	// Windows returns the pgbackrest targets' recoverable windows as the
	// daemon last read them (daemon.Daemon.Windows), shown on the page
	// and the API and exported by /metrics; nil: none.
	Windows func() map[string]status.Window
	// Log receives request errors; default: discard.
	Log *slog.Logger
}

// Server serves the status page, the JSON API and the metrics.
type Server struct {
	o       Options
	handler http.Handler
	srv     *http.Server
	health  *healthCache
	pages   pageCache
	charts  chartCache
}

// New checks and defaults o and returns a server that is not yet
// listening. A non-loopback Addr (all interfaces, a LAN address, a host
// name other than localhost) without a Token is refused with an error
// wrapping ErrInsecureBind.
func New(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("server address %q: %w", o.Addr, err)
	}
	if o.Token == "" && !lab.LoopbackAddr(o.Addr) {
		return nil, fmt.Errorf("%w: %s is reachable from other hosts; set a token (serve.token_env or serve.token_file) or listen on 127.0.0.1", ErrInsecureBind, o.Addr)
	}
	if o.Lab == nil {
		return nil, errors.New("server: no lab")
	}
	if o.Catalog == nil {
		return nil, errors.New("server: no catalog")
	}
	if v, ok := o.Catalog.(catalog.Versioned); ok {
		// Shared: the page, the API and the metrics only read what the
		// cache returns, so they need no copies of their own.
		o.Catalog = catalog.NewCache(v).Shared()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Health == nil {
		o.Health = app.CheckHealth
	}
	if o.HealthTTL == 0 {
		o.HealthTTL = DefaultHealthTTL
	}

	if o.States == nil {
		o.States = app.ReadStates
	}
	s := &Server{o: o, health: &healthCache{probe: o.Health, states: o.States, ttl: o.HealthTTL}}
	// The host's and the certificates' metrics are live (read at every
	// scrape, each cheaply: the daemon's newest sample, a stat per
	// certificate file); homelab's own are cached (metricsHandler).
	live := []prometheus.Collector{&certCollector{lab: o.Lab, now: o.Now}}
	if o.Host != nil {
		live = append(live, hostCollector{o.Host})
	}
	if o.Windows != nil {
		live = append(live, windowCollector{o.Windows})
	}
	metrics, err := newMetricsHandler(NewCollector(o.Lab, o.Catalog, o.Now), o.Catalog, o.Log, live...)
	if err != nil {
		return nil, err
	}

	api := http.NewServeMux()
	api.HandleFunc("GET /{$}", s.page)
	api.HandleFunc("GET /api/v1/status", s.apiStatus)
	api.HandleFunc("GET /api/v1/runs", s.apiRuns)
	api.Handle("GET /metrics", metrics)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("/", s.auth(api))
	s.handler = mux

	s.srv = &http.Server{
		Addr:              o.Addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the server's routes, for tests and for callers that run
// their own http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address ListenAndServe listens on.
func (s *Server) Addr() string { return s.o.Addr }

// ListenAndServe listens on Options.Addr and serves until Shutdown, after
// which it returns nil.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ln)
}

// Serve serves on ln until Shutdown, after which it returns nil. It closes
// ln.
func (s *Server) Serve(ln net.Listener) error {
	s.o.Log.Info("http server listening", "addr", ln.Addr().String(), "auth", s.o.Token != "")
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for the requests in
// flight, until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("http server shutdown: %w", err)
	}
	return nil
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// auth lets a request through when no token is set, or when it carries
// the token as a bearer token or as the password of HTTP Basic auth.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.o.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.o.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got, ok := credential(r); ok {
			// Hashing first makes the comparison constant-time in the
			// token's length too.
			if h := sha256.Sum256([]byte(got)); subtle.ConstantTimeCompare(h[:], want[:]) == 1 {
				next.ServeHTTP(w, r)
				return
			}
		}
		s.o.Log.Debug("unauthorized request", "remote", r.RemoteAddr, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Basic realm="homelab", charset="UTF-8"`)
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeJSONError(w, http.StatusUnauthorized, "unauthorized: send the token as a bearer token or as the Basic auth password")
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}

// credential is the token a request offers: the bearer token, or the
// password of Basic auth (any user name).
func credential(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok), true
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, true
	}
	return "", false
}
