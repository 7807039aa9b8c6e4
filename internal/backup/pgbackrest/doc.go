// Package pgbackrest is the "pgbackrest" backup provider: physical
// full/diff/incr backups of a PostgreSQL cluster with continuous WAL
// archiving and point-in-time recovery, all done by pgBackRest (>= 2.45).
//
// homelab writes the pgBackRest configuration of each target itself
// (state_dir/pgbackrest/<target>/pgbackrest.conf, mode 0600, owned by the
// cluster's OS user) and runs every pgbackrest command with --config
// pointing at it. The repository is a local path or a prefix of an S3
// bucket (repo1-type=s3 over https, path-style URIs; s3.go). The secrets
// (the cipher passphrase, the S3 keys) reach homelab's own pgbackrest
// commands only in their environment, as PGBACKREST_REPO1_CIPHER_PASS,
// PGBACKREST_REPO1_S3_KEY and PGBACKREST_REPO1_S3_KEY_SECRET; the
// server's archive_command and a restored cluster's restore_command,
// which homelab does not start, read them from conf.d/secrets.conf beside
// the configuration (0600, the OS user's), named by --config-include-path
// in those commands only.
//
// Run as root, homelab runs pgbackrest, pg_ctl and the drill's throwaway
// server as the cluster's OS user with runuser(1), which keeps the
// environment.
//
// Snapshots are pgBackRest backup sets: the ID is the label
// (20261206-104100F, ...F_20261206-120000I), the time the backup's start,
// Bytes the cluster's size, Added what the backup added to the repository;
// the tags say the type (type:full), the set it depends on (prior:LABEL)
// and the WAL range (wal:START-STOP).
//
// Retention is pgBackRest's own expire, driven by homelab: the
// configuration sets repo1-retention-full to its maximum so that a backup
// never expires anything by itself, and prune runs `expire --set LABEL`
// for each full backup beyond keep_last (its diff and incr backups go with
// it, and so do the WAL segments that no remaining backup needs). The
// floor: a full backup that a protected backup (the newest one that passed
// a drill, a saga's restore point) depends on is never expired.
package pgbackrest
