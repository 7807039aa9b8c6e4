#!/usr/bin/env bash
# pgbackrest-overhead.sh: what does homelab cost over bare pgBackRest? In
# one run, on one throwaway cluster (pgbench scale $PGBENCH_SCALE):
#
#  (a) `homelab backup run db --type full` vs bare `pgbackrest backup
#      --type=full` with an equivalent configuration of its own (same
#      process-max, its own stanza and repository, so neither side's
#      repository favours the other); the goal is <= 1.03;
#  (b) the drill, `homelab backup verify db` (restore the newest backup into
#      a temporary directory, start it on a free port, await promotion, run
#      one SQL check, stop, remove) vs the same by hand of the same backup
#      set: pgbackrest restore, pg_ctl start, a wait for pg_controldata's
#      "in production", the psql check, pg_ctl stop, rm; the goal is <= 1.1.
#
# The cluster archives every WAL segment into both stanzas (archive_command
# runs both archive-push commands). The drill by hand restores the same
# backup set from the same repository as homelab's (the newest of stanza
# hl, with homelab's pgbackrest.conf), so both recover the same WAL: from
# separate stanzas, the side whose backup ran first would also replay the
# other backup's segments, one archive-get each. Rounds alternate which
# side goes first; each side starts after a sync(1), so that neither pays
# for the write-back of the one before (a 750 MiB restore and its
# removal). Reported: medians in seconds, ratio = homelab / bare of the
# medians, and the median of the per-round ratios (steadier on a machine
# whose load drifts). It never asserts.
#
# Environment:
#   N               rounds (default 3)
#   PGBENCH_SCALE   pgbench scale (default 50)
#   BENCH_DIR       work directory (default /var/tmp/homelab-bench-pgbackrest; wiped)
#   BENCH_KEEP=1    leave the cluster and work directory in place
# Needs root (the cluster and pgbackrest run as postgres), pgbackrest, and
# PostgreSQL (scripts/install-deps.sh).
set -euo pipefail

readonly MARKER=.homelab-bench

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

as_pg() { runuser -u postgres -- "$@"; }

homelab_run() {
	"$HOMELAB" --lab "$WORK/lab.yaml" "$@" >>"$WORK/homelab.log" 2>&1
}

bare() {
	as_pg pgbackrest --config="$WORK/bare/pgbackrest.conf" --stanza=bare "$@" >>"$WORK/bare.log" 2>&1
}

t_homelab_backup() {
	local t0
	t0=$(now)
	homelab_run backup run db --type full
	elapsed "$t0"
}

t_bare_backup() {
	local t0
	t0=$(now)
	bare --type=full backup
	elapsed "$t0"
}

t_homelab_drill() {
	local t0
	t0=$(now)
	homelab_run backup verify db
	elapsed "$t0"
}

# The drill by hand, as an operator would script it, of homelab's newest
# backup set.
hl_repo() {
	as_pg pgbackrest --config="$WORK/state/pgbackrest/db/pgbackrest.conf" --stanza=hl "$@" >>"$WORK/bare.log" 2>&1
}

t_bare_drill() {
	local t0 dir=$WORK/bare-drill port
	port=$(free_port)
	t0=$(now)
	rm -rf "$dir"
	mkdir -m 0700 "$dir"
	chown postgres: "$dir"
	hl_repo --pg1-path="$dir" --archive-mode=off restore
	as_pg tee -a "$dir/postgresql.auto.conf" >/dev/null <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
EOF
	printf 'local all all trust\n' | as_pg tee "$dir/pg_hba.conf" >/dev/null
	as_pg "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
	until LC_ALL=C as_pg "$BIN/pg_controldata" -D "$dir" | grep -q 'cluster state: *in production'; do
		sleep 0.1
	done
	[ "$(psql -XAtq -h "$dir" -p "$port" -U postgres -d postgres -c 'select count(*) > 0 from pgbench_accounts')" = t ]
	as_pg "$BIN/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null
	rm -rf "$dir"
	elapsed "$t0"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

measure() {
	sync
	case $1 in
	hb) t_homelab_backup ;;
	bb) t_bare_backup ;;
	hd) t_homelab_drill ;;
	bd) t_bare_drill ;;
	*) die "unknown side $1" ;;
	esac
}

setup() {
	fresh_workdir
	build_homelab
	BIN=$(dirname "$(readlink -f "$(find /usr/lib/postgresql -name pg_ctl -path '*/bin/*' | sort -V | tail -n1)")")
	mkdir -p "$WORK/state" "$WORK/bare" "$WORK/repo-hl" "$WORK/repo-bare"
	chmod 0755 "$WORK/state"
	chown postgres: "$WORK/bare" "$WORK/repo-hl" "$WORK/repo-bare"
	chmod 0700 "$WORK/repo-hl" "$WORK/repo-bare"

	log "starting the throwaway cluster (pgbench scale ${PGBENCH_SCALE:-50})"
	PORT=$("$REPO/scripts/pg-throwaway.sh" start "$WORK/pg")
	PGPASSWORD=$(<"$WORK/pg/pgpass.password")
	export PGPASSWORD PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres
	cat >"$WORK/lab.yaml" <<EOF
# Written by bench/pgbackrest-overhead.sh.
name: bench
state_dir: ./state
backups:
  db:
    provider: pgbackrest
    retention: {keep_last: 100}
    pgbackrest:
      stanza: hl
      cluster: {data_dir: $WORK/pg/data, port: $PORT, socket_dir: $WORK/pg, os_user: postgres}
      repo: {path: $WORK/repo-hl}
      process_max: 2
    drill: {checks: [{sql: "select count(*) > 0 from pgbench_accounts"}]}
EOF
	"$HOMELAB" --lab "$WORK/lab.yaml" lab validate >&2
	local hl_push
	hl_push="pgbackrest --config=$WORK/state/pgbackrest/db/pgbackrest.conf --config-include-path=$WORK/state/pgbackrest/db/conf.d --stanza=hl archive-push %p"
	as_pg tee "$WORK/bare/pgbackrest.conf" >/dev/null <<EOF
[global]
repo1-path=$WORK/repo-bare
repo1-retention-full=9999999
process-max=2
start-fast=y
lock-path=$WORK/bare/lock
log-path=$WORK/bare/log
log-level-file=off
spool-path=$WORK/bare/spool

[bare]
pg1-path=$WORK/pg/data
pg1-port=$PORT
pg1-socket-path=$WORK/pg
pg1-user=postgres
EOF
	chmod 0600 "$WORK/bare/pgbackrest.conf"
	psql -XAtq -v ON_ERROR_STOP=1 -d postgres \
		-c "alter system set archive_mode = on" \
		-c "alter system set archive_command = '$hl_push && pgbackrest --config=$WORK/bare/pgbackrest.conf --stanza=bare archive-push %p'" >&2
	# pgbackrest connects over the socket as postgres: peer, like Debian.
	as_pg sed -i '1i local all postgres peer' "$WORK/pg/data/pg_hba.conf"
	"$REPO/scripts/pg-throwaway.sh" stop "$WORK/pg"
	"$REPO/scripts/pg-throwaway.sh" start "$WORK/pg" >/dev/null

	# Both stanzas before either check (archive_command pushes to both),
	# and both before pgbench: WAL that fails to archive (no stanza yet)
	# sends the archiver into its back-off, and check gives up after 60 s.
	bare stanza-create
	homelab_run backup setup db || { cat "$WORK/homelab.log" >&2; die "homelab backup setup failed"; }
	bare check
	pgbench -i -q -s "${PGBENCH_SCALE:-50}" postgres >&2
	DB_SIZE=$(psql -XAtq -d postgres -c 'select pg_database_size(current_database())')
	wait_archived
}

# wait_archived: until the archiver has pushed every WAL segment pgbench
# wrote (none left .ready), so that the first backup does not wait behind
# them for its own.
wait_archived() {
	local i
	for i in $(seq 1 900); do
		[ "$(psql -XAtq -d postgres -c "select count(*) from pg_ls_dir('pg_wal/archive_status') f where f like '%.ready'")" = 0 ] && return 0
		sleep 1
	done
	die "WAL segments still waiting to be archived after 15 minutes"
}

main() {
	[ "$(id -u)" -eq 0 ] || die "run as root (the cluster and pgbackrest run as postgres)"
	command -v pgbackrest >/dev/null || die "pgbackrest not found; run scripts/install-deps.sh"
	REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
	WORK=${BENCH_DIR:-/var/tmp/homelab-bench-pgbackrest}
	case $WORK in /*) ;; *) WORK=$PWD/$WORK ;; esac
	[ "$WORK" != / ] || die "BENCH_DIR must not be /"
	HOMELAB=$WORK/bin/homelab
	local n=${N:-3}
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number, got '$n'"

	setup
	local -A S=()
	local r side
	for r in $(seq 1 "$n"); do
		local order=(hb bb hd bd)
		if [ $((r % 2)) -eq 0 ]; then
			order=(bb hb bd hd)
		fi
		for side in "${order[@]}"; do
			S[$side]+=" $(measure "$side")"
		done
		log "round $r/$n: backup: homelab ${S[hb]##* }s, bare ${S[bb]##* }s; drill: homelab ${S[hd]##* }s, bare ${S[bd]##* }s"
	done

	local m1 m2
	printf '\nhomelab pgbackrest overhead vs bare pgBackRest: median of %d rounds, seconds; ratio = homelab / bare\n' "$n"
	printf '%s; database: %s (pgbench scale %s); load average at the end: %s\n\n' "$(pgbackrest version)" "$(mib "$DB_SIZE")" "${PGBENCH_SCALE:-50}" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%-62s %8s %8s %7s %7s\n' "case" "homelab" "bare" "ratio" "paired"
	row() {
		# shellcheck disable=SC2086 # the samples are space-separated on purpose
		m1=$(median ${S[$2]}) m2=$(median ${S[$3]})
		printf '%-62s %8s %8s %7s %7s\n' "$1" "$m1" "$m2" "$(ratio "$m1" "$m2")" "$(paired_ratio "${S[$2]}" "${S[$3]}")"
	}
	row "full backup: backup run --type full vs pgbackrest backup" hb bb
	row "drill: backup verify vs restore + pg_ctl start + check + stop" hd bd
	printf 'samples (s), in round order:\n  backup: homelab%s | bare%s\n  drill: homelab%s | bare%s\n' "${S[hb]}" "${S[bb]}" "${S[hd]}" "${S[bd]}"

	stop_cluster_and_clean
}

main "$@"
