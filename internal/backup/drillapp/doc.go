// Package drillapp is a restore drill's application check (the lab
// file's drill.app, lab.DrillApp): after the SQL checks, the target's
// application is started against the drill's throwaway PostgreSQL
// instance, its probe (internal/health) is retried until it passes or
// drill.app.within has passed, and the application is always stopped:
// its stop command, then SIGTERM and SIGKILL to its start command's
// process group (execx.Start).
//
// The instance's address and credentials reach the commands only in
// their environment (HOMELAB_DRILL_PGHOST, ..._PGPORT, ..._PGDATABASE,
// ..._PGUSER, ..._PGPASSWORD): the password is made for the drill, set on
// the instance's user as a SCRAM-SHA-256 verifier (the password itself
// never reaches the server or its log), and accepted from 127.0.0.1 only,
// for that user only (HBALine). It is redacted from the application's output.
//
// The providers whose drills have an instance of their own call Run:
// pgbackrest, and postgres with drill.instance: throwaway.
package drillapp
