# lib.sh: what the bench scripts share (sourced, not run): messages,
# a clock, and the statistics they print.

log() { printf '%s\n' "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

# now: seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

# elapsed T0: seconds since T0, to the millisecond.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# median VALUES...: the median (mean of the middle two for an even count).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_init DEFAULT_DIR: what every bench's main sets first: REPO (the
# repository root), WORK (${BENCH_DIR:-DEFAULT_DIR}, absolute, never /),
# HOMELAB (the binary build_homelab makes) and RESTIC (HOMELAB_RESTIC or
# restic on PATH, exported as HOMELAB_RESTIC so both sides run the same
# restic).
bench_init() {
	REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
	WORK=${BENCH_DIR:-$1}
	case $WORK in /*) ;; *) WORK=$PWD/$WORK ;; esac
	[ "$WORK" != / ] || die "BENCH_DIR must not be /"
	HOMELAB=$WORK/bin/homelab
	RESTIC=${HOMELAB_RESTIC:-$(command -v restic || true)}
	[ -n "$RESTIC" ] || die "restic not found; run scripts/install-deps.sh"
	export HOMELAB_RESTIC=$RESTIC
}

# homelab_run ARGS...: homelab with the bench's lab file, output to the log.
homelab_run() {
	"$HOMELAB" --lab "$WORK/lab.yaml" "$@" >>"$WORK/homelab.log" 2>&1
}

# timed CMD...: runs CMD and prints its wall time in seconds.
timed() {
	local t0
	t0=$(now)
	"$@"
	elapsed "$t0"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

# paired_ratio "A1 A2 ..." "B1 B2 ...": the median of the per-round ratios
# Ai / Bi of two sample lists in round order; steadier than the ratio of
# the medians when the machine's load drifts from round to round.
paired_ratio() {
	local -a a b r=()
	read -ra a <<<"$1"
	read -ra b <<<"$2"
	local i
	for i in "${!a[@]}"; do
		r+=("$(ratio "${a[$i]}" "${b[$i]}")")
	done
	median "${r[@]}"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# fresh_workdir: empties $WORK for a new run, refusing a non-empty
# directory this bench did not make (no $MARKER in it) and stopping a
# throwaway cluster left in $WORK/pg and throwaway S3 servers left in
# $WORK/*/ (BENCH_KEEP=1).
fresh_workdir() {
	if [ -e "$WORK" ]; then
		if [ -n "$(ls -A "$WORK")" ] && [ ! -e "$WORK/$MARKER" ]; then
			die "$WORK is not empty and was not made by this script (no $MARKER); remove it or set BENCH_DIR"
		fi
		if [ -d "$WORK/pg/data" ]; then
			"$REPO/scripts/pg-throwaway.sh" stop "$WORK/pg"
		fi
		local pid
		for pid in "$WORK"/*/versitygw.pid; do
			[ -e "$pid" ] && "$REPO/scripts/s3-throwaway.sh" stop "$(dirname "$pid")"
		done
		rm -rf "$WORK"
	fi
	mkdir -p "$WORK"
	chmod 0755 "$WORK"
	: >"$WORK/$MARKER"
}

# build_homelab: builds $HOMELAB from the repository (find_go: scripts/lib.sh).
build_homelab() {
	local go
	go=$(find_go) || die "Go is needed to build homelab"
	log "building homelab"
	(cd "$REPO" && "$go" build -o "$HOMELAB" ./cmd/homelab)
}

# cpu_ticks PID: utime + stime of the process (all its threads), in clock
# ticks. The command name in field 2 may hold spaces, so fields are counted
# after its closing parenthesis (utime and stime are fields 14 and 15).
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	awk '{ print $12 + $13 }' <<<"$stat"
}

# run_ns PID: the time the process's threads have spent on a CPU, in
# nanoseconds (sum of /proc/PID/task/*/schedstat): finer than the clock
# ticks of utime + stime, which an idle window may see only a few of.
# A thread that exits takes its share with it (Go threads rarely exit).
run_ns() {
	cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

# status_kib PID FIELD: a kB field of /proc/PID/status (VmRSS, VmHWM).
status_kib() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# jobs_started: how many "job started" lines the daemon has logged so far
# in $WORK/serve.log.
jobs_started() {
	grep -c '"msg":"job started"' "$WORK/serve.log" || true
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

# alive: whether the daemon $DAEMON_PID still runs.
alive() { kill -0 "$DAEMON_PID" 2>/dev/null; }

# start_daemon: starts `homelab serve` of $WORK/lab.yaml on $ADDR in the
# background (DAEMON_PID; its JSON log, no terminal on stderr, in
# $WORK/serve.log) and returns once /healthz answers.
start_daemon() {
	log "starting homelab serve on $ADDR"
	"$HOMELAB" --lab "$WORK/lab.yaml" serve 2>"$WORK/serve.log" >/dev/null &
	DAEMON_PID=$!
	local i
	for i in $(seq 1 100); do
		alive || { cat "$WORK/serve.log" >&2; die "homelab serve exited during start-up"; }
		if curl -fsS -o /dev/null "http://$ADDR/healthz" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "homelab serve did not answer /healthz within 10 s"
}

# alternate_rounds N A NAME_A B NAME_B: N rounds of the caller's
# `measure A` and `measure B` (each prints one wall time), alternating
# which goes first round by round, appending each time to S[A] and S[B]
# (the caller declares `local -A S=()`) and logging each round.
alternate_rounds() {
	local n=$1 a=$2 name_a=$3 b=$4 name_b=$5 r side
	for r in $(seq 1 "$n"); do
		local order=("$a" "$b")
		if [ $((r % 2)) -eq 0 ]; then
			order=("$b" "$a")
		fi
		for side in "${order[@]}"; do
			S[$side]+=" $(measure "$side")"
		done
		log "round $r/$n: $name_a ${S[$a]##* }s, $name_b ${S[$b]##* }s"
	done
}

# stop_daemon_and_clean: the EXIT trap of the serve benchmarks: stops the
# daemon $DAEMON_PID (SIGTERM, then waits) and removes $WORK unless
# BENCH_KEEP=1; exits with the status the script was exiting with.
stop_daemon_and_clean() {
	local rc=$?
	if [ -n "${DAEMON_PID:-}" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
		if [ "${BENCH_KEEP:-}" = 1 ]; then
			log "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

# stop_cluster_and_clean: the end of the overhead benchmarks: stops the
# throwaway cluster in $WORK/pg and removes $WORK, unless BENCH_KEEP=1.
stop_cluster_and_clean() {
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		log "kept $WORK (cluster running: $REPO/scripts/pg-throwaway.sh stop $WORK/pg && rm -rf $WORK)"
	else
		"$REPO/scripts/pg-throwaway.sh" stop "$WORK/pg"
		rm -rf "$WORK"
	fi
}
