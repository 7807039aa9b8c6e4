#!/usr/bin/env bash
# pg-throwaway.sh: a throwaway PostgreSQL cluster in a directory of its own.
#
#   pg-throwaway.sh start DIR    create (first time) and start; prints the port
#   pg-throwaway.sh stop DIR     stop it (pg_ctl stop -m fast)
#   pg-throwaway.sh status DIR   say whether it runs; exit 0 if it does
#
# The cluster lives entirely in DIR:
#   DIR/data              the data directory
#   DIR/postgresql.log    the server log
#   DIR/pgpass.password   the superuser's password (random, 0600, owned by
#                         the invoking user; root can always read it)
#   DIR/env               PGHOST=127.0.0.1 PGPORT=... PGUSER=postgres
#                         (no password: export PGPASSWORD from pgpass.password)
# The superuser is "postgres", authentication is scram-sha-256 for both TCP
# and the Unix socket (in DIR), and the server listens on 127.0.0.1 only,
# on a free port picked at first start (and kept while it stays free).
# fsync is off: this cluster is for tests, demos and benchmarks, never data
# you care about.
#
# initdb refuses to run as root, so as root the server runs as the user
# "postgres" (DIR is chowned to it and must be reachable by it). Start on a
# running cluster and stop on a stopped one are no-ops. Remove the cluster
# with: pg-throwaway.sh stop DIR && rm -rf DIR
set -euo pipefail

log() { printf '%s\n' "pg-throwaway: $*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	printf 'usage: %s start|stop|status DIR\n' "${0##*/}" >&2
	exit 2
}

# pg_bindir: prints the newest /usr/lib/postgresql/<major>/bin with initdb
# and pg_ctl (or the directory of initdb on PATH, for non-Debian layouts).
pg_bindir() {
	local d
	for d in $(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -t/ -k5,5nr); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return 0
	fi
	die "PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/install-deps.sh"
}

# as_owner CMD...: runs CMD as the cluster's owner (postgres when we are root).
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# running DIR: true when the cluster in DIR runs.
running() {
	[ -f "$1/data/postmaster.pid" ] && as_owner "$BIN/pg_ctl" status -D "$1/data" >/dev/null 2>&1
}

current_port() {
	sed -n 's/^PGPORT=//p' "$1/env" 2>/dev/null || true
}

# write_settings DIR PORT: our settings, last in postgresql.conf so they win.
write_settings() {
	local dir=$1 port=$2 conf=$1/data/postgresql.conf
	# shellcheck disable=SC2016 # a sed address, not a shell expansion
	as_owner sed -i '/^# --- pg-throwaway.sh ---$/,$d' "$conf"
	as_owner tee -a "$conf" >/dev/null <<EOF
# --- pg-throwaway.sh ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
	printf 'PGHOST=127.0.0.1\nPGPORT=%s\nPGUSER=postgres\n' "$port" >"$dir/env.tmp"
	chmod 0644 "$dir/env.tmp"
	mv -f "$dir/env.tmp" "$dir/env"
}

init_cluster() {
	local dir=$1
	log "creating cluster in $dir/data with $BIN/initdb"
	if [ ! -s "$dir/pgpass.password" ]; then
		(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/pgpass.password")
	fi
	chmod 0600 "$dir/pgpass.password"
	# initdb reads the password from a file it can open: a copy owned by the
	# cluster owner, removed right after.
	local pw=$dir/.initdb-pwfile
	rm -f "$pw"
	(umask 077 && cp "$dir/pgpass.password" "$pw")
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$pw"
	fi
	if ! as_owner "$BIN/initdb" -D "$dir/data" -U postgres --pwfile="$pw" \
		--auth-local=scram-sha-256 --auth-host=scram-sha-256 \
		--encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
		rm -f "$pw"
		cat "$dir/initdb.log" >&2
		die "initdb failed (log above, also in $dir/initdb.log)"
	fi
	rm -f "$pw"
}

cmd_start() {
	local dir=$1 port tries
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root needs the user 'postgres' (apt-get install postgresql creates it)"
		chown postgres: "$dir"
		chmod 0755 "$dir"
		runuser -u postgres -- test -w "$dir" ||
			die "user postgres cannot reach $dir; pick a directory outside private homes (e.g. under /var/tmp)"
	fi

	if running "$dir"; then
		port=$(current_port "$dir")
		log "already running on 127.0.0.1:$port"
		printf '%s\n' "$port"
		return 0
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		init_cluster "$dir"
	fi

	port=$(current_port "$dir")
	for tries in 1 2 3 4 5; do
		if [ -z "$port" ] || ! port_free "$port"; then
			port=$(pick_port)
		fi
		write_settings "$dir" "$port"
		log "starting on 127.0.0.1:$port (log: $dir/postgresql.log)"
		if as_owner "$BIN/pg_ctl" start -D "$dir/data" -l "$dir/postgresql.log" -w -t 60 >/dev/null; then
			log "ready: PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres, password in $dir/pgpass.password"
			printf '%s\n' "$port"
			return 0
		fi
		# Lost a race for the port? Try another; anything else is fatal.
		if tail -n 20 "$dir/postgresql.log" | grep -q 'could not bind\|Address already in use'; then
			log "port $port was taken meanwhile (try $tries); picking another"
			port=
			continue
		fi
		tail -n 20 "$dir/postgresql.log" >&2 || true
		die "pg_ctl start failed (log: $dir/postgresql.log)"
	done
	die "could not find a free port after 5 tries"
}

cmd_stop() {
	local dir=$1
	if [ ! -d "$dir/data" ]; then
		log "no cluster in $dir; nothing to stop"
		return 0
	fi
	if ! running "$dir"; then
		log "cluster in $dir is not running"
		return 0
	fi
	log "stopping cluster in $dir"
	as_owner "$BIN/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 >/dev/null
	log "stopped"
}

cmd_status() {
	local dir=$1
	if [ -d "$dir/data" ] && running "$dir"; then
		log "running on 127.0.0.1:$(current_port "$dir") (data: $dir/data)"
		return 0
	fi
	log "not running ($dir)"
	return 3
}

main() {
	[ $# -eq 2 ] || usage
	local cmd=$1 dir=$2
	[ -n "$dir" ] || usage
	BIN=$(pg_bindir)
	case $cmd in
	start) cmd_start "$dir" ;;
	stop) cmd_stop "$dir" ;;
	status) cmd_status "$dir" ;;
	*) usage ;;
	esac
}

main "$@"
