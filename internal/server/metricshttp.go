package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"homelab/internal/catalog"
	"homelab/internal/lab"
)

// metricsHandler serves /metrics as promhttp.HandlerFor over one registry
// of all the metrics would, with ErrorHandling HTTPErrorOnError and no
// OpenMetrics: the same families in the same order (sorted by name), the
// format negotiated from Accept (expfmt.Negotiate), gzip when
// Accept-Encoding prefers it, and promhttp_metric_handler_errors_total.
// What differs is the cost of a scrape (and that the body is sent in one
// write with its Content-Length, so an encoding error is a 500 too):
//
//   - The live metrics, the Go runtime's (collectors.NewGoCollector) and
//     the process's (processCollector, a cheaper equal of the library's),
//     are gathered and encoded at every scrape.
//   - homelab's own (the Collector's: about 400 series with 50 targets)
//     are gathered and encoded again only when something they depend on
//     may have changed since the last scrape: the lab (a reload), the
//     catalog (its catalog.Versioned version: a run, a drill, an event
//     written by the daemon or by the CLI), the clock's zone, or the
//     clock past the validity of the last values (validity: a target
//     falling overdue at its DueBy). While an upgrade is unfinished (its
//     gauge depends on lock files) and over a catalog that is not a
//     catalog.Versioned, they are gathered at every scrape. Otherwise the
//     bytes of the last scrape in the negotiated format are sent again:
//     that saves reading the catalog's summaries, classifying every
//     target, building and checking the metrics and encoding them, most
//     of a scrape's cost.
type metricsHandler struct {
	live  *prometheus.Registry // the live collectors, and errs
	own   *prometheus.Registry // the Collector alone
	c     *Collector
	store catalog.Versioned // nil: no version to tell a change by
	errs  *prometheus.CounterVec
	log   *slog.Logger

	mu     sync.Mutex // held while the Collector's metrics are read and encoded
	key    ownKey
	valid  validity                      // of the families under key
	mfs    []*dto.MetricFamily           // the Collector's families under key; nil: none
	bodies map[expfmt.Format][]ownFamily // and their encodings, by format
}

// ownFamily is one of the Collector's families, encoded in one format.
type ownFamily struct {
	name string
	body []byte
}

// ownKey is what the Collector's metrics depend on besides the clock's
// time (and, while an upgrade is unfinished, lock files).
type ownKey struct {
	lab     *lab.Lab
	version uint64
	loc     *time.Location
}

// newMetricsHandler returns the /metrics handler of c (which no other
// registry may hold) over store, logging errors to log.
func newMetricsHandler(c *Collector, store catalog.Store, log *slog.Logger, live ...prometheus.Collector) (*metricsHandler, error) {
	h := &metricsHandler{live: prometheus.NewRegistry(), own: prometheus.NewRegistry(), c: c, log: log}
	h.store, _ = store.(catalog.Versioned)
	h.errs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promhttp_metric_handler_errors_total",
		Help: "Total number of internal errors encountered by the promhttp metric handler.",
	}, []string{"cause"})
	h.errs.WithLabelValues("gathering")
	h.errs.WithLabelValues("encoding")
	if err := h.live.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := h.live.Register(newProcessCollector()); err != nil {
		return nil, err
	}
	if err := h.live.Register(h.errs); err != nil {
		return nil, err
	}
	for _, l := range live {
		if err := h.live.Register(l); err != nil {
			return nil, err
		}
	}
	if err := h.own.Register(c); err != nil {
		return nil, err
	}
	return h, nil
}

// ownPrefix starts the names of the Collector's metrics (and of the live
// host and certificate metrics: the families of both registries are
// merged by name, as one registry's Gather sorts them).
const ownPrefix = "homelab_"

// gzipPool holds gzip writers (each holds some 800 KB of state).
var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.Negotiate(r.Header)
	own, cause, err := h.ownBody(format)
	if err != nil {
		h.fail(w, cause, err)
		return
	}
	live, err := h.live.Gather()
	if err != nil {
		h.fail(w, "gathering", err)
		return
	}
	// The body is put together in memory and sent in one write, with its
	// Content-Length: written to w family by family, it would go out in
	// chunks of a few KB, a system call each.
	body := bodyPool.Get().(*bytes.Buffer)
	body.Reset()
	defer bodyPool.Put(body)
	var out io.Writer = body
	gzipped := acceptsGzip(r.Header)
	if gzipped {
		gz := gzipPool.Get().(*gzip.Writer)
		gz.Reset(body)
		defer gzipPool.Put(gz)
		out = gz
	}
	enc := expfmt.NewEncoder(out, format)
	for len(live) > 0 || len(own) > 0 {
		if len(own) > 0 && (len(live) == 0 || own[0].name < live[0].GetName()) {
			out.Write(own[0].body) // to memory: no error
			own = own[1:]
			continue
		}
		if err := enc.Encode(live[0]); err != nil {
			h.fail(w, "encoding", fmt.Errorf("encode %s: %w", live[0].GetName(), err))
			return
		}
		live = live[1:]
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		if err := closer.Close(); err != nil {
			h.fail(w, "encoding", err)
			return
		}
	}
	if gzipped {
		out.(*gzip.Writer).Close() // to memory: no error
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Type", string(format))
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.Write(body.Bytes()) // an error means the client is gone
}

// bodyPool holds the buffers /metrics bodies are put together in.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ownBody is the Collector's metrics encoded in format: the last ones
// when they still hold (see metricsHandler). An error comes with its
// cause for promhttp_metric_handler_errors_total: gathering or encoding.
func (h *metricsHandler) ownBody(format expfmt.Format) ([]ownFamily, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var key ownKey
	cache := h.store != nil
	if cache {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		// The version is read before the metrics are: a change made while
		// they are read is seen at the next scrape, never hidden under key.
		v, err := h.store.Version(ctx)
		if err != nil {
			return nil, "gathering", fmt.Errorf("read catalog: %w", err)
		}
		now := h.c.now()
		key = ownKey{lab: h.c.lab(), version: v, loc: now.Location()}
		if key != h.key || !h.valid.holds(now) {
			h.mfs, h.bodies = nil, nil
		}
	} else {
		h.mfs, h.bodies = nil, nil
	}
	if b, ok := h.bodies[format]; ok {
		return b, "", nil
	}
	if h.mfs == nil {
		mfs, err := h.own.Gather()
		if err != nil {
			return nil, "gathering", err
		}
		h.c.mu.Lock()
		valid := h.c.valid // of the values just gathered: the lock is h.mu's
		h.c.mu.Unlock()
		h.mfs, h.key, h.valid, h.bodies = mfs, key, valid, map[expfmt.Format][]ownFamily{}
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, format)
	fams := make([]ownFamily, 0, len(h.mfs))
	for _, mf := range h.mfs {
		start := b.Len()
		if err := enc.Encode(mf); err != nil {
			return nil, "encoding", fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
		fams = append(fams, ownFamily{name: mf.GetName(), body: b.Bytes()[start:]})
	}
	if cache {
		h.bodies[format] = fams
	}
	return fams, "", nil
}

// fail answers a scrape whose metrics could not be gathered or encoded
// as promhttp does: 500 with the error, which names what failed.
func (h *metricsHandler) fail(w http.ResponseWriter, cause string, err error) {
	h.log.Error("error serving metrics", "cause", cause, "err", err)
	h.errs.WithLabelValues(cause).Inc()
	http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
}

// acceptsGzip says whether the Accept-Encoding of h prefers gzip to no
// encoding, as promhttp negotiates it: gzip's quality (or *'s) is above 0
// and above identity's (or *'s, when identity is not named).
func acceptsGzip(h http.Header) bool {
	qGzip, qIdentity := -1.0, -1.0
	for _, v := range h.Values("Accept-Encoding") {
		for spec := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(spec, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			if name == "gzip" || name == "*" {
				qGzip = max(qGzip, q)
			}
			if name == "identity" || name == "*" {
				qIdentity = max(qIdentity, q)
			}
		}
	}
	return qGzip > 0 && qGzip > qIdentity
}
