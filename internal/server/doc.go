// Package server is the HTTP side of `homelab serve`: a status page for
// people (server-rendered HTML that reads on a phone and reloads itself),
// a JSON API for programs and a Prometheus /metrics endpoint for
// monitoring.
//
// Everything it shows is read from the lab file and the catalog at request
// time, so the page, the API and the metrics agree with `homelab status`
// and with runs made by the CLI while the daemon runs. A scraped daemon
// asks the same of an unchanged catalog every few seconds, so what is
// read from it is cached until it changes: the SQLite catalog is read
// through a catalog.Cache, whose PRAGMA data_version check sees every
// commit, this daemon's and other processes'; one request's reads ask
// it once (catalog.Pinner). What depends on the time (ages, overdue
// targets) is worked out again for every page from the cached summaries,
// and a page whose every value equals the previous one's, but for the
// texts that change with the clock alone (the time it is "as of", ages),
// is not rendered again: those texts are filled into the pieces of the
// last rendering.
//
// /metrics (metricsHandler) sends homelab's own metrics, encoded at an
// earlier scrape, again for as long as nothing they depend on can have
// changed: the lab, the catalog's version, the clock's zone, and the
// clock before the next target's DueBy (or after an overdue one's); with
// an upgrade unfinished they are read at every scrape, since they depend
// on its lock files then. The Go runtime's and the process's metrics are
// live: read at every scrape, the process's by a collector that reads
// only what can change (processCollector).
//
// The services' health on the page and in /api/v1/status comes from
// probing them (internal/health), all at once, while the catalog is read.
// One round of probes is shared by every request that arrives while it
// runs and reused for Options.HealthTTL (5s by default), so that a wall of
// browsers and scripts polling the daemon cannot flood the services with
// probes; a request waits at most for the slowest probe's timeout.
//
// # Routes
//
//	GET /                 status page (html/template, inline CSS, no JavaScript)
//	GET /api/v1/status    the status report, as `homelab status --json` prints it
//	GET /api/v1/runs      catalog runs: ?target=&kind=&result=&limit= (limit 1..1000, default 50)
//	GET /metrics          Prometheus metrics (see [Collector])
//	GET /healthz          "ok", never authenticated
//
// # Authentication
//
// With a token set, every route but /healthz needs either the header
// "Authorization: Bearer <token>" or HTTP Basic authentication with any
// user name and the token as password, which lets a phone's browser log
// in. Without a token the server refuses to listen anywhere but on a
// loopback address ([ErrInsecureBind]).
package server
