// Package logs reads a service's logs from wherever its runtime keeps
// them, for `homelab logs`: a log file (read the way tail(1) -F reads one,
// across rotation), a Docker Compose service (`docker compose logs`), or a
// systemd unit's journal (`journalctl -o json`).
//
// Every source is a Source: Stream delivers Lines (text and, when known,
// time) in order, honouring Options (the last N lines, lines since a time,
// and following new lines until the context ends). For picks the source of
// a service of the lab file.
//
// Adding a source (Loki's query and tail API would be the next one): a
// type with Stream and
// String, a case in For, and a harness for the shared conformance suite
// (conformance_test.go), which every source runs.
package logs
