// Package doctor checks a lab for what operators otherwise find at 3 AM
// (`homelab doctor`): on each PostgreSQL server of the lab's backup
// targets, collation version mismatches, tables without planner
// statistics (a freshly upgraded cluster), extensions with an update
// available and invalid indexes; applications whose migrations are
// pending; stale restic locks and repositories without a recovery key;
// unfinished sagas; restore drills older than their schedule allows;
// certificates that need attention; and the pgBackRest configurations
// (with their repositories' secrets) of targets gone from the lab.
//
// Run returns Findings: what is wrong (Problem), about what (Subject),
// and the command that fixes it (Fix). Findings with Auto set are the
// safe fixes that Fix applies (the SQL statements in Finding.SQL, or
// restic unlock of stale locks); the others need a decision and are left
// to the command named. doctor prints nothing: the CLI renders.
//
// PostgreSQL servers are the sources of the lab's postgres targets
// (host, port, user, password by reference) and the clusters of its
// pgbackrest targets (socket directory, port, user); doctor connects as
// those roles, to every database they may connect to (template0 aside),
// so what a role may not see or change is left out or fails its fix
// with PostgreSQL's reason.
package doctor
