#!/usr/bin/env bash
# restic-s3-overhead.sh: what does homelab cost over bare restic when the
# repository is on S3? In one run: `homelab backup run src` of the Go
# source tree to a restic repository in a bucket of a throwaway S3 server
# (scripts/s3-throwaway.sh: versitygw, posix backend, on loopback) vs
# `restic backup` of the same tree by hand to another repository on the
# same server (same tags, same password file, the same keys: homelab reads
# them from access_key_id_file/secret_access_key_file, bare restic from
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
#
# Every side gets its own repository (its own bucket), so deduplication
# never favours the side that runs second. Each of N rounds starts from
# fresh repositories (a new prefix in each bucket) and runs every side once
# cold (empty repository) and once warm (a second backup of unchanged data,
# as a nightly run mostly is), in alternating order. Reported: medians over
# the rounds in seconds and ratio = homelab/bare. It never asserts: numbers
# depend on the machine; the ratio is what to watch (issue 13: <= 1.03).
#
# Setup (in a fresh ${BENCH_DIR:-/var/tmp/homelab-bench-s3}): builds
# homelab, starts the S3 server in $WORK/s3, copies the source directory.
# The server is stopped at the end unless BENCH_KEEP=1.
#
# Environment:
#   N               rounds (default 3)
#   BENCH_SRC       directory to back up (default: a copy of $(go env GOROOT)/src)
#   BENCH_DIR       work directory (default /var/tmp/homelab-bench-s3; wiped)
#   BENCH_KEEP=1    leave the server and work directory in place
#   HOMELAB_RESTIC  the restic binary for both sides (default: restic on PATH)
set -euo pipefail

readonly MARKER=.homelab-bench

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# restic_bare ARGS...: restic with the bench's password file and the S3
# keys in its environment only, output to the log.
restic_bare() {
	AWS_ACCESS_KEY_ID=$(<"$WORK/s3/access_key_id") AWS_SECRET_ACCESS_KEY=$(<"$WORK/s3/secret_access_key") \
		AWS_DEFAULT_REGION=us-east-1 "$RESTIC" --password-file "$WORK/restic.pass" "$@" >>"$WORK/bare.log" 2>&1
}

# The measured operations. Each prints its wall time in seconds.
t_homelab() { timed homelab_run backup run src; }

t_bare() { timed restic_bare -r "$S3_URL/bench-bare/r$ROUND" backup --json --tag homelab --tag target:src -- "$SRC"; }

# write_lab: the lab file of round $ROUND (its repository at prefix r$ROUND
# of bucket bench-homelab; bare restic's is in bench-bare).
write_lab() {
	cat >"$WORK/lab.yaml" <<EOF
# Written by bench/restic-s3-overhead.sh.
name: bench-s3
state_dir: ./state
repositories:
  s3:
    url: $S3_URL/bench-homelab/r$ROUND
    password_file: ./restic.pass
    access_key_id_file: ./s3/access_key_id
    secret_access_key_file: ./s3/secret_access_key
    region: us-east-1
backups:
  src:
    provider: restic
    repository: s3
    source: {paths: ["$SRC"]}
    retention: {keep_last: 3}
EOF
}

fresh_repos() {
	rm -rf "$WORK/state"
	write_lab
	homelab_run repo init s3
	restic_bare -r "$S3_URL/bench-bare/r$ROUND" init
}

setup() {
	if [ -d "$WORK/s3" ] && [ -e "$WORK/$MARKER" ]; then
		"$REPO/scripts/s3-throwaway.sh" stop "$WORK/s3" || true
	fi
	fresh_workdir
	build_homelab

	if [ -n "${BENCH_SRC:-}" ]; then
		SRC=$(cd "$BENCH_SRC" && pwd -P)
	else
		local go
		go=$(find_go) || die "Go is needed for its source tree"
		SRC=$WORK/data/src
		mkdir -p "$SRC"
		cp -a "$("$go" env GOROOT)/src/." "$SRC/"
	fi

	log "starting the throwaway S3 server"
	S3_URL=s3:$("$REPO/scripts/s3-throwaway.sh" start "$WORK/s3")
	# Stopped however the bench ends, unless kept.
	trap 'if [ "${BENCH_KEEP:-}" != 1 ]; then "$REPO/scripts/s3-throwaway.sh" stop "$WORK/s3"; fi' EXIT
	(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32 >"$WORK/restic.pass")
	ROUND=0
	write_lab
	"$HOMELAB" --lab "$WORK/lab.yaml" lab validate >&2

	# Warm the page cache, so round 1 is not penalised for reading the
	# source for the first time.
	log "warming caches"
	tar -cf - -C "$SRC" . >/dev/null
}

main() {
	bench_init /var/tmp/homelab-bench-s3 # both sides run the same restic
	# Both sides keep their cache in the work directory.
	export XDG_CACHE_HOME=$WORK/cache
	local n=${N:-3}
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number, got '$n'"

	setup
	local files_count src_bytes
	files_count=$(find "$SRC" -type f | wc -l)
	src_bytes=$(du -sb "$SRC" | cut -f1)

	# S[side_phase] holds the samples, space-separated: h homelab, b bare.
	local -A S=()
	local phase side
	for ROUND in $(seq 1 "$n"); do
		log "round $ROUND/$n: fresh repositories"
		fresh_repos
		for phase in cold warm; do
			local order=(h b)
			if [ $((ROUND % 2)) -eq 0 ]; then
				order=(b h)
			fi
			for side in "${order[@]}"; do
				case $side in
				h) S[h_$phase]+=" $(t_homelab)" ;;
				b) S[b_$phase]+=" $(t_bare)" ;;
				esac
			done
			log "round $ROUND/$n $phase: homelab ${S[h_$phase]##* }s, bare ${S[b_$phase]##* }s"
		done
	done

	local m1 m2
	printf '\nhomelab backup run vs restic backup, repository on S3 (versitygw on loopback): median of %d rounds, seconds; ratio = homelab / bare\n' "$n"
	printf 'restic %s; source: %s (%d files, %s)\n\n' \
		"$("$RESTIC" version | awk '{ print $2 }')" "$SRC" "$files_count" "$(mib "$src_bytes")"
	printf '%-44s %8s %8s %7s\n' "case" "homelab" "bare" "ratio"
	for phase in cold warm; do
		# shellcheck disable=SC2086 # the samples are space-separated on purpose
		m1=$(median ${S[h_$phase]}) m2=$(median ${S[b_$phase]})
		printf '%-44s %8s %8s %7s\n' "S3, $phase: backup run vs restic backup" "$m1" "$m2" "$(ratio "$m1" "$m2")"
	done
	printf '\nsamples (s), in round order:\n'
	for phase in cold warm; do
		printf '  %s: homelab%s | bare%s\n' "$phase" "${S[h_$phase]}" "${S[b_$phase]}"
	done

	if [ "${BENCH_KEEP:-}" = 1 ]; then
		log "kept $WORK (S3 server running: $REPO/scripts/s3-throwaway.sh stop $WORK/s3 && rm -rf $WORK)"
	else
		"$REPO/scripts/s3-throwaway.sh" stop "$WORK/s3"
		trap - EXIT
		rm -rf "$WORK"
	fi
}

main "$@"
