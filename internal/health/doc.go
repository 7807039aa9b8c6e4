// Package health probes the services of a lab: is the service up and
// answering, right now?
//
// Each service's health section (lab.Health) holds one probe:
//
//   - http: a GET (redirects not followed) must answer with the expected
//     status (default 200 to 399) and, optionally, a body containing a
//     string (the first MiB is read); https may trust a lab's own CA from
//     a PEM file instead of the system's;
//   - tcp: a TCP connection must open;
//   - postgres: a connection (pgx) must open and a query return true or 1;
//     the password comes from an environment variable or a file, or the
//     whole connection string does;
//   - command: `sh -c RUN` must exit 0 (through internal/execx); the last
//     line of its stderr says why not;
//   - container: `docker inspect` must show the container running and, if
//     its image has a HEALTHCHECK, Docker's own verdict healthy.
//
// [Probe] runs one probe bounded by its timeout and returns a [Result]
// whose Detail is one short line ("HTTP 200 in 35ms", "connection
// refused", "timed out after 5s") that never holds a secret: passwords
// and connection strings are redacted from it, and URLs are not repeated.
// [CheckAll] probes every service at once, so that it takes about as
// long as the slowest probe, not the sum of them.
package health
