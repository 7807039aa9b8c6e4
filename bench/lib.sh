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

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
