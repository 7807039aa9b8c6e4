#!/usr/bin/env bash
# restore-overhead.sh: what does a homelab database restore cost over the
# bare tools? In one run:
#
#   homelab backup restore latest --target db --database X --yes
# vs the by-hand way it wraps (DESIGN.md: recover with the plain tools):
#   createdb X; restic dump latest --tag homelab,target:db /bench.dump | pg_restore --dbname X
#
# Both sides restore the same snapshot of the same repository into a new
# database X, dropped (outside the timing) before each run. N rounds, each
# running both sides once, in alternating order. Reported: medians in
# seconds and ratio = homelab/bare (issue 12's goal: <= 1.03). It never
# asserts: numbers depend on the machine; the ratio is what to watch.
#
# Then one traced homelab restore: HOMELAB_RESTIC points at a wrapper that
# logs each restic call (argv and wall time), so the costs homelab adds
# (restic calls beyond the dump, and the rest: catalog opens, PostgreSQL
# connections, process start) are listed.
#
# Setup (in a fresh ${BENCH_DIR:-/var/tmp/homelab-restore-bench}): builds
# homelab, starts a throwaway cluster (scripts/pg-throwaway.sh) with sample
# data (scripts/load-sample-data.sh, pgbench scale $PGBENCH_SCALE) and takes
# one homelab backup of it. The cluster is stopped at the end unless
# BENCH_KEEP=1.
#
# Environment:
#   N               rounds (default 5)
#   PGBENCH_SCALE   pgbench scale of the sample database (default 10)
#   BENCH_DIR       work directory (default /var/tmp/homelab-restore-bench; wiped)
#   BENCH_KEEP=1    leave the cluster and work directory in place
#   HOMELAB_RESTIC  the restic binary for both sides (default: restic on PATH)
set -euo pipefail

readonly MARKER=.homelab-bench

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# psql_admin SQL: runs SQL on the cluster's postgres database.
psql_admin() {
	psql -XAtq -v ON_ERROR_STOP=1 "${PG_CONN[@]}" --dbname postgres -c "$1" >/dev/null
}

drop_dest() { psql_admin "drop database if exists $DEST"; }

# The measured operations. Each prints its wall time in seconds.
t_homelab() {
	local t0
	t0=$(now)
	homelab_run backup restore latest --target db --database "$DEST" --yes
	elapsed "$t0"
}

t_bare() {
	local t0
	t0=$(now)
	createdb "${PG_CONN[@]}" "$DEST"
	"$RESTIC" --password-file "$WORK/restic.pass" -r "$WORK/repo" dump --tag homelab,target:db latest /bench.dump 2>>"$WORK/bare.log" |
		pg_restore --exit-on-error "${PG_CONN[@]}" --dbname "$DEST" >>"$WORK/bare.log" 2>&1
	elapsed "$t0"
}

# measure SIDE: drops the destination, runs one side once and prints its
# wall time.
measure() {
	drop_dest
	case $1 in
	h) t_homelab ;;
	b) t_bare ;;
	*) die "unknown side $1" ;;
	esac
}

setup() {
	fresh_workdir
	build_homelab

	log "starting the throwaway cluster and loading sample data (pgbench scale ${PGBENCH_SCALE:-10})"
	PORT=$("$REPO/scripts/pg-throwaway.sh" start "$WORK/pg")
	PGBENCH_SCALE=${PGBENCH_SCALE:-10} "$REPO/scripts/load-sample-data.sh" "$WORK/pg" bench >&2
	PGPASSWORD=$(<"$WORK/pg/pgpass.password")
	export PGPASSWORD
	PG_CONN=(--host 127.0.0.1 --port "$PORT" --username postgres --no-password)
	DB_SIZE=$(psql -XAtq -v ON_ERROR_STOP=1 "${PG_CONN[@]}" --dbname bench -c 'select pg_database_size(current_database())')

	(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32 >"$WORK/restic.pass")
	cp "$WORK/pg/pgpass.password" "$WORK/pg.password"
	chmod 0600 "$WORK/pg.password"
	cat >"$WORK/lab.yaml" <<EOF
# Written by bench/restore-overhead.sh.
name: bench
state_dir: ./state
repositories:
  local: {url: ./repo, password_file: ./restic.pass}
backups:
  db:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: $PORT, database: bench, user: postgres, password_file: ./pg.password}
    schedule: "0 2 * * *"
    retention: {keep_last: 3}
EOF
	"$HOMELAB" --lab "$WORK/lab.yaml" lab validate >&2
	log "taking one homelab backup"
	homelab_run repo init local
	homelab_run backup run db
	DUMP_SIZE=$("$RESTIC" --password-file "$WORK/restic.pass" -r "$WORK/repo" --no-lock ls --json latest /bench.dump |
		sed -n 's/.*"path":"\/bench.dump".*"size":\([0-9]*\).*/\1/p' | head -n1)

	# Warm the page cache (repository, restic's cache) so round 1 is not
	# penalised for reading the repository for the first time.
	log "warming caches"
	"$RESTIC" --password-file "$WORK/restic.pass" -r "$WORK/repo" dump --tag homelab,target:db latest /bench.dump >/dev/null 2>>"$WORK/bare.log"
}

# trace: one homelab restore with a restic wrapper that logs every call,
# then the list of restic calls and the time homelab spent outside them.
trace() {
	local wrapper=$WORK/restic-trace tlog=$WORK/restic-trace.log
	cat >"$wrapper" <<EOF
#!/usr/bin/env bash
# Logs each restic call: start, end (seconds), argv; then its exit code.
s=\$(date +%s.%N)
"$RESTIC" "\$@"
rc=\$?
printf '%s %s rc=%s %s\n' "\$s" "\$(date +%s.%N)" "\$rc" "\$*" >>"$tlog"
exit \$rc
EOF
	chmod 0755 "$wrapper"
	: >"$tlog"
	drop_dest
	local t0 total
	t0=$(now)
	HOMELAB_RESTIC=$wrapper homelab_run backup restore latest --target db --database "$DEST" --yes
	total=$(elapsed "$t0")
	printf '\none traced homelab restore: %ss in all; its restic calls:\n' "$total"
	awk -v t0="$t0" '{ s = $1; e = $2; $1 = ""; $2 = "";
		printf "  +%.3fs %6.3fs  restic%s\n", s - t0, e - s, $0; sum += e - s }
		END { printf "  restic in all: %.3fs\n", sum }' "$tlog"
	awk -v t0="$t0" -v total="$total" '{ sum += $2 - $1 } END {
		printf "  outside restic calls: %.3fs (process start, lab file, catalog, PostgreSQL connections, createdb, and pg_restore finishing after the dump)\n", total - sum }' "$tlog"
}

main() {
	bench_init /var/tmp/homelab-restore-bench # both sides run the same restic
	local n=${N:-5}
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number, got '$n'"
	DEST=bench_restored

	setup
	local -A S=()
	alternate_rounds "$n" h homelab b bare

	local mh mb
	# shellcheck disable=SC2086 # the samples are space-separated on purpose
	mh=$(median ${S[h]}) mb=$(median ${S[b]})
	printf '\nhomelab database restore overhead vs the bare tools: median of %d rounds, seconds; ratio = homelab / bare\n' "$n"
	printf 'restic %s; database bench: %s (pgbench scale %s), dump %s\n\n' \
		"$("$RESTIC" version | awk '{ print $2 }')" "$(mib "$DB_SIZE")" "${PGBENCH_SCALE:-10}" "$(mib "${DUMP_SIZE:-0}")"
	printf '%-70s %8s %8s %7s\n' "case" "homelab" "bare" "ratio"
	printf '%-70s %8s %8s %7s\n' "restore latest into a new database vs createdb + restic dump | pg_restore" "$mh" "$mb" "$(ratio "$mh" "$mb")"
	printf 'samples (s), in round order: homelab%s | bare%s\n' "${S[h]}" "${S[b]}"

	trace

	drop_dest
	stop_cluster_and_clean
}

main "$@"
