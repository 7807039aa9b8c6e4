#!/usr/bin/env bash
# build-systemd-image.sh: the Docker image in which the systemd tests boot a
# real systemd (internal/testenv/systemd.go, testenv.Systemd).
#
#   build-systemd-image.sh          build the image unless it exists; prints
#                                   its name (homelab-test-systemd:<hash>)
#   build-systemd-image.sh --name   print the name only, build nothing
#
# The image is a Debian bookworm rootfs made by
#   debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
#     bookworm DIR http://deb.debian.org/debian
# with apt's caches, documentation and the machine id removed, imported with
# `tar -C DIR -c . | docker import - homelab-test-systemd:<hash>`. No image
# registry is involved (none needs to be reachable), only the Debian mirror
# ($HOMELAB_DEBIAN_MIRROR overrides it). <hash> is the start of the SHA-256
# of this script, so the image is built once per machine and again only when
# this recipe changes; old tags stay until removed by hand
# (docker image ls homelab-test-systemd).
#
# Building takes about two minutes on two cores (debootstrap downloads and
# unpacks ~110 packages); concurrent calls (several test packages at once)
# wait for one build through a lock file. It must run as root (debootstrap
# chroots and makes device nodes) with debootstrap installed
# (scripts/install-deps.sh installs it).
#
# Exit status: 0 the image exists (its name is on stdout); 3 something it
# needs is missing (not root, no debootstrap, no docker): the tests skip on
# 3, or fail under CI=true; 1 the build failed.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

readonly SUITE=bookworm
readonly INCLUDE=systemd,systemd-sysv,dbus
readonly MIRROR=${HOMELAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly REPO=homelab-test-systemd

log() { printf '%s\n' "build-systemd-image: $*" >&2; }
die() { log "error: $*"; exit 1; }
missing() { log "missing: $*"; exit 3; }

image_name() {
	local sum
	sum=$(sha256sum "${BASH_SOURCE[0]}")
	printf '%s:%s\n' "$REPO" "${sum:0:12}"
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# cleanup DIR: unmount whatever debootstrap left mounted under DIR (an
# interrupted run leaves proc and sys in the chroot), then remove DIR
# without crossing into another file system.
cleanup() {
	local dir=$1 m
	[ -d "$dir" ] || return 0
	if command -v findmnt >/dev/null 2>&1; then
		for m in $(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true); do
			umount -l "$m" 2>/dev/null || true
		done
	fi
	rm -rf --one-file-system "$dir" || log "could not remove $dir"
}

build() {
	local image=$1 work root start
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/homelab-systemd-image.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now
	trap "cleanup '$work'" EXIT
	root=$work/rootfs
	start=$(date +%s)
	log "debootstrap $SUITE from $MIRROR into $root (about two minutes)"
	if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
		tail -n 30 "$work/debootstrap.log" >&2
		[ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
		die "debootstrap failed (log above)"
	fi
	# Smaller and neutral: no package caches or lists (the tests install
	# nothing), no docs, and an empty machine id so that systemd makes a
	# fresh one in each container.
	rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
	: >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id"
	log "docker import $image"
	tar -C "$root" -c . | docker import \
		--change 'ENV container=docker' \
		--change 'CMD ["/lib/systemd/systemd"]' \
		--message "debootstrap --variant=minbase --include=$INCLUDE $SUITE" \
		- "$image" >/dev/null
	log "built $image in $(($(date +%s) - start))s"
}

main() {
	local image
	image=$(image_name)
	if [ "${1:-}" = --name ]; then
		printf '%s\n' "$image"
		return 0
	fi
	[ $# -eq 0 ] || die "usage: $0 [--name]"
	command -v docker >/dev/null 2>&1 || missing "docker not found in PATH"
	if have_image "$image"; then
		printf '%s\n' "$image"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || missing "image $image not built, and building it needs root (debootstrap): run sudo $0"
	command -v debootstrap >/dev/null 2>&1 || missing "debootstrap not found (run scripts/install-deps.sh)"
	command -v flock >/dev/null 2>&1 || missing "flock not found (util-linux)"

	# One build at a time; whoever waited finds the image made.
	exec 9>/tmp/homelab-systemd-image.lock
	flock 9
	if ! have_image "$image"; then
		build "$image"
	fi
	printf '%s\n' "$image"
}

main "$@"
