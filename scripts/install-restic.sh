#!/usr/bin/env bash
# install-restic.sh: make sure a restic >= 0.17 is on PATH.
#
# homelab needs restic >= 0.17 (backup --stdin-from-command and friends);
# Debian bookworm ships 0.14. If `restic version` already reports a new
# enough restic, this does nothing. Otherwise it builds restic v0.18.1 from
# source fetched through the Go module proxy, caches the binary in
# ${HOMELAB_CACHE:-$HOME/.cache/homelab}/bin/restic-0.18.1 and, as root,
# installs it to /usr/local/bin/restic.
#
# Why not `go install github.com/restic/restic/cmd/restic@v0.18.1`: some
# module proxies refuse the @v/list lookup go install makes, so we use
# `go mod download` (one exact version) and build inside the module cache.
#
# Needs Go >= 1.23. Safe to run again: a cached build is reused.
#
# Environment:
#   HOMELAB_CACHE        cache directory (default $HOME/.cache/homelab)
#   RESTIC_INSTALL_DIR   where to install as root (default /usr/local/bin)
set -euo pipefail

readonly RESTIC_VERSION=0.18.1
readonly MIN_RESTIC=0.17.0
readonly MIN_GO=1.23

log() { printf '%s\n' "install-restic: $*" >&2; }
die() { log "error: $*"; exit 1; }

# version_ge A B: true when version A >= version B.
version_ge() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# restic_version BIN: prints "0.18.1" for a working restic, nothing otherwise.
restic_version() {
	"$1" version 2>/dev/null | awk '$1 == "restic" { print $2; exit }' || true
}

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	local cur
	if command -v restic >/dev/null 2>&1; then
		cur=$(restic_version "$(command -v restic)")
		if [ -n "$cur" ] && version_ge "$cur" "$MIN_RESTIC"; then
			log "restic $cur at $(command -v restic) is new enough (>= $MIN_RESTIC); nothing to do"
			return 0
		fi
		log "restic at $(command -v restic) is ${cur:-unusable}; need >= $MIN_RESTIC"
	else
		log "restic not found on PATH; need >= $MIN_RESTIC"
	fi

	local cache="${HOMELAB_CACHE:-$HOME/.cache/homelab}"
	local bin="$cache/bin/restic-$RESTIC_VERSION"
	if [ -x "$bin" ] && [ "$(restic_version "$bin")" = "$RESTIC_VERSION" ]; then
		log "using cached build $bin"
	else
		build "$bin"
	fi

	if [ "$(id -u)" -eq 0 ]; then
		local dest_dir="${RESTIC_INSTALL_DIR:-/usr/local/bin}"
		mkdir -p "$dest_dir"
		# Copy then rename, so a running restic is never half-overwritten.
		install -m 0755 "$bin" "$dest_dir/.restic.tmp.$$"
		mv -f "$dest_dir/.restic.tmp.$$" "$dest_dir/restic"
		log "installed restic $RESTIC_VERSION to $dest_dir/restic"
		local found
		found=$(command -v restic 2>/dev/null || true)
		if [ "$found" != "$dest_dir/restic" ]; then
			log "warning: 'restic' on PATH is ${found:-missing}, not $dest_dir/restic; put $dest_dir first in PATH"
		fi
	else
		log "not root, so not installing system-wide. restic $RESTIC_VERSION is at:"
		log "  $bin"
		log "use it with one of:"
		log "  export HOMELAB_RESTIC=$bin"
		log "  mkdir -p ~/.local/bin && ln -sf $bin ~/.local/bin/restic   # and have ~/.local/bin on PATH"
	fi
}

# build OUT: builds restic $RESTIC_VERSION into OUT.
build() {
	local out=$1 go goversion
	go=$(find_go) || die "Go >= $MIN_GO is needed to build restic $RESTIC_VERSION, and 'go' was not found. Install it from https://go.dev/dl/ (Debian bookworm's golang-go is 1.19, too old)"
	goversion=$("$go" env GOVERSION)
	goversion=${goversion#go}
	version_ge "${goversion%%[-+ ]*}" "$MIN_GO" ||
		die "Go >= $MIN_GO is needed to build restic $RESTIC_VERSION, found $goversion at $go. Install a newer Go from https://go.dev/dl/"

	log "building restic $RESTIC_VERSION with go $goversion (takes a few minutes; downloads modules via $("$go" env GOPROXY))"
	local tmp
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT
	go_build_module "$go" github.com/restic/restic "$RESTIC_VERSION" ./cmd/restic "$tmp/restic"
	local v
	v=$(restic_version "$tmp/restic")
	[ "$v" = "$RESTIC_VERSION" ] || die "built binary reports version '${v:-?}', expected $RESTIC_VERSION"
	mkdir -p "$(dirname "$out")"
	mv -f "$tmp/restic" "$out"
	log "built $out"
}

main "$@"
