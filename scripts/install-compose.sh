#!/usr/bin/env bash
# install-compose.sh: make `docker compose` (Compose v2) available on
# Debian, as root. bookworm's docker-compose package is Compose v1
# (1.29, Python), which homelab does not drive; Debian trixie packages
# Compose v2 (2.26) as a self-contained Go binary that installs the
# docker CLI plugin (/usr/libexec/docker/cli-plugins/docker-compose).
#
# On bookworm this adds trixie as an apt source pinned at priority 100
# (/etc/apt/preferences.d/homelab-trixie), so nothing is ever upgraded
# from it by accident, and installs only docker-compose from it
# (`apt-get install -t trixie docker-compose`; it depends on libc6 >=
# 2.34, which bookworm's 2.36 satisfies, so libc6 is never replaced).
# Does nothing when `docker compose version` already answers v2.
set -euo pipefail

log() { printf '%s\n' "install-compose: $*" >&2; }
die() { log "error: $*"; exit 1; }

has_v2() {
	command -v docker >/dev/null 2>&1 && docker compose version 2>/dev/null | grep -Eq 'version v?2\.'
}

main() {
	[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
	if has_v2; then
		log "present: $(docker compose version)"
		return
	fi
	command -v apt-get >/dev/null 2>&1 || die "no apt-get: install Docker Compose v2 by hand"
	export DEBIAN_FRONTEND=noninteractive
	local codename
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	local target=()
	if [ "$codename" = bookworm ]; then
		if ! grep -rqs 'trixie' /etc/apt/sources.list /etc/apt/sources.list.d/; then
			log "adding Debian trixie as a low-priority apt source (for docker-compose v2 only)"
			cat >/etc/apt/sources.list.d/homelab-trixie.sources <<-'SRC'
				Types: deb
				URIs: http://deb.debian.org/debian
				Suites: trixie
				Components: main
				Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
			SRC
		fi
		cat >/etc/apt/preferences.d/homelab-trixie <<-'PIN'
			Package: *
			Pin: release n=trixie
			Pin-Priority: 100
		PIN
		target=(-t trixie)
	fi
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends "${target[@]}" docker-compose >&2
	has_v2 || die "docker compose v2 still not available after installing docker-compose"
	log "installed: $(docker compose version)"
}

main "$@"
