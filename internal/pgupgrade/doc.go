// Package pgupgrade drives PostgreSQL's own tools for a major upgrade of a
// cluster with pg_upgrade: it reads the old cluster's settings (psql,
// pg_controldata), lists its extensions and the ones the new major has,
// makes the new cluster with initdb, runs `pg_upgrade --check` and
// `pg_upgrade` (--clone, --copy or --link), carries the configuration
// over, and runs `vacuumdb --all --analyze-in-stages` and pg_upgrade's
// update_extensions.sql. It knows nothing of sagas or of the lab's
// services: package upgrade walks the upgrade with it.
//
// Every command goes through execx.Run, as Tools.Cred when set (the
// tools refuse to run as root), connecting over the cluster's Unix socket
// as Tools.User (the socket directory and port are read from the running
// cluster's postmaster.pid), so no password is involved. Sources: the
// pg_upgrade, initdb, pg_controldata, vacuumdb and postgres reference
// pages of the PostgreSQL 17 documentation.
package pgupgrade
