// Package pgmajor is the end-to-end test of PostgreSQL major upgrades
// (`homelab upgrade db --to 17`, pg_upgrade): a real 15 cluster with data
// upgraded to 17 and finalized; an upgrade refused by its preflight (an
// extension PostgreSQL 17 lacks); one rolled back because a dependent
// fails its health gate on 17, in copy mode and in link mode (the old
// cluster rebuilt from the restore point); and homelab killed with
// SIGKILL during pg_upgrade, then --resume. PostgreSQL 15 and 17 run from the root of
// scripts/build-pg-majors-root.sh (testenv.PGMajors).
package pgmajor
