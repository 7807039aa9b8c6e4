package health

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"homelab/internal/lab"
)

// maxDetail is the most of a detail a Result keeps, in runes.
const maxDetail = 300

// Result is the outcome of one probe of one service.
type Result struct {
	Service string
	// Kind is the probe's kind (lab.ProbeHTTP, ...); "" for a service
	// without a probe.
	Kind    string
	Healthy bool
	// Detail says what was seen, on one line and without secrets: "HTTP
	// 200 in 35ms", "connection refused", "timed out after 5s".
	Detail string
	// Duration is how long the probe took.
	Duration time.Duration
}

// Options are what the probes take from outside the lab file.
type Options struct {
	// LookupEnv reads homelab's own environment: password_env, dsn_env
	// and the DOCKER_* variables passed to docker. Default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Docker is the docker CLI the container probe runs. Default "docker".
	Docker string
	// Env is NAME=value entries added to the command probe's environment
	// (a drill gives its application's probe the throwaway instance's
	// HOMELAB_DRILL_* variables); Secrets are values redacted from its
	// detail.
	Env, Secrets []string
}

func (o Options) lookupEnv(name string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

// unhealthy is a probe's verdict that a service is not healthy: its text
// is the Result's detail as is.
type unhealthy string

func (e unhealthy) Error() string { return string(e) }

func unhealthyf(format string, args ...any) error { return unhealthy(fmt.Sprintf(format, args...)) }

// CheckAll probes every service of services that has a health probe, all
// at once, each bounded by its own timeout: it returns after about the
// slowest probe's time. Results are sorted by service name; services
// without a probe are left out.
func CheckAll(ctx context.Context, services map[string]*lab.Service, o Options) []Result {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if s := services[name]; s != nil && s.Health.Kind() != "" {
			names = append(names, name)
		}
	}
	results := make([]Result, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			results[i] = Probe(ctx, services[name], o)
			results[i].Service = name
		})
	}
	wg.Wait()
	return results
}

// Probe runs the health probe of s, bounded by the probe's timeout (and
// ctx). A service without a probe gives an unhealthy Result of Kind ""
// saying so.
func Probe(ctx context.Context, s *lab.Service, o Options) Result {
	r := Result{Service: s.Name, Kind: s.Health.Kind()}
	var run func(context.Context) (string, error)
	switch h := s.Health; r.Kind {
	case lab.ProbeHTTP:
		run = func(ctx context.Context) (string, error) { return probeHTTP(ctx, h.HTTP) }
	case lab.ProbeTCP:
		run = func(ctx context.Context) (string, error) { return probeTCP(ctx, h.TCP) }
	case lab.ProbePostgres:
		run = func(ctx context.Context) (string, error) { return probePostgres(ctx, h.Postgres, o) }
	case lab.ProbeCommand:
		run = func(ctx context.Context) (string, error) { return probeCommand(ctx, h.Command, o) }
	case lab.ProbeContainer:
		run = func(ctx context.Context) (string, error) { return probeContainer(ctx, h.Container, o) }
	default:
		r.Detail = "no health probe"
		return r
	}
	timeout := s.Health.Timeout()
	if timeout <= 0 {
		timeout = lab.DefaultProbeTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	detail, err := run(pctx)
	r.Duration = time.Since(start)
	switch {
	case err == nil:
		r.Healthy, r.Detail = true, detail
	case ctx.Err() != nil:
		r.Detail = "interrupted"
	case errors.Is(pctx.Err(), context.DeadlineExceeded):
		r.Detail = "timed out after " + timeout.String()
	default:
		r.Detail = describe(err)
	}
	r.Detail = clip(r.Detail, maxDetail)
	return r
}

// describe turns a probe's error into a short detail: the cause a person
// acts on, without the URL or address the lab file already shows.
func describe(err error) string {
	var (
		u   unhealthy
		dns *net.DNSError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		ue  *url.Error
	)
	switch {
	case errors.As(err, &u):
		return string(u)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "no such host " + dns.Name
	case errors.As(err, &ua):
		return "TLS: certificate signed by unknown authority"
	case errors.As(err, &hn):
		return "TLS: " + hn.Error()
	case errors.As(err, &ci):
		return "TLS: " + ci.Error()
	case errors.As(err, &ue):
		return ue.Err.Error() // without the URL, which may hold a token in its query
	}
	return err.Error()
}

// ms formats a probe's measured time: "850µs", "35ms", "1.2s".
func ms(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// clip puts s on one line and cuts it to n runes.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// lastLine is the last non-blank line of s, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
