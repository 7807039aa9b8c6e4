#!/usr/bin/env bash
# s3-throwaway.sh: a throwaway S3 server (versitygw, posix backend) in a
# directory of its own, for the quickstart, the benchmarks and by hand.
#
#   s3-throwaway.sh start DIR    start it (first time: make credentials); prints the endpoint URL
#   s3-throwaway.sh stop DIR     stop it
#   s3-throwaway.sh status DIR   say whether it runs; exit 0 if it does
#
# It lives entirely in DIR:
#   DIR/buckets             the posix backend's root: DIR/buckets/<bucket>/<key>
#   DIR/versitygw.log       the server's log
#   DIR/versitygw.pid       its process ID while it runs
#   DIR/access_key_id       the root access key ID (0600)
#   DIR/secret_access_key   the root secret access key (0600; random)
#   DIR/env                 S3_ENDPOINT=http://127.0.0.1:PORT and
#                           AWS_DEFAULT_REGION=us-east-1 (no secret)
# The keys reach versitygw through its environment (ROOT_ACCESS_KEY_ID,
# ROOT_SECRET_ACCESS_KEY), never its command line. It listens on
# 127.0.0.1 only, over plain HTTP, on a free port picked at first start
# (and kept while it stays free). Remove it with:
#   s3-throwaway.sh stop DIR && rm -rf DIR
# versitygw comes from scripts/install-versitygw.sh ($HOMELAB_VERSITYGW
# overrides the binary).
set -euo pipefail

log() { printf '%s\n' "s3-throwaway: $*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	printf 'usage: %s start|stop|status DIR\n' "${0##*/}" >&2
	exit 2
}

running() {
	local pid
	pid=$(cat "$1/versitygw.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

current_port() {
	sed -n 's|^S3_ENDPOINT=http://127.0.0.1:||p' "$1/env" 2>/dev/null || true
}

cmd_start() {
	local dir=$1 bin port
	bin=${HOMELAB_VERSITYGW:-$(command -v versitygw || true)}
	[ -n "$bin" ] || die "versitygw not found; run scripts/install-versitygw.sh"
	mkdir -p "$dir/buckets"
	dir=$(cd "$dir" && pwd -P)
	if running "$dir"; then
		log "already running on 127.0.0.1:$(current_port "$dir")"
		printf 'http://127.0.0.1:%s\n' "$(current_port "$dir")"
		return 0
	fi
	if [ ! -s "$dir/secret_access_key" ]; then
		(umask 077 &&
			printf 'AK%s\n' "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$dir/access_key_id" &&
			head -c 30 /dev/urandom | base64 | tr -d '/+=\n' >"$dir/secret_access_key")
	fi
	port=$(current_port "$dir")
	for tries in 1 2 3 4 5; do
		if [ -z "$port" ] || ! port_free "$port"; then
			port=$(pick_port)
		fi
		log "starting on 127.0.0.1:$port (log: $dir/versitygw.log)"
		ROOT_ACCESS_KEY_ID=$(cat "$dir/access_key_id") \
			ROOT_SECRET_ACCESS_KEY=$(cat "$dir/secret_access_key") \
			VGW_REGION=us-east-1 \
			setsid "$bin" --port "127.0.0.1:$port" posix "$dir/buckets" >"$dir/versitygw.log" 2>&1 </dev/null &
		echo $! >"$dir/versitygw.pid"
		local i
		for i in $(seq 1 300); do
			if ! running "$dir"; then
				break
			fi
			if ! port_free "$port"; then
				printf 'S3_ENDPOINT=http://127.0.0.1:%s\nAWS_DEFAULT_REGION=us-east-1\n' "$port" >"$dir/env"
				log "ready: http://127.0.0.1:$port, access key ID in $dir/access_key_id, secret in $dir/secret_access_key"
				printf 'http://127.0.0.1:%s\n' "$port"
				return 0
			fi
			sleep 0.1
		done
		if running "$dir"; then
			kill "$(cat "$dir/versitygw.pid")" 2>/dev/null || true
			die "versitygw did not listen on 127.0.0.1:$port within 30 s (log: $dir/versitygw.log)"
		fi
		if grep -q 'address already in use' "$dir/versitygw.log"; then
			log "port $port was taken meanwhile (try $tries); picking another"
			port=
			continue
		fi
		cat "$dir/versitygw.log" >&2
		die "versitygw exited at start (log above)"
	done
	die "could not find a free port after 5 tries"
}

cmd_stop() {
	local dir=$1 pid
	if ! running "$dir"; then
		log "not running ($dir)"
		rm -f "$dir/versitygw.pid"
		return 0
	fi
	pid=$(cat "$dir/versitygw.pid")
	kill "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/versitygw.pid"
	log "stopped"
}

cmd_status() {
	local dir=$1
	if running "$dir"; then
		log "running on 127.0.0.1:$(current_port "$dir") (buckets: $dir/buckets)"
		return 0
	fi
	log "not running ($dir)"
	return 1
}

[ $# -eq 2 ] || usage
case $1 in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
status) cmd_status "$2" ;;
*) usage ;;
esac
