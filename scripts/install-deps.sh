#!/usr/bin/env bash
# install-deps.sh: install what homelab, its tests, the quickstart and the
# benchmarks need on Debian (bookworm or newer), as root:
#   postgresql        server and client (postgresql-NN pulls in
#                     postgresql-client-NN): pg_dump, pg_restore, psql,
#                     pgbench, and initdb / pg_ctl in /usr/lib/postgresql/*/bin
#   pgbackrest        (bookworm: 2.45) the pgbackrest provider and its tests
#   lz4, xz-utils     to read apt's compressed package index (sample data)
#   ca-certificates   for TLS to repositories and the Go module proxy
#   curl              the quickstart and benchmarks talk to homelab serve
#   chromium          headless, for the status page's browser test
#   haproxy           a real TLS server for the certificate rotation tests
#                     (the Debian service it may start is stopped: tests
#                     run their own instances)
#   debootstrap       the systemd test image's rootfs (build-systemd-image.sh)
#   prometheus-alertmanager  a real Alertmanager for the alerts tests
#   prometheus        promtool, which checks and tests contrib/prometheus
#                     (both packages' Debian services are stopped: tests
#                     run their own instances on loopback ports)
# then restic >= 0.17 through scripts/install-restic.sh (bookworm's apt
# restic is 0.14, too old; that script builds 0.18.1 with Go), and the S3
# server versitygw through scripts/install-versitygw.sh (built with Go too;
# MinIO's server is AGPL and not used).
#
# Only missing packages are installed, and `apt-get update` runs only when
# something must be installed, so running this again is cheap. homelab
# never uses Debian's default PostgreSQL cluster (tests and the quickstart
# make throwaway clusters): if installing PostgreSQL here creates one, it is
# stopped and set to start manually. Go (>= 1.23, from https://go.dev/dl/)
# is not installed here; it is needed to build homelab and restic.
set -euo pipefail

readonly PACKAGES=(postgresql pgbackrest lz4 xz-utils ca-certificates curl chromium haproxy debootstrap prometheus-alertmanager prometheus)

log() { printf '%s\n' "install-deps: $*" >&2; }
die() { log "error: $*"; exit 1; }

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# clusters: prints "version/name" of each Debian-managed PostgreSQL cluster.
clusters() {
	if command -v pg_lsclusters >/dev/null 2>&1; then
		pg_lsclusters -h 2>/dev/null | awk '{ print $1 "/" $2 }'
	fi
}

main() {
	[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
	command -v apt-get >/dev/null 2>&1 || die "this script is for Debian and derivatives (no apt-get here); install PostgreSQL, lz4 and restic >= 0.17 by hand"

	local missing=() p
	for p in "${PACKAGES[@]}"; do
		installed "$p" || missing+=("$p")
	done

	if [ ${#missing[@]} -eq 0 ]; then
		log "apt packages present: ${PACKAGES[*]}"
	else
		local before
		before=$(clusters)
		log "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >&2
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2

		# A cluster that did not exist before was made by the postgresql
		# package just now: we do not use it, so do not leave it running.
		local c
		for c in $(clusters); do
			if ! grep -qxF "$c" <<<"$before"; then
				log "Debian created the default cluster $c; stopping it and setting it to start manually (homelab does not use it; 'pg_ctlcluster ${c/\// } start' starts it)"
				pg_ctlcluster "${c%/*}" "${c#*/}" stop >/dev/null 2>&1 || true
				if [ -f "/etc/postgresql/$c/start.conf" ]; then
					printf 'manual\n' >"/etc/postgresql/$c/start.conf"
				fi
			fi
		done
	fi

	if [[ " ${missing[*]:-} " == *" haproxy "* ]]; then
		invoke-rc.d haproxy stop >/dev/null 2>&1 || pkill -x haproxy || true
	fi
	if [[ " ${missing[*]:-} " == *" prometheus-alertmanager "* ]]; then
		invoke-rc.d prometheus-alertmanager stop >/dev/null 2>&1 || pkill -x prometheus-aler || true
	fi
	if [[ " ${missing[*]:-} " == *" prometheus "* ]]; then
		invoke-rc.d prometheus stop >/dev/null 2>&1 || pkill -x prometheus || true
		invoke-rc.d prometheus-node-exporter stop >/dev/null 2>&1 || pkill -x prometheus-node || true
	fi

	local bin
	bin=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -t/ -k5,5nr | head -n1)
	[ -n "$bin" ] || die "initdb not found under /usr/lib/postgresql/*/bin after installing postgresql"
	log "PostgreSQL server binaries: $(dirname "$bin")"
	for p in pg_dump pg_restore psql pgbench lz4cat curl chromium haproxy prometheus-alertmanager promtool; do
		command -v "$p" >/dev/null 2>&1 || die "$p not found on PATH after installing ${PACKAGES[*]}"
	done

	"$(dirname "$0")/install-restic.sh"
	"$(dirname "$0")/install-versitygw.sh"
	log "done"
}

main "$@"
