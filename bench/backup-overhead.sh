#!/usr/bin/env bash
# backup-overhead.sh: what does homelab cost over the bare tools? In one run:
#
#  (a) files: `homelab backup run files` vs `restic backup` of the same
#      directory by hand (same excludes and tags, same password file),
#  (b) PostgreSQL: `homelab backup run db` (pg_dump -Fc streamed into restic
#      with --stdin-from-command, no temporary file) vs the common by-hand
#      way: pg_dump -Fc to a file, then `restic backup` of the file; and, to
#      separate homelab's own overhead from the streaming, vs bare
#      `restic backup --stdin-from-command -- pg_dump -Fc` too.
#
# Every side gets its own repository, so deduplication never favours the
# side that runs second. Each of N rounds starts from fresh repositories and
# runs every side once cold (empty repository) and once warm (a second
# backup of unchanged data, as a nightly run mostly is), in alternating
# order. Reported: medians over the rounds in seconds, ratio = homelab/bare,
# and the peak temporary disk of each PostgreSQL approach (the dump file
# for the file approach; nothing for streaming). It never asserts: numbers
# depend on the machine; the ratio is what to watch (DESIGN.md: <= 1.05 for
# files).
#
# Setup (in a fresh ${BENCH_DIR:-/var/tmp/homelab-bench}): builds homelab,
# starts a throwaway cluster (scripts/pg-throwaway.sh) with sample data
# (scripts/load-sample-data.sh, pgbench scale $PGBENCH_SCALE), copies the
# source directory. The cluster is stopped at the end unless BENCH_KEEP=1.
#
# Environment:
#   N               rounds (default 3)
#   PGBENCH_SCALE   pgbench scale of the sample database (default 20)
#   BENCH_SRC       directory to back up (default: a copy of $(go env GOROOT)/src)
#   BENCH_DIR       work directory (default /var/tmp/homelab-bench; wiped)
#   BENCH_KEEP=1    leave the cluster and work directory in place
#   HOMELAB_RESTIC  the restic binary for both sides (default: restic on PATH)
set -euo pipefail

readonly MARKER=.homelab-bench

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# restic_bare ARGS...: restic with the bench's password file, output to the log.
restic_bare() {
	"$RESTIC" --password-file "$WORK/restic.pass" "$@" >>"$WORK/bare.log" 2>&1
}

# The measured operations. Each prints its wall time in seconds.
t_homelab_files() {
	local t0
	t0=$(now)
	homelab_run backup run files
	elapsed "$t0"
}

t_bare_files() {
	local t0
	t0=$(now)
	restic_bare -r "$WORK/repos/bare-files" backup --json --tag homelab --tag target:files --exclude '*.tmp' -- "$SRC"
	elapsed "$t0"
}

t_homelab_db() {
	local t0
	t0=$(now)
	homelab_run backup run db
	elapsed "$t0"
}

# The by-hand way: dump to a file, back the file up, delete it. Records the
# dump's size (the temporary disk it needed) in $WORK/dumpsizes.
t_bare_dbfile() {
	local t0 dump=$WORK/dump/bench.dump
	mkdir -p "$WORK/dump"
	t0=$(now)
	pg_dump --format=custom "${PG_ARGS[@]}" --file "$dump"
	restic_bare -r "$WORK/repos/bare-dbfile" backup --json --tag homelab --tag target:db -- "$dump"
	local t
	t=$(elapsed "$t0")
	stat -c %s "$dump" >>"$WORK/dumpsizes"
	rm -f "$dump"
	printf '%s' "$t"
}

t_bare_dbstream() {
	local t0
	t0=$(now)
	restic_bare -r "$WORK/repos/bare-dbstream" backup --json --tag homelab --tag target:db \
		--stdin-filename bench.dump --stdin-from-command -- pg_dump --format=custom "${PG_ARGS[@]}"
	elapsed "$t0"
}

# measure SIDE: runs one side once and prints its wall time.
measure() {
	case $1 in
	hf) t_homelab_files ;;
	bf) t_bare_files ;;
	hd) t_homelab_db ;;
	bd) t_bare_dbfile ;;
	sd) t_bare_dbstream ;;
	*) die "unknown side $1" ;;
	esac
}

fresh_repos() {
	rm -rf "$WORK/repos" "$WORK/state"
	mkdir -p "$WORK/repos"
	homelab_run repo init hl-files
	homelab_run repo init hl-db
	local r
	for r in bare-files bare-dbfile bare-dbstream; do
		restic_bare -r "$WORK/repos/$r" init
	done
}

setup() {
	fresh_workdir
	build_homelab

	if [ -n "${BENCH_SRC:-}" ]; then
		SRC=$(cd "$BENCH_SRC" && pwd -P)
	else
		SRC=$WORK/data/src
		mkdir -p "$SRC"
		cp -a "$("$go" env GOROOT)/src/." "$SRC/"
	fi

	log "starting the throwaway cluster and loading sample data (pgbench scale ${PGBENCH_SCALE:-20})"
	PORT=$("$REPO/scripts/pg-throwaway.sh" start "$WORK/pg")
	"$REPO/scripts/load-sample-data.sh" "$WORK/pg" bench >&2
	PGPASSWORD=$(<"$WORK/pg/pgpass.password")
	export PGPASSWORD
	PG_ARGS=(--host 127.0.0.1 --port "$PORT" --username postgres --no-password --dbname bench)
	DB_SIZE=$(psql -XAtq -v ON_ERROR_STOP=1 "${PG_ARGS[@]}" -c 'select pg_database_size(current_database())')

	(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32 >"$WORK/restic.pass")
	cp "$WORK/pg/pgpass.password" "$WORK/pg.password"
	chmod 0600 "$WORK/pg.password"
	cat >"$WORK/lab.yaml" <<EOF
# Written by bench/backup-overhead.sh.
name: bench
state_dir: ./state
repositories:
  hl-files: {url: ./repos/hl-files, password_file: ./restic.pass}
  hl-db: {url: ./repos/hl-db, password_file: ./restic.pass}
backups:
  files:
    provider: restic
    repository: hl-files
    source: {paths: ["$SRC"], exclude: ["*.tmp"]}
    schedule: "0 3 * * *"
    retention: {keep_last: 3}
  db:
    provider: postgres
    repository: hl-db
    source: {host: 127.0.0.1, port: $PORT, database: bench, user: postgres, password_file: ./pg.password}
    schedule: "0 2 * * *"
    retention: {keep_last: 3}
EOF
	"$HOMELAB" --lab "$WORK/lab.yaml" lab validate >&2

	# Warm the page cache and the database's buffers, so round 1 is not
	# penalised for reading the source for the first time.
	log "warming caches"
	tar -cf - -C "$SRC" . >/dev/null
	pg_dump --format=custom "${PG_ARGS[@]}" >/dev/null
}

main() {
	bench_init /var/tmp/homelab-bench # both sides run the same restic
	local n=${N:-3}
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number, got '$n'"

	setup
	local files_count src_bytes
	files_count=$(find "$SRC" -type f | wc -l)
	src_bytes=$(du -sb "$SRC" | cut -f1)
	: >"$WORK/dumpsizes"

	# S[side_phase] holds the samples, space-separated. Sides: hf/bf homelab
	# and bare files; hd homelab db; bd dump file + restic; sd bare stream.
	local -A S=()
	local r phase side
	for r in $(seq 1 "$n"); do
		log "round $r/$n: fresh repositories"
		fresh_repos
		for phase in cold warm; do
			# Alternate who goes first, round by round.
			local order=(hf bf hd bd sd)
			if [ $((r % 2)) -eq 0 ]; then
				order=(bf hf sd bd hd)
			fi
			for side in "${order[@]}"; do
				S[${side}_$phase]+=" $(measure "$side")"
			done
			log "round $r/$n $phase: files: homelab ${S[hf_$phase]##* }s, bare ${S[bf_$phase]##* }s;" \
				"db: homelab ${S[hd_$phase]##* }s, dump file + restic ${S[bd_$phase]##* }s, bare stream ${S[sd_$phase]##* }s"
		done
	done

	local peak_dump m1 m2
	peak_dump=$(sort -n "$WORK/dumpsizes" | tail -n1)
	printf '\nhomelab backup overhead vs the bare tools: median of %d rounds, seconds; ratio = homelab / bare\n' "$n"
	printf 'restic %s; files: %s (%d files, %s); database bench: %s (pgbench scale %s)\n\n' \
		"$("$RESTIC" version | awk '{ print $2 }')" "$SRC" "$files_count" "$(mib "$src_bytes")" "$(mib "$DB_SIZE")" "${PGBENCH_SCALE:-20}"
	printf '%-54s %8s %8s %7s\n' "case" "homelab" "bare" "ratio"
	row() { # LABEL HOMELAB_KEY BARE_KEY
		# shellcheck disable=SC2086 # the samples are space-separated on purpose
		m1=$(median ${S[$2]}) m2=$(median ${S[$3]})
		printf '%-54s %8s %8s %7s\n' "$1" "$m1" "$m2" "$(ratio "$m1" "$m2")"
	}
	for phase in cold warm; do
		row "files, $phase: backup run vs restic backup" "hf_$phase" "bf_$phase"
	done
	for phase in cold warm; do
		row "postgres, $phase: stream vs pg_dump to file + restic" "hd_$phase" "bd_$phase"
	done
	for phase in cold warm; do
		row "postgres, $phase: stream vs bare restic stdin stream" "hd_$phase" "sd_$phase"
	done
	printf '\npeak temporary disk for one PostgreSQL backup: homelab (stream) 0 B; pg_dump to file + restic %s\n' "$(mib "$peak_dump")"
	printf 'samples (s), in round order:\n'
	for phase in cold warm; do
		printf '  %s: homelab files%s | bare files%s\n' "$phase" "${S[hf_$phase]}" "${S[bf_$phase]}"
		printf '  %s: homelab db%s | dump file + restic%s | bare stream%s\n' "$phase" "${S[hd_$phase]}" "${S[bd_$phase]}" "${S[sd_$phase]}"
	done

	stop_cluster_and_clean
}

main "$@"
