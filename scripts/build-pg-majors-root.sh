#!/usr/bin/env bash
# build-pg-majors-root.sh: a root file system that runs PostgreSQL 15 and 17
# side by side, for PostgreSQL major upgrades (pg_upgrade 15 -> 17) in the
# tests and benchmarks (internal/testenv/pgmajors.go, testenv.PGMajors).
#
#   build-pg-majors-root.sh          build the root unless it exists; prints
#                                    the directory that holds it (DIR, below)
#   build-pg-majors-root.sh --name   print DIR only, build nothing
#
# Debian bookworm ships PostgreSQL 15; trixie's PostgreSQL 17 needs trixie's
# libc, so the two cannot be installed on one bookworm system. The root is
#   debootstrap --variant=minbase trixie DIR/root MIRROR
# plus `apt-get install postgresql-17` inside it (no cluster is created, no
# service started), plus bookworm's postgresql-15 and postgresql-client-15
# .debs (downloaded with this machine's apt, which must be bookworm's) unpacked
# with `dpkg-deb -x` into it, plus the bookworm libraries those binaries
# need that trixie lacks (found with ldd inside the root, mapped to their
# bookworm packages with dpkg -S on this machine, unpacked into
# /opt/bookworm-libs inside the root and registered with ldconfig). The
# JIT provider of 15 (llvmjit, LLVM 14) is left out: 15 runs without JIT.
# The root's "postgres" user has this machine's postgres uid and gid, so
# files that either side writes have the same owner.
#
# DIR is /var/cache/homelab/pg-majors-<hash> ($HOMELAB_PG_MAJORS_CACHE
# overrides /var/cache/homelab), <hash> the start of the SHA-256 of this
# script: built once per machine and again only when this recipe changes.
# DIR holds:
#   root/                 the root file system
#   bin/15/, bin/17/      one wrapper per binary of /usr/lib/postgresql/N/bin
#                         (initdb, pg_ctl, postgres, pg_upgrade, psql,
#                         pg_dump, vacuumdb, pgbench, ...): each runs
#                         DIR/bin/pg-chroot, below
#   bin/pg-chroot         runs a command of the root in a private mount
#                         namespace (unshare -m) where /dev, /proc and the
#                         host's data paths (/tmp /var/tmp /run /home /srv
#                         /mnt /work /var/lib/homelab, those that exist, and
#                         the colon-separated $HOMELAB_PG_BIND) are
#                         bind-mounted at the same paths inside the root,
#                         then `chroot --userspec=postgres:postgres` (as
#                         root) or the calling user (otherwise). Paths given
#                         to the wrappers (-D, -b, -B, socket directories)
#                         therefore mean the same inside and outside; and
#                         inside the root, DIR/bin/N is a link to
#                         /usr/lib/postgresql/N/bin, so pg_upgrade finds the
#                         binaries by the wrappers' paths (-b, -B).
# The wrappers need root (unshare, mount, chroot).
#
# No image registry is involved, only the Debian mirror apt uses here
# ($HOMELAB_DEBIAN_MIRROR overrides it). Building takes a few minutes (about
# 180 packages); concurrent calls wait for one build through a lock file.
#
# Exit status: 0 DIR exists (printed on stdout); 3 something it needs is
# missing (not root, no debootstrap, no apt-get): the tests skip on 3, or
# fail under CI=true; 1 the build failed.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

readonly SUITE=trixie
readonly NEW=17
readonly OLD=15
readonly MIRROR=${HOMELAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly CACHE=${HOMELAB_PG_MAJORS_CACHE:-/var/cache/homelab}

log() { printf '%s\n' "build-pg-majors-root: $*" >&2; }
die() { log "error: $*"; exit 1; }
missing() { log "missing: $*"; exit 3; }

dir_name() {
	local sum
	sum=$(sha256sum "${BASH_SOURCE[0]}")
	printf '%s/pg-majors-%s\n' "$CACHE" "${sum:0:12}"
}

# cleanup DIR: unmount whatever is mounted under DIR (an interrupted run
# leaves proc in the root), then remove DIR without crossing into another
# file system.
cleanup() {
	local dir=$1 m
	[ -d "$dir" ] || return 0
	for m in $(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true); do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf --one-file-system "$dir" || log "could not remove $dir"
}

# in_root CMD...: run CMD in the root being built, with /proc, /sys and
# /dev mounted (apt's maintainer scripts need them) in a private mount
# namespace so that nothing stays mounted.
in_root() {
	unshare -m -- /bin/sh -c '
		root=$1; shift
		mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" && mount -t sysfs sys "$root/sys" || exit 1
		exec chroot "$root" "$@"' sh "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"
}

# missing_libs: prints the sonames that the ELF files of PostgreSQL $OLD in
# the root do not find there, one per line.
missing_libs() {
	local f
	find "$ROOT/usr/lib/postgresql/$OLD" -type f \( -perm -u+x -o -name '*.so' \) | while read -r f; do
		in_root ldd "${f#"$ROOT"}" 2>/dev/null | awk '/not found/ { print $1 }' || true
	done | sort -u
}

install_old() {
	local work=$1 libs round so path pkg pkgs=() d
	mkdir -p "$work/debs" "$work/libs"
	log "apt-get download postgresql-$OLD postgresql-client-$OLD (bookworm, this machine's apt)"
	(cd "$work/debs" && apt-get download "postgresql-$OLD" "postgresql-client-$OLD" >"$work/download.log" 2>&1) ||
		{ tail -n 20 "$work/download.log" >&2; die "apt-get download postgresql-$OLD failed"; }
	for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$ROOT"; done
	rm -rf "$ROOT/usr/lib/postgresql/$OLD/lib/llvmjit"* "$ROOT/usr/lib/postgresql/$OLD/lib/bitcode"
	echo /opt/bookworm-libs >"$ROOT/etc/ld.so.conf.d/bookworm-libs.conf"
	mkdir -p "$ROOT/opt/bookworm-libs"
	for round in 1 2 3 4 5; do
		libs=$(missing_libs)
		[ -n "$libs" ] || return 0
		pkgs=()
		for so in $libs; do
			# (awk reads to the end: an early exit would kill ldconfig with
			# SIGPIPE, which pipefail makes fatal)
			path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ && !found { print $NF; found = 1 }')
			[ -n "$path" ] || die "$so: PostgreSQL $OLD needs it, and neither the root nor this machine has it"
			pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | awk -F: 'NR == 1 { print $1 }') ||
				die "$so ($path): no package owns it on this machine"
			pkgs+=("$pkg")
		done
		log "round $round: bookworm libraries for $(echo $libs): ${pkgs[*]}"
		(cd "$work/libs" && apt-get download "${pkgs[@]}" >"$work/download.log" 2>&1) ||
			{ tail -n 20 "$work/download.log" >&2; die "apt-get download ${pkgs[*]} failed"; }
		for d in "$work"/libs/*.deb; do
			rm -rf "$work/x" && dpkg-deb -x "$d" "$work/x"
			find "$work/x" \( -type f -o -type l \) -name '*.so*' -path '*/lib/*' -exec cp -a {} "$ROOT/opt/bookworm-libs/" \;
			rm -f "$d"
		done
		in_root ldconfig
	done
	die "libraries still missing for PostgreSQL $OLD after 5 rounds: $(missing_libs | tr '\n' ' ')"
}

# write_wrappers WORK FINAL: the wrappers in WORK/bin, for the root at
# FINAL/root once WORK is moved to FINAL.
write_wrappers() {
	local dir=$1 final=$2 n b
	mkdir -p "$dir/bin"
	cat >"$dir/bin/pg-chroot" <<'EOF'
#!/bin/sh
# pg-chroot CMD [ARG...]: run CMD inside the PostgreSQL majors root next to
# this directory (see scripts/build-pg-majors-root.sh), with the host's data
# paths bind-mounted at the same paths, as the root's postgres user when
# called as root. Exit status: CMD's.
set -e
root=$(dirname "$(dirname "$(readlink -f "$0")")")/root
binds="/tmp:/var/tmp:/run:/home:/srv:/mnt:/work:/var/lib/homelab${HOMELAB_PG_BIND:+:$HOMELAB_PG_BIND}"
if [ "$(id -u)" -eq 0 ]; then user=postgres:postgres; else user=$(id -u):$(id -g); fi
exec unshare -m --propagation private -- /bin/sh -c '
	root=$1 binds=$2 user=$3; shift 3
	mount -t proc proc "$root/proc" || exit 125
	mount --rbind /dev "$root/dev" || exit 125
	IFS=:
	for p in $binds; do
		[ -d "$p" ] || continue
		mkdir -p "$root$p" && mount --rbind "$p" "$root$p" || exit 125
	done
	# chroot changes to /: the command starts in the caller'\''s directory
	# again when that is one of the bound paths (pg_upgrade writes there).
	exec chroot --userspec="$user" "$root" /bin/sh -c '\''cd "$1" 2>/dev/null || cd /; shift; exec "$@"'\'' sh "$PWD" "$@"' \
	pg-chroot "$root" "$binds" "$user" "$@"
EOF
	chmod 755 "$dir/bin/pg-chroot"
	# Inside the root, FINAL/bin/N is the real bin dir: pg_upgrade, run
	# there, is given the wrappers' paths (-b, -B) and finds the binaries.
	mkdir -p "$ROOT$final/bin"
	for n in "$OLD" "$NEW"; do
		ln -sfn "/usr/lib/postgresql/$n/bin" "$ROOT$final/bin/$n"
		mkdir -p "$dir/bin/$n"
		for b in "$ROOT/usr/lib/postgresql/$n/bin/"*; do
			b=$(basename "$b")
			printf '#!/bin/sh\nexec "$(dirname "$(dirname "$(readlink -f "$0")")")/pg-chroot" /usr/lib/postgresql/%s/bin/%s "$@"\n' "$n" "$b" >"$dir/bin/$n/$b"
			chmod 755 "$dir/bin/$n/$b"
		done
	done
}

build() {
	local dir=$1 work start uid gid
	work=$(mktemp -d "$CACHE/.pg-majors-build.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now
	trap "cleanup '$work'" EXIT
	ROOT=$work/root
	start=$(date +%s)
	log "debootstrap $SUITE from $MIRROR into $ROOT"
	if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
		tail -n 30 "$work/debootstrap.log" >&2
		[ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
		die "debootstrap failed (log above)"
	fi
	# The postgres user with this machine's ids, before the package makes
	# one; no default cluster; no service starts inside the root.
	uid=$(id -u postgres 2>/dev/null || echo 101)
	gid=$(id -g postgres 2>/dev/null || echo 104)
	in_root groupadd --system --gid "$gid" postgres
	in_root useradd --system --uid "$uid" --gid "$gid" --home-dir /var/lib/postgresql --shell /bin/bash postgres
	mkdir -p "$ROOT/etc/postgresql-common/createcluster.d"
	echo 'create_main_cluster = false' >"$ROOT/etc/postgresql-common/createcluster.d/homelab.conf"
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod 755 "$ROOT/usr/sbin/policy-rc.d"
	log "apt-get install postgresql-$NEW in the root"
	if ! { in_root apt-get update && in_root apt-get install -y --no-install-recommends "postgresql-$NEW" "postgresql-client-$NEW"; } >"$work/apt.log" 2>&1; then
		tail -n 30 "$work/apt.log" >&2
		die "apt-get install postgresql-$NEW failed (log above)"
	fi
	install_old "$work"
	rm -rf "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
		"$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$work/debs" "$work/libs" "$work/x"
	write_wrappers "$work" "$dir"
	local n
	for n in "$OLD/bin/postgres" "$OLD/bin/initdb" "$OLD/bin/psql" "$NEW/bin/postgres" "$NEW/bin/pg_upgrade" "$NEW/bin/initdb"; do
		in_root "/usr/lib/postgresql/$n" --version >&2 || die "/usr/lib/postgresql/$n does not run in the root"
	done
	rm -f "$work"/*.log
	mv "$work" "$dir"
	trap - EXIT
	log "built $dir in $(($(date +%s) - start))s"
}

main() {
	local dir
	dir=$(dir_name)
	if [ "${1:-}" = --name ]; then
		printf '%s\n' "$dir"
		return 0
	fi
	[ $# -eq 0 ] || die "usage: $0 [--name]"
	if [ -x "$dir/bin/pg-chroot" ]; then
		printf '%s\n' "$dir"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || missing "$dir not built, and building it needs root (debootstrap): run sudo $0"
	command -v debootstrap >/dev/null 2>&1 || missing "debootstrap not found (run scripts/install-deps.sh)"
	command -v apt-get >/dev/null 2>&1 || missing "apt-get not found (bookworm's PostgreSQL $OLD comes from apt)"
	for c in flock unshare findmnt dpkg-deb; do
		command -v "$c" >/dev/null 2>&1 || missing "$c not found"
	done
	mkdir -p "$CACHE"
	# One build at a time; whoever waited finds the root made.
	exec 9>"$CACHE/.pg-majors.lock"
	flock 9
	if [ ! -x "$dir/bin/pg-chroot" ]; then
		build "$dir"
	fi
	printf '%s\n' "$dir"
}

main "$@"
