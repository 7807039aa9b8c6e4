#!/usr/bin/env bash
# pg-major-upgrade.sh: what downtime does `homelab upgrade db --to 17` (a
# PostgreSQL 15 -> 17 major upgrade with pg_upgrade) add over the bare
# tools? In each round, on two copies of the same PostgreSQL 15 cluster
# (pgbench scale $PGBENCH_SCALE, checksums on):
#
#   homelab: the downtime is from "stop dependents" starting to "start
#            dependents on 17" done (the dependent healthy again), read
#            from homelab's progress lines as they come; it includes
#            stopping the dependent and PostgreSQL, pg_upgrade, the
#            configuration carried over, PostgreSQL 17 started, and both
#            health gates. The preflight (initdb, pg_upgrade --check) and
#            the restore point come before the dependent stops (in link
#            mode the restore point comes after: it is in the downtime); vacuumdb
#            --analyze-in-stages after it is back: its time is reported
#            apart.
#   bare:    pg_upgrade (same mode) + pg_ctl start -w of the same cluster,
#            the new cluster made by initdb beforehand (not timed).
#
# Reported: medians in seconds, ratio = homelab/bare (issue 15's goal:
# <= 1.2 in clone/copy mode), and the analyze's median. It never asserts:
# numbers depend on the machine; the ratio is what to watch.
#
# PostgreSQL 15 and 17 come from scripts/build-pg-majors-root.sh (built
# when missing: root, debootstrap, a few minutes); run as root.
#
# Environment:
#   N               rounds (default 3)
#   PGBENCH_SCALE   pgbench scale of the cluster (default 20, ~300 MiB)
#   BENCH_MODE      pg_upgrade mode: copy (default), clone or link
#   BENCH_DIR       work directory (default /var/tmp/homelab-pgmajor-bench; wiped)
#   BENCH_KEEP=1    leave the work directory in place
set -euo pipefail

readonly MARKER=.homelab-bench

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

N=${N:-3}
SCALE=${PGBENCH_SCALE:-20}
MODE=${BENCH_MODE:-copy}

# pg BIN TOOL ARGS...: a PostgreSQL tool of a bin dir, quiet unless it fails.
pg() {
	local bin=$1 tool=$2 out
	shift 2
	out=$("$bin/$tool" "$@" 2>&1) || { printf '%s\n' "$out" >&2; die "$tool $* failed"; }
}

owned_dir() { mkdir -p "$1" && chown postgres:postgres "$1" && chmod 0755 "$1"; }

# stamp FILE: copies stdin to FILE, each line prefixed with the time it came.
stamp() {
	local line
	while IFS= read -r line; do
		printf '%s %s\n' "$(now)" "$line"
	done >"$1"
}

# at FILE PATTERN: the time of the first line of FILE matching PATTERN.
at() { awk -v p="$2" 'index($0, p) { print $1; exit }' "$1"; }

write_lab() {
	local dir=$1 port=$2 uport=$3
	cat >"$dir/lab.yaml" <<EOT
name: pgmajor-bench
state_dir: ./state
repositories:
  local: {url: ./repo, password_file: ./restic.pass}
backups:
  db-dump:
    provider: postgres
    repository: local
    source: {host: $dir/sock, port: $port, database: bench, user: postgres}
services:
  db:
    runtime:
      exec: {start: sh pg.sh start, stop: sh pg.sh stop, status: sh pg.sh status, version: cat major, set_version: "echo {{.Version}} > major", timeout: 10m}
    health:
      command: {run: sh pg.sh ready, timeout: 30s}
    postgres:
      data_dir: "pg/{{.Major}}"
      bin_dirs: {"15": $B15, "17": $B17}
      dependents: [app]
      mode: $MODE
      upgrade_port: $uport
      run_as: root
    upgrade: {backup_before: [db-dump], healthy_within: 5m}
  app:
    runtime:
      exec: {start: ": > app.running", stop: "rm -f app.running", status: "test -f app.running || exit 3"}
    health:
      command: {run: "test -f app.running && $B17/psql -XAtq -h $dir/sock -p $port -U postgres -d bench -c 'select count(*) from pgbench_branches'", timeout: 30s}
EOT
	cat >"$dir/pg.sh" <<EOT
m=\$(cat major)
bin=\$([ "\$m" = 15 ] && echo $B15 || echo $B17)
data=$dir/pg/\$m
case \$1 in
start) exec \$bin/pg_ctl -D \$data -o "-c listen_addresses='' -c port=$port -c unix_socket_directories=$dir/sock" -l $dir/pg/\$m.log -w -t 600 start ;;
stop) [ -f \$data/postmaster.pid ] || exit 0; exec \$bin/pg_ctl -D \$data -m fast -w -t 600 stop ;;
status) \$bin/pg_ctl -D \$data status >/dev/null; rc=\$?; [ \$rc -eq 4 ] && exit 3; exit \$rc ;;
ready) exec \$bin/psql -XAtq -h $dir/sock -p $port -U postgres -d bench -c 'select 1' ;;
esac
EOT
	echo "pgmajor-bench-repository" >"$dir/restic.pass"
	chmod 0600 "$dir/restic.pass"
	echo 15 >"$dir/major"
}

# measure_bare R: one bare pg_upgrade + pg_ctl start; prints its seconds.
measure_bare() {
	local dir=$WORK/bare$1 port t0 secs
	owned_dir "$dir"
	owned_dir "$dir/work"
	cp -a "$WORK/tpl" "$dir/15"
	sync
	pg "$B17" initdb -D "$dir/17" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --data-checksums
	port=$(free_port)
	t0=$(now)
	(cd "$dir/work" && pg "$B17" pg_upgrade -b "$B15" -B "$B17" -d "$dir/15" -D "$dir/17" -p "$port" -P "$port" -U postgres "--$MODE")
	pg "$B17" pg_ctl -D "$dir/17" -o "-c listen_addresses='' -c port=$port -c unix_socket_directories=$dir" -l "$dir/17.log" -w -t 600 start
	secs=$(elapsed "$t0")
	pg "$B17" pg_ctl -D "$dir/17" -m fast -w stop
	rm -rf "$dir"
	printf '%s\n' "$secs"
}

# measure_homelab R: one homelab upgrade; prints "downtime analyze".
measure_homelab() {
	local dir=$WORK/lab$1 port down analyze
	owned_dir "$dir"
	owned_dir "$dir/pg"
	owned_dir "$dir/sock"
	cp -a "$WORK/tpl" "$dir/pg/15"
	sync
	port=$(free_port)
	write_lab "$dir" "$port" "$(free_port)"
	(cd "$dir" && sh pg.sh start >/dev/null && : >app.running)
	"$HOMELAB" --lab "$dir/lab.yaml" repo init local >>"$WORK/homelab.log" 2>&1
	"$HOMELAB" --lab "$dir/lab.yaml" upgrade db --to 17 --yes 2>&1 >"$dir/out.txt" | stamp "$dir/progress.txt" ||
		{ cat "$dir/progress.txt" "$dir/out.txt" >&2; die "homelab upgrade failed"; }
	grep -q '^db upgraded from 15 to 17' "$dir/out.txt" || { cat "$dir/out.txt" >&2; die "homelab upgrade did not upgrade"; }
	down=$(awk -v a="$(at "$dir/progress.txt" '→ stop dependents')" -v b="$(at "$dir/progress.txt" 'ok start dependents on 17')" 'BEGIN { printf "%.3f", b - a }')
	analyze=$(awk '/^vacuumdb --all --analyze-in-stages took/ { sub(/s$/, "", $5); print $5 }' "$dir/out.txt")
	(cd "$dir" && sh pg.sh stop >/dev/null)
	cat "$dir/progress.txt" >>"$WORK/homelab.log"
	cp "$dir/progress.txt" "$WORK/progress$1.txt"
	rm -rf "$dir"
	printf '%s %s\n' "$down" "${analyze:-n/a}"
}

cleanup() {
	local rc=$? d
	for d in "$WORK"/lab*/pg/1[57] "$WORK"/bare*/1[57] "$WORK/tpl"; do
		[ -f "$d/postmaster.pid" ] && "$B17/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
	done
	if [ "${BENCH_KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}

main() {
	[ "$(id -u)" -eq 0 ] || die "run as root (the PostgreSQL majors root runs its tools with chroot)"
	bench_init /var/tmp/homelab-pgmajor-bench
	fresh_workdir
	trap cleanup EXIT
	build_homelab
	local root
	root=$("$REPO/scripts/build-pg-majors-root.sh")
	B15=$root/bin/15 B17=$root/bin/17
	log "PostgreSQL 15 cluster, pgbench scale $SCALE"
	local port
	port=$(free_port)
	owned_dir "$WORK/sock"
	install -d -o postgres -g postgres -m 0700 "$WORK/tpl"
	pg "$B15" initdb -D "$WORK/tpl" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --data-checksums
	pg "$B15" pg_ctl -D "$WORK/tpl" -o "-c listen_addresses='' -c port=$port -c unix_socket_directories=$WORK/sock" -l "$WORK/sock/tpl.log" -w start
	pg "$B15" createdb -h "$WORK/sock" -p "$port" -U postgres bench
	pg "$B15" pgbench -i -q -s "$SCALE" -h "$WORK/sock" -p "$port" -U postgres bench
	pg "$B15" pg_ctl -D "$WORK/tpl" -m fast -w stop
	rm -f "$WORK/sock/tpl.log"
	log "cluster: $(du -sh "$WORK/tpl" | cut -f1); mode $MODE; $N rounds"

	local bare=() down=() analyze=() r b h
	for r in $(seq 1 "$N"); do
		if [ $((r % 2)) -eq 1 ]; then
			b=$(measure_bare "$r"); h=$(measure_homelab "$r")
		else
			h=$(measure_homelab "$r"); b=$(measure_bare "$r")
		fi
		bare+=("$b") down+=("${h% *}") analyze+=("${h#* }")
		log "round $r/$N: homelab downtime ${h% *}s (analyze after: ${h#* }s), bare pg_upgrade + pg_ctl start ${b}s"
	done
	local mb md ma
	mb=$(median "${bare[@]}") md=$(median "${down[@]}") ma=$(median "${analyze[@]}")
	printf 'pg_upgrade --%s 15 -> 17, pgbench scale %s, %s rounds (medians)\n' "$MODE" "$SCALE" "$N"
	printf '  bare pg_upgrade + pg_ctl start   %8.3f s\n' "$mb"
	printf '  homelab downtime                 %8.3f s   (dependents stopped -> healthy on 17)\n' "$md"
	printf '  ratio homelab/bare               %8s     (goal <= 1.2)\n' "$(ratio "$md" "$mb")"
	printf '  analyze (vacuumdb --analyze-in-stages, after the downtime) %s s\n' "$ma"
}

main "$@"
