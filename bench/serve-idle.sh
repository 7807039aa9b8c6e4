#!/usr/bin/env bash
# serve-idle.sh: what does an idle `homelab serve` cost? The issue's goal:
# an idle daemon with 50 targets stays under 40 MiB resident memory and
# under 1 s of CPU per idle hour.
#
# Setup, in a temporary directory removed on exit: builds homelab, writes a
# lab file with $TARGETS restic targets (each its own small source
# directory, one shared local repository; backups daily at 03:00, drills
# monthly, a weekly check of the repository) and seeds the catalog by hand
# (repo init, backup run, backup verify, backup check), so that no job is
# due and the daemon's start-up catch-up finds nothing to run. Then it
# starts `homelab serve`, waits for /healthz, lets it settle $WARMUP
# seconds and measures two windows of $DURATION seconds back to back:
#
#  (1) idle: nobody talks to the daemon;
#  (2) scraped: GET /metrics and GET / every 15 s, as a Prometheus scrape
#      and a status page left open would.
#
# For each window: CPU seconds the daemon used (utime + stime of
# /proc/PID/stat; restic children would not be counted, but none may run),
# the same extrapolated to an hour, VmRSS at the end and VmHWM (peak RSS
# since the daemon started), and the "job started" lines the daemon logged
# in the window. A window is valid only if no job started in it. PASS/FAIL
# compares peak RSS with 40 MiB and CPU per hour with 1 s. The numbers
# depend on the machine and the Go version; the goals are what to watch.
#
# Usage: bench/serve-idle.sh   (takes 2 * DURATION plus 2-3 minutes of setup)
#
# Environment:
#   DURATION        seconds per window (default 120)
#   WARMUP          seconds between /healthz answering and window 1 (default 5)
#   TARGETS         number of backup targets (default 50)
#   HOMELAB_RESTIC  restic binary (default: restic on PATH; >= 0.17 needed)
#   BENCH_KEEP=1    keep the work directory (the daemon is stopped anyway)
#
# Needs Go, restic >= 0.17 (scripts/install-restic.sh) and curl; not root.
set -euo pipefail

readonly GOAL_RSS_MIB=40
readonly GOAL_CPU_HOUR=1
readonly SCRAPE_EVERY=15

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

homelab() {
	"$HOMELAB" --lab "$WORK/lab.yaml" "$@"
}

setup() {
	local go
	go=$(find_go) || die "Go is needed to build homelab"
	log "building homelab"
	(cd "$REPO" && "$go" build -o "$HOMELAB" ./cmd/homelab)

	(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32 >"$WORK/restic.pass")
	PORT=$(free_port) || die "no free TCP port found on 127.0.0.1"
	ADDR=127.0.0.1:$PORT

	local i name
	{
		printf '# Written by bench/serve-idle.sh.\n'
		printf 'name: serve-idle\nstate_dir: ./state\n'
		printf 'serve: {listen: "%s"}\n' "$ADDR"
		printf 'repositories:\n'
		printf '  repo:\n    url: ./repo\n    password_file: ./restic.pass\n'
		printf '    check: {schedule: "0 5 * * 0"}\n'
		printf 'backups:\n'
		for i in $(seq 1 "$TARGETS"); do
			printf -v name 't%02d' "$i"
			mkdir -p "$WORK/data/$name/sub"
			printf 'target %s\n' "$name" >"$WORK/data/$name/a.txt"
			head -c 4096 /dev/urandom >"$WORK/data/$name/b.bin"
			printf 'key: %s\n' "$name" >"$WORK/data/$name/sub/c.yaml"
			printf '  %s:\n' "$name"
			printf '    provider: restic\n    repository: repo\n'
			printf '    source: {paths: [./data/%s]}\n' "$name"
			printf '    schedule: "0 3 * * *"\n'
			printf '    retention: {keep_last: 7}\n'
			printf '    drill: {schedule: "0 4 1 * *", checks: [{path: ./data/%s/a.txt}]}\n' "$name"
		done
	} >"$WORK/lab.yaml"
	homelab lab validate >&2

	# Seed the catalog: every job has succeeded since its latest slot, so
	# the daemon has no catch-up to run.
	log "seeding: repo init, $TARGETS backups, $TARGETS restore drills, repository check"
	homelab repo init --all >>"$WORK/seed.log" 2>&1 || die "repo init failed (see $WORK/seed.log)"
	homelab backup run --all >>"$WORK/seed.log" 2>&1 || die "backup run failed (see $WORK/seed.log)"
	homelab backup verify --all >>"$WORK/seed.log" 2>&1 || die "backup verify failed (see $WORK/seed.log)"
	homelab backup check repo >>"$WORK/seed.log" 2>&1 || die "backup check failed (see $WORK/seed.log)"
}

# scrape: one Prometheus-like scrape of /metrics and one look at /.
scrape() {
	curl -fsS -o /dev/null "http://$ADDR/metrics" || die "GET /metrics failed"
	curl -fsS -o /dev/null "http://$ADDR/" || die "GET / failed"
	SCRAPES=$((SCRAPES + 1))
}

# window NAME SCRAPED: measures one window of DURATION seconds and appends
# its row to ROWS. SCRAPED=1 scrapes every SCRAPE_EVERY seconds, starting
# at the window's start.
window() {
	local name=$1 scraped=$2
	local t0 t1 c0 c1 n0 n1 j0 j1 rss hwm
	SCRAPES=0
	log "window '$name': $DURATION s"
	j0=$(jobs_started)
	t0=$(now)
	c0=$(cpu_ticks "$DAEMON_PID")
	n0=$(run_ns "$DAEMON_PID")
	if [ "$scraped" = 1 ]; then
		local end next
		end=$(awk -v a="$t0" -v d="$DURATION" 'BEGIN { printf "%.3f", a + d }')
		next=$t0
		while awk -v n="$next" -v e="$end" 'BEGIN { exit !(n < e) }'; do
			scrape
			next=$(awk -v n="$next" -v s="$SCRAPE_EVERY" 'BEGIN { printf "%.3f", n + s }')
			sleep "$(awk -v n="$next" -v e="$end" -v t="$(now)" 'BEGIN { x = (n < e ? n : e) - t; printf "%.3f", (x > 0 ? x : 0) }')"
		done
	else
		sleep "$DURATION"
	fi
	alive || die "homelab serve exited during window '$name' (see $WORK/serve.log)"
	c1=$(cpu_ticks "$DAEMON_PID")
	n1=$(run_ns "$DAEMON_PID")
	t1=$(now)
	rss=$(status_kib "$DAEMON_PID" VmRSS)
	hwm=$(status_kib "$DAEMON_PID" VmHWM)
	j1=$(jobs_started)
	ROWS+=("$(awk -v name="$name" -v c="$((c1 - c0))" -v ns="$((n1 - n0))" -v tck="$CLK_TCK" -v t0="$t0" -v t1="$t1" \
		-v rss="$rss" -v hwm="$hwm" -v jobs="$((j1 - j0))" -v scr="$SCRAPES" \
		-v grss="$GOAL_RSS_MIB" -v gcpu="$GOAL_CPU_HOUR" 'BEGIN {
		secs = t1 - t0; cpu = c / tck; hour = cpu * 3600 / secs
		verdict = (hwm / 1024 < grss && hour < gcpu) ? "PASS" : "FAIL"
		if (jobs > 0) verdict = "INVALID"
		printf "%-20s %6.1f %7d %8.1f %9.1f %6.2f %8.2f %10.3f %4d %-7s", name, secs, scr, rss / 1024, hwm / 1024, cpu, hour, ns / 1e9 * 3600 / secs, jobs, verdict
		if (verdict != "INVALID") printf " (RSS %s, CPU %s)", (hwm / 1024 < grss ? "ok" : "over"), (hour < gcpu ? "ok" : "over")
	}')")
	if [ $((j1 - j0)) -gt 0 ]; then
		INVALID=1
	fi
}

main() {
	REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
	DURATION=${DURATION:-120}
	WARMUP=${WARMUP:-5}
	TARGETS=${TARGETS:-50}
	[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive whole number of seconds, got '$DURATION'"
	[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds, got '$WARMUP'"
	[[ $TARGETS =~ ^[1-9][0-9]*$ ]] && [ "$TARGETS" -le 99 ] || die "TARGETS must be 1..99, got '$TARGETS'"
	command -v curl >/dev/null || die "curl is needed"
	RESTIC=${HOMELAB_RESTIC:-$(command -v restic || true)}
	[ -n "$RESTIC" ] || die "restic not found; run scripts/install-restic.sh"
	export HOMELAB_RESTIC=$RESTIC
	local rv
	rv=$("$RESTIC" version | awk '{ print $2 }')
	printf '%s\n' "$rv" | awk -F. '{ exit !($1 > 0 || $2 >= 17) }' || die "restic >= 0.17 needed, found $rv"
	CLK_TCK=$(getconf CLK_TCK)

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/homelab-serve-idle.XXXXXX")
	HOMELAB=$WORK/homelab
	DAEMON_PID=
	trap stop_daemon_and_clean EXIT
	trap 'exit 130' INT TERM

	setup
	start_daemon
	local startup_jobs
	startup_jobs=$(jobs_started)
	log "daemon pid $DAEMON_PID answers; settling $WARMUP s"
	sleep "$WARMUP"

	ROWS=()
	INVALID=0
	window "idle, no scrapes" 0
	window "scrape every ${SCRAPE_EVERY} s" 1

	printf '\nhomelab serve, idle: %d targets (%d scheduled jobs), windows of %d s after %d s warm-up\n' \
		"$TARGETS" "$((2 * TARGETS + 1))" "$DURATION" "$WARMUP"
	printf 'restic %s, %s, %s CPUs, CLK_TCK %s; goals: peak RSS < %d MiB, CPU < %d s per idle hour\n' \
		"$rv" "$("$(find_go)" version | awk '{ print $3 }')" "$(nproc)" "$CLK_TCK" "$GOAL_RSS_MIB" "$GOAL_CPU_HOUR"
	printf 'scraped window: GET /metrics and GET / every %d s, the first at the window start\n\n' "$SCRAPE_EVERY"
	printf '%-20s %6s %7s %8s %9s %6s %8s %10s %4s %s\n' "window" "secs" "scrapes" "RSS MiB" "peak MiB" "CPU s" "CPU s/h" "sched s/h" "jobs" "verdict"
	printf '%s\n' "${ROWS[@]}"
	printf '\nCPU s: utime + stime in the window, in ticks of %s ms (one tick = %.2f s/h over %d s); CPU s/h: that per hour;\n' \
		"$((1000 / CLK_TCK))" "$(awk -v t="$CLK_TCK" -v d="$DURATION" 'BEGIN { print 3600 / t / d }')" "$DURATION"
	printf 'sched s/h: the same from the threads'"'"' schedstat run time (ns), a cross-check. Verdicts use CPU s/h and peak RSS.\n'
	printf 'jobs started at start-up (catch-up, before the windows): %d\n' "$startup_jobs"
	if [ "$INVALID" = 1 ]; then
		printf 'INVALID: a job started during a window, so it was not idle (see the log)\n'
	else
		printf 'valid: no job started during either window (0 "job started" lines)\n'
	fi
}

main "$@"
