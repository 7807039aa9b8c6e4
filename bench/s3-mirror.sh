#!/usr/bin/env bash
# s3-mirror.sh: what does an s3-mirror backup cost against rclone copy
# between the same two buckets? In one run, two cases:
#
#   server-side: homelab backup run bench  (s3-mirror: bench-src -> bench-dst/mirrors/bench/<time>/)
#                vs rclone copy s3:bench-src s3:bench-dst/rclone
#     both buckets on one throwaway S3 server (scripts/s3-throwaway.sh:
#     versitygw, posix backend): both copy server-side (CopyObject);
#   streamed:    homelab backup run streamed (bench-src -> bench-dst on a second server)
#                vs rclone copy s3:bench-src s3b:bench-dst/rclone
#     the destination on a second server: both stream every byte through.
#
# homelab also checks every copy's size and MD5 and writes its manifest;
# rclone checks the copies its own way. The source holds $OBJECTS objects (default
# 2,000) of $TOTAL_MIB MiB in all (default 1024), in a few directory
# levels, sizes varying around the mean. N rounds (default 3), each side
# once per round in alternating order; the destination is emptied outside
# the timing before each run. Reported: medians in seconds and
# ratio = homelab / rclone (issue 13's goal: <= 1.0). It never asserts.
#
# Needs rclone (Debian's: apt-get install rclone) and versitygw
# (scripts/install-versitygw.sh). The keys reach rclone and homelab by
# environment (RCLONE_CONFIG_S3_*, and the lab's *_env), never argv.
#
# Environment:
#   N            rounds (default 3)
#   OBJECTS      objects in the source bucket (default 2000)
#   TOTAL_MIB    their total size in MiB (default 1024)
#   BENCH_DIR    work directory (default /var/tmp/homelab-s3mirror-bench; wiped)
#   BENCH_KEEP=1 leave the servers and the work directory in place
set -euo pipefail

readonly MARKER=.homelab-bench

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# AWS_CA_BUNDLE (set on some hosts) makes rclone 1.60 fail to start: its
# S3 client cannot load a bundle into its own transport; the bench is
# plain HTTP.
rc() { env -u AWS_CA_BUNDLE rclone --config /dev/null "$@" 2>>"$WORK/rclone.log"; }

empty_dest() {
	local d
	for d in s3:bench-dst/mirrors s3:bench-dst/rclone s3b:bench-dst/mirrors s3b:bench-dst/rclone; do
		rc purge "$d" || true
	done
}

measure() {
	empty_dest
	case $1 in
	h) timed homelab_run backup run bench ;;
	r) timed rc copy s3:bench-src s3:bench-dst/rclone ;;
	H) timed homelab_run backup run streamed ;;
	R) timed rc copy s3:bench-src s3b:bench-dst/rclone ;;
	*) die "unknown side $1" ;;
	esac
}

# fill: OBJECTS files of TOTAL_MIB MiB under $WORK/data, uploaded with
# rclone (single-part uploads: their ETags are their MD5s).
fill() {
	local objects=$1 total=$(($2 * 1048576)) i size mean
	mean=$((total / objects))
	mkdir -p "$WORK/data"
	log "writing $objects files of $(mib "$total") in all"
	head -c "$total" /dev/urandom >"$WORK/blob"
	local off=0
	for i in $(seq 0 $((objects - 1))); do
		# sizes from mean/2 to 3*mean/2, the last one takes what is left
		size=$((mean / 2 + (i * 7919 % mean)))
		if [ "$i" -eq $((objects - 1)) ] || [ $((off + size)) -gt "$total" ]; then
			size=$((total - off))
		fi
		mkdir -p "$WORK/data/d$((i % 10))/e$((i % 7))"
		dd if="$WORK/blob" of="$WORK/data/d$((i % 10))/e$((i % 7))/object $i.bin" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$size" status=none
		off=$((off + size))
		[ "$off" -lt "$total" ] || break
	done
	rm -f "$WORK/blob"
	log "uploading them to bucket bench-src"
	rc mkdir s3:bench-src
	rc mkdir s3:bench-dst
	rc copy --transfers 8 "$WORK/data" s3:bench-src
	rm -rf "$WORK/data"
}

setup() {
	fresh_workdir
	build_homelab
	log "starting the throwaway S3 server"
	ENDPOINT=$("$REPO/scripts/s3-throwaway.sh" start "$WORK/s3")
	ENDPOINT_B=$("$REPO/scripts/s3-throwaway.sh" start "$WORK/s3b")
	export S3_KEY S3_SECRET S3B_KEY S3B_SECRET
	S3_KEY=$(<"$WORK/s3/access_key_id") S3_SECRET=$(<"$WORK/s3/secret_access_key")
	S3B_KEY=$(<"$WORK/s3b/access_key_id") S3B_SECRET=$(<"$WORK/s3b/secret_access_key")
	export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT=$ENDPOINT \
		RCLONE_CONFIG_S3_REGION=us-east-1 RCLONE_CONFIG_S3_ACCESS_KEY_ID=$S3_KEY RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=$S3_SECRET
	export RCLONE_CONFIG_S3B_TYPE=s3 RCLONE_CONFIG_S3B_PROVIDER=Other RCLONE_CONFIG_S3B_ENDPOINT=$ENDPOINT_B \
		RCLONE_CONFIG_S3B_REGION=us-east-1 RCLONE_CONFIG_S3B_ACCESS_KEY_ID=$S3B_KEY RCLONE_CONFIG_S3B_SECRET_ACCESS_KEY=$S3B_SECRET
	fill "${OBJECTS:-2000}" "${TOTAL_MIB:-1024}"
	rc mkdir s3b:bench-dst
	cat >"$WORK/lab.yaml" <<EOF
# Written by bench/s3-mirror.sh.
name: bench
state_dir: ./state
backups:
  bench:
    provider: s3-mirror
    source: {endpoint: "$ENDPOINT", bucket: bench-src, access_key_id_env: S3_KEY, secret_access_key_env: S3_SECRET, region: us-east-1}
    destination: {endpoint: "$ENDPOINT", bucket: bench-dst, prefix: mirrors, access_key_id_env: S3_KEY, secret_access_key_env: S3_SECRET, region: us-east-1}
    retention: {keep_last: 1}
  streamed:
    provider: s3-mirror
    source: {endpoint: "$ENDPOINT", bucket: bench-src, access_key_id_env: S3_KEY, secret_access_key_env: S3_SECRET, region: us-east-1}
    destination: {endpoint: "$ENDPOINT_B", bucket: bench-dst, prefix: mirrors, access_key_id_env: S3B_KEY, secret_access_key_env: S3B_SECRET, region: us-east-1}
    retention: {keep_last: 1}
EOF
	"$HOMELAB" --lab "$WORK/lab.yaml" lab validate >&2
	COUNT=$(rc size --json s3:bench-src)
}

main() {
	REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
	WORK=${BENCH_DIR:-/var/tmp/homelab-s3mirror-bench}
	case $WORK in /*) ;; *) WORK=$PWD/$WORK ;; esac
	[ "$WORK" != / ] || die "BENCH_DIR must not be /"
	HOMELAB=$WORK/bin/homelab
	command -v rclone >/dev/null || die "rclone not found: apt-get install rclone"
	command -v "${HOMELAB_VERSITYGW:-versitygw}" >/dev/null || die "versitygw not found: scripts/install-versitygw.sh"
	local n=${N:-3}
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number, got '$n'"

	setup
	local -A S=()
	log "server-side: both buckets on one server"
	alternate_rounds "$n" h homelab r rclone
	log "streamed: the destination on a second server"
	alternate_rounds "$n" H homelab R rclone

	printf '\ns3-mirror backup vs rclone copy between the same two buckets: median of %d rounds, seconds; ratio = homelab / rclone\n' "$n"
	printf '%s; versitygw (posix); source: %s\n\n' "$(rclone version | head -n1)" "$COUNT"
	printf '%-60s %8s %8s %7s\n' "case" "homelab" "rclone" "ratio"
	local c mh mr
	for c in "h r copy bench-src into bench-dst on the same server (server-side)" "H R copy bench-src into bench-dst on another server (streamed)"; do
		read -r a b label <<<"$c"
		# shellcheck disable=SC2086 # the samples are space-separated on purpose
		mh=$(median ${S[$a]}) mr=$(median ${S[$b]})
		printf '%-60s %8s %8s %7s\n' "$label" "$mh" "$mr" "$(ratio "$mh" "$mr")"
	done
	printf 'samples (s), in round order: server-side: homelab%s | rclone%s; streamed: homelab%s | rclone%s\n' "${S[h]}" "${S[r]}" "${S[H]}" "${S[R]}"

	if [ "${BENCH_KEEP:-}" = 1 ]; then
		log "kept $WORK (servers running: $REPO/scripts/s3-throwaway.sh stop $WORK/s3; $REPO/scripts/s3-throwaway.sh stop $WORK/s3b; rm -rf $WORK)"
	else
		"$REPO/scripts/s3-throwaway.sh" stop "$WORK/s3"
		"$REPO/scripts/s3-throwaway.sh" stop "$WORK/s3b"
		rm -rf "$WORK"
	fi
}

main "$@"
