#!/usr/bin/env bash
# install-versitygw.sh: make sure the S3 server the tests, the quickstart
# and the benchmarks use is on PATH.
#
# The S3 server is versitygw (github.com/versity/versitygw, Apache-2.0;
# its posix backend serves buckets as directories). MinIO's server is AGPL
# and is not used by this project. Debian has no package, so this builds
# versitygw $VERSITYGW_VERSION from source fetched through the Go module
# proxy (one exact version with `go mod download`, as install-restic.sh
# does for restic), caches the binary in
# ${HOMELAB_CACHE:-$HOME/.cache/homelab}/bin/versitygw-$VERSITYGW_VERSION
# and, as root, installs it to /usr/local/bin/versitygw. If the versitygw
# on PATH already reports that version, this does nothing.
#
# The build takes a few minutes the first time (it downloads the AWS,
# Azure and fiber modules versitygw links). Needs Go >= 1.25.
#
# Environment:
#   HOMELAB_CACHE           cache directory (default $HOME/.cache/homelab)
#   VERSITYGW_INSTALL_DIR   where to install as root (default /usr/local/bin)
set -euo pipefail

readonly VERSITYGW_VERSION=1.8.0
readonly MIN_GO=1.25

log() { printf '%s\n' "install-versitygw: $*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# vgw_version BIN: prints "1.8.0" for a working versitygw built by this
# script (it stamps the version in with -ldflags), nothing otherwise.
vgw_version() {
	"$1" --version 2>/dev/null | awk '/[Vv]ersion/ { for (i = 1; i <= NF; i++) if ($i ~ /^v?[0-9]+\.[0-9]+\.[0-9]+$/) { sub(/^v/, "", $i); print $i; exit } }' || true
}

main() {
	if command -v versitygw >/dev/null 2>&1 && [ "$(vgw_version "$(command -v versitygw)")" = "$VERSITYGW_VERSION" ]; then
		log "versitygw $VERSITYGW_VERSION at $(command -v versitygw); nothing to do"
		return 0
	fi

	local cache="${HOMELAB_CACHE:-$HOME/.cache/homelab}"
	local bin="$cache/bin/versitygw-$VERSITYGW_VERSION"
	if [ -x "$bin" ] && [ "$(vgw_version "$bin")" = "$VERSITYGW_VERSION" ]; then
		log "using cached build $bin"
	else
		build "$bin"
	fi

	if [ "$(id -u)" -eq 0 ]; then
		local dest_dir="${VERSITYGW_INSTALL_DIR:-/usr/local/bin}"
		mkdir -p "$dest_dir"
		install -m 0755 "$bin" "$dest_dir/.versitygw.tmp.$$"
		mv -f "$dest_dir/.versitygw.tmp.$$" "$dest_dir/versitygw"
		log "installed versitygw $VERSITYGW_VERSION to $dest_dir/versitygw"
	else
		log "not root, so not installing system-wide. versitygw $VERSITYGW_VERSION is at:"
		log "  $bin"
		log "use it with: export HOMELAB_VERSITYGW=$bin"
	fi
}

# build OUT: builds versitygw $VERSITYGW_VERSION into OUT.
build() {
	local out=$1 go goversion
	go=$(find_go) || die "Go >= $MIN_GO is needed to build versitygw, and 'go' was not found"
	goversion=$("$go" env GOVERSION)
	goversion=${goversion#go}
	[ "$(printf '%s\n%s\n' "$MIN_GO" "${goversion%%[-+ ]*}" | sort -V | head -n1)" = "$MIN_GO" ] ||
		die "Go >= $MIN_GO is needed to build versitygw $VERSITYGW_VERSION, found $goversion at $go"

	log "building versitygw $VERSITYGW_VERSION with go $goversion (a few minutes; modules via $("$go" env GOPROXY))"
	local tmp
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT
	go_build_module "$go" github.com/versity/versitygw "$VERSITYGW_VERSION" ./cmd/versitygw "$tmp/versitygw" "-X main.Version=v$VERSITYGW_VERSION"
	local v
	v=$(vgw_version "$tmp/versitygw")
	[ "$v" = "$VERSITYGW_VERSION" ] || die "built binary reports version '${v:-?}', expected $VERSITYGW_VERSION"
	mkdir -p "$(dirname "$out")"
	mv -f "$tmp/versitygw" "$out"
	log "built $out"
}

main "$@"
