#!/usr/bin/env bash
# quickstart.sh: set up homelab on this machine and run its main job on real
# data, end to end. Run it as root from anywhere in the repository:
#
#   sudo ./scripts/quickstart.sh
#
# It installs the dependencies (scripts/install-deps.sh), builds bin/homelab,
# then, in a fresh ${QUICKSTART_DIR:-/var/tmp/homelab-quickstart}:
#   - starts a throwaway PostgreSQL cluster (scripts/pg-throwaway.sh) and
#     loads the Debian package index plus pgbench tables into database
#     "debian" (scripts/load-sample-data.sh),
#   - copies the Go toolchain's source tree (several thousand real files),
#   - starts a throwaway S3 server (scripts/s3-throwaway.sh: versitygw) and
#     fills bucket "media" with a few hundred objects (text, a directory
#     tree, one of 20 MiB, above the multipart threshold),
#   - writes a restic password and lab.yaml with three backup targets (the
#     directory, the database, and the bucket mirrored into bucket
#     "backups" by the s3-mirror provider), each with restore-drill checks,
# and the cluster as a service, a local CA and leaf, host and energy
# settings, and runs: lab validate, repo init, backup run --all, backup
# list, backup verify --all (restore drills), cert init, cert issue, status
# (every section of the page), and then homelab serve for a
# moment (it catches up the weekly repository check it never ran, and
# serves the JSON API and /metrics) before stopping it with SIGTERM. It
# exits non-zero if any
# step fails. The cluster and the S3 server are left running so you can explore; the end of
# the output says how to stop and remove everything.
#
# Environment:
#   QUICKSTART_DIR         work directory (default /var/tmp/homelab-quickstart;
#                          wiped at the start of each run)
#   QUICKSTART_UNTIL       stop after a step: deps, build, cluster, data, lab
#   QUICKSTART_SKIP_DEPS=1 do not run install-deps.sh (then root is optional)
#   PGBENCH_SCALE          pgbench scale for the sample database (default 20)
set -euo pipefail

readonly MARKER=.homelab-quickstart

log() { printf '%s\n' "quickstart: $*" >&2; }
die() { log "error: $*"; exit 1; }

STEP=0
readonly STEPS=11
step() {
	STEP=$((STEP + 1))
	printf '\n[%d/%d] %s\n' "$STEP" "$STEPS" "$*" >&2
}

# until_here NAME: exits successfully when QUICKSTART_UNTIL=NAME.
until_here() {
	if [ "${QUICKSTART_UNTIL:-}" = "$1" ]; then
		log "stopping after '$1' (QUICKSTART_UNTIL=$1)"
		exit 0
	fi
}

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# random_secret: 32 random characters from [A-Za-z0-9].
random_secret() {
	head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 32
}

# homelab ARGS...: runs bin/homelab against the quickstart lab, under a banner.
homelab() {
	printf '\n==> homelab %s\n' "$*"
	local rc=0
	"$HOMELAB" --lab "$LAB" "$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		log "✗ 'homelab $*' failed with exit code $rc"
		log "  lab file: $LAB; cluster log: $WORK/pg/postgresql.log"
		log "  clean up with: $REPO/scripts/pg-throwaway.sh stop $WORK/pg && $REPO/scripts/s3-throwaway.sh stop $WORK/s3 && rm -rf $WORK"
		exit "$rc"
	fi
}

# check_workdir: refuses a WORK that quickstart.sh did not make.
check_workdir() {
	if [ -e "$WORK" ]; then
		[ -d "$WORK" ] || die "$WORK exists and is not a directory"
		if [ -n "$(ls -A "$WORK")" ] && [ ! -e "$WORK/$MARKER" ]; then
			die "$WORK is not empty and was not made by quickstart.sh (no $MARKER in it); remove it or set QUICKSTART_DIR"
		fi
	fi
}

# fresh_workdir: stops the cluster of a previous run and empties WORK.
fresh_workdir() {
	check_workdir
	if [ -e "$WORK" ]; then
		if [ -d "$WORK/pg/data" ]; then
			log "stopping the cluster of the previous run"
			"$REPO/scripts/pg-throwaway.sh" stop "$WORK/pg"
		fi
		if [ -d "$WORK/s3" ]; then
			log "stopping the S3 server of the previous run"
			"$REPO/scripts/s3-throwaway.sh" stop "$WORK/s3" || true
		fi
		log "removing the previous run's $WORK"
		rm -rf "$WORK"
	fi
	mkdir -p "$WORK"
	chmod 0755 "$WORK" # the postgres user must reach $WORK/pg
	: >"$WORK/$MARKER"
}

main() {
	local start=$SECONDS
	REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
	WORK=${QUICKSTART_DIR:-/var/tmp/homelab-quickstart}
	case $WORK in
	/*) ;;
	*) WORK=$PWD/$WORK ;;
	esac
	[ "$WORK" != / ] || die "QUICKSTART_DIR must not be /"
	LAB=$WORK/lab.yaml
	HOMELAB=$REPO/bin/homelab
	check_workdir

	step "Installing dependencies (PostgreSQL, lz4, curl, chromium, haproxy, restic >= 0.17)"
	if [ "${QUICKSTART_SKIP_DEPS:-}" = 1 ]; then
		log "skipped (QUICKSTART_SKIP_DEPS=1)"
	else
		[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 (or QUICKSTART_SKIP_DEPS=1 if the dependencies are installed)"
		"$REPO/scripts/install-deps.sh"
	fi
	until_here deps

	step "Building bin/homelab"
	local go
	go=$(find_go) || die "Go is needed to build homelab and was not found; install Go from https://go.dev/dl/"
	PATH="$(dirname "$go"):$PATH"
	export PATH
	(cd "$REPO" && go build -o bin/homelab ./cmd/homelab)
	if [ -n "${SUDO_UID:-}" ] && [ -n "${SUDO_GID:-}" ]; then
		chown "$SUDO_UID:$SUDO_GID" "$REPO/bin" "$HOMELAB" # it is your checkout
	fi
	log "built $HOMELAB ($("$go" version))"
	until_here build

	step "Starting a throwaway PostgreSQL cluster in $WORK/pg"
	fresh_workdir
	local port
	port=$("$REPO/scripts/pg-throwaway.sh" start "$WORK/pg")
	until_here cluster

	step "Loading sample data into database 'debian' (Debian package index + pgbench -s ${PGBENCH_SCALE:-20})"
	"$REPO/scripts/load-sample-data.sh" "$WORK/pg" debian >&2
	local accounts
	accounts=$(
		set -a
		# shellcheck source=/dev/null
		. "$WORK/pg/env"
		set +a
		PGPASSWORD=$(<"$WORK/pg/pgpass.password")
		export PGPASSWORD
		psql -XAtq -v ON_ERROR_STOP=1 -d debian -c 'select count(*) from pgbench_accounts'
	)
	until_here data

	step "Copying the Go source tree to $WORK/data/go-src"
	local goroot
	goroot=$(go env GOROOT)
	[ -d "$goroot/src" ] || die "$goroot/src not found"
	mkdir -p "$WORK/data/go-src"
	cp -a "$goroot/src/." "$WORK/data/go-src/"
	log "copied $(find "$WORK/data/go-src" -type f | wc -l) files, $(du -sh "$WORK/data/go-src" | cut -f1) from $goroot/src"
	local check_file="" c
	for c in go/build/build.go fmt/print.go net/http/server.go os/file.go; do
		if [ -f "$WORK/data/go-src/$c" ]; then
			check_file=$c
			break
		fi
	done
	[ -n "$check_file" ] || die "none of the expected files are in $goroot/src"
	local check_sum
	check_sum=$(sha256sum "$WORK/data/go-src/$check_file" | cut -d' ' -f1)

	step "Starting a throwaway S3 server in $WORK/s3 and filling bucket 'media'"
	local s3 objects
	s3=$("$REPO/scripts/s3-throwaway.sh" start "$WORK/s3")
	objects=$(fill_bucket "$s3" media)
	log "bucket media: $objects objects; bucket backups: empty, for the mirror"

	step "Writing secrets and $LAB"
	(
		umask 077
		random_secret >"$WORK/restic.pass"
		cp "$WORK/pg/pgpass.password" "$WORK/pg.password"
	)
	chmod 0600 "$WORK/restic.pass" "$WORK/pg.password"
	cat >"$LAB.tmp" <<EOF
# Written by scripts/quickstart.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Paths are relative to this file.
name: quickstart
state_dir: ./state
repositories:
  local:
    url: ./repo
    password_file: ./restic.pass
    check: {schedule: "0 4 * * 0", read_data_subset: 10%}   # weekly, under homelab serve
s3_locations:                          # named S3 places that s3-mirror targets refer to with location:
  backups: {endpoint: "$s3", bucket: backups, access_key_id_file: ./s3/access_key_id, secret_access_key_file: ./s3/secret_access_key, region: us-east-1}
backups:
  go-src:
    provider: restic
    repository: local
    source: {paths: [./data/go-src], exclude: ["*.tmp"]}
    schedule: "0 3 * * *"
    retention: {keep_last: 3, keep_daily: 7, keep_weekly: 4}
    drill:
      checks:
        - path: ./data/go-src/$check_file
          sha256: $check_sum
  debian-db:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: $port, database: debian, user: postgres, password_file: ./pg.password}
    schedule: "0 2 * * *"
    retention: {keep_last: 3, keep_daily: 7}
    drill:
      checks:
        - sql: "select count(*) > 50000 from packages"
        - sql: "select count(*) = $accounts from pgbench_accounts"
        - sql: "select not exists (select 1 from dependencies d left join packages p on (d.package, d.version, d.architecture) = (p.name, p.version, p.architecture) where p.name is null)"
  media:
    provider: s3-mirror                # bucket media copied into backups/mirrors/media/<UTC time>/
    source: {endpoint: "$s3", bucket: media, access_key_id_file: ./s3/access_key_id, secret_access_key_file: ./s3/secret_access_key, region: us-east-1}
    destination: {location: backups, prefix: mirrors}   # an entry of s3_locations (below)
    schedule: "0 4 * * *"
    retention: {keep_last: 3, keep_daily: 7}
    drill:
      checks:
        - object: video/big.bin
        - min_objects: $objects
# The rest of the status page: the cluster above as a service, a local CA
# and a leaf, the host's filesystems and an estimate of its energy.
services:
  postgres:
    runtime:
      exec:
        start: "$REPO/scripts/pg-throwaway.sh start ./pg"
        stop: "$REPO/scripts/pg-throwaway.sh stop ./pg"
        status: "$REPO/scripts/pg-throwaway.sh status ./pg"
    health: {postgres: {host: 127.0.0.1, port: $port, database: debian, user: postgres, password_file: ./pg.password}}
certs:
  leaves:
    web: {sans: [web.quickstart.lab]}
hosts: {warn_days: 14, filesystems: [./data]}
energy: {price_per_kwh: 0.20, currency: EUR, watts: {idle: 18, busy: 45}}
EOF
	mv -f "$LAB.tmp" "$LAB"
	log "wrote $LAB (drill checks: sha256 of $check_file, $accounts pgbench_accounts rows)"
	until_here lab

	step "Checking the lab file and creating the restic repository"
	homelab lab validate
	homelab repo init local

	step "Backing up, listing and drilling (restore + checks) every target"
	homelab backup run --all
	homelab backup list
	homelab backup verify --all

	step "A local CA and a leaf certificate, then status: services, backups, TLS, host and energy"
	homelab cert init
	homelab cert issue web
	homelab status

	step "The daemon: homelab serve catches up the missed weekly repository check, serves the status page and /metrics"
	serve_daemon

	cat >&2 <<EOF

✓ quickstart finished in $((SECONDS - start))s. Everything is in $WORK:
  lab file         $LAB
  restic repo      $WORK/repo (password in $WORK/restic.pass)
  state / catalog  $WORK/state
  files backed up  $WORK/data/go-src
  PostgreSQL       127.0.0.1:$port, database debian, user postgres (password in $WORK/pg.password)
  S3 (versitygw)   $s3, buckets media and backups (keys in $WORK/s3/); objects are files under $WORK/s3/buckets
                   the cluster and the S3 server are still running, so you can explore.

Try:
  $HOMELAB --lab $LAB serve          (then open http://127.0.0.1:8470/)
  $HOMELAB --lab $LAB status
  $HOMELAB --lab $LAB backup list
  restic -r $WORK/repo --password-file $WORK/restic.pass snapshots --tag homelab
  (set -a; . $WORK/pg/env; PGPASSWORD=\$(cat $WORK/pg.password) psql debian)

Clean up:
  $REPO/scripts/pg-throwaway.sh stop $WORK/pg && $REPO/scripts/s3-throwaway.sh stop $WORK/s3 && rm -rf $WORK
EOF
}

# fill_bucket ENDPOINT BUCKET: creates BUCKET and fills it with a few
# hundred objects (the Go tree's doc files under docs/, a tree of small
# generated objects, and one of 20 MiB, above the multipart threshold)
# with curl --aws-sigv4; prints how many. The keys reach curl in a config
# file (0600, removed after), never argv.
fill_bucket() {
	local ep=$1 bucket=$2 conf=$WORK/s3/curl.conf n=0 f key i
	(
		umask 077
		printf 'user = "%s:%s"\naws-sigv4 = "aws:amz:us-east-1:s3"\nheader = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\nfail-with-body\nsilent\nshow-error\n' \
			"$(<"$WORK/s3/access_key_id")" "$(<"$WORK/s3/secret_access_key")" >"$conf"
	)
	put() { # put KEY FILE CONTENT-TYPE
		curl -K "$conf" -H "Content-Type: $3" -H "x-amz-meta-origin: quickstart" -T "$2" "$ep/$bucket/$1" >/dev/null
	}
	curl -K "$conf" -X PUT "$ep/$bucket" >/dev/null
	curl -K "$conf" -X PUT "$ep/backups" >/dev/null
	head -c $((20 * 1048576)) /dev/urandom >"$WORK/s3/big.bin"
	put video/big.bin "$WORK/s3/big.bin" video/mp4
	rm -f "$WORK/s3/big.bin"
	n=1
	for f in "$WORK"/data/go-src/*/doc.go; do
		[ "$n" -lt 150 ] || break
		key=docs/$(basename "$(dirname "$f")")/doc.go
		put "$key" "$f" text/x-go
		n=$((n + 1))
	done
	for i in $(seq 1 250); do
		printf 'sample object %d of the quickstart\n' "$i" >"$WORK/s3/obj"
		put "generated/$((i % 10))/object%20$i.txt" "$WORK/s3/obj" text/plain
		n=$((n + 1))
	done
	rm -f "$WORK/s3/obj" "$conf"
	printf '%s\n' "$n"
}

# serve_daemon starts homelab serve on a free loopback port, waits for the
# catch-up run of the repository check (its weekly slot passed and it never
# ran), shows the JSON API and the metrics, then stops it with SIGTERM.
serve_daemon() {
	local slog="$WORK/serve.log" url="" i
	"$HOMELAB" --lab "$LAB" serve --listen 127.0.0.1:0 2>"$slog" &
	local pid=$!
	for i in $(seq 1 100); do
		url=$(grep -o '"url":"http://[^"]*"' "$slog" | head -n1 | cut -d'"' -f4 || true)
		[ -n "$url" ] && break
		kill -0 "$pid" 2>/dev/null || { cat "$slog" >&2; die "homelab serve exited"; }
		sleep 0.1
	done
	[ -n "$url" ] || die "homelab serve did not report its address (log: $slog)"
	log "homelab serve (pid $pid) at $url"
	curl -fsS "${url}healthz" >/dev/null
	for i in $(seq 1 300); do
		curl -fsS "${url}api/v1/runs?kind=check" | grep -q '"result":"ok"' && break
		sleep 0.5
	done
	curl -fsS "${url}api/v1/runs?kind=check&limit=1" | grep -q '"result":"ok"' || die "the catch-up repository check did not pass (log: $slog)"
	log "catch-up: $(grep -c '"msg":"job started"' "$slog") job(s) ran at start; the repository check passed"
	local page section
	page=$(curl -fsS "$url")
	for section in services backups history tls host; do
		grep -q "<h2 id=\"$section\">" <<<"$page" || die "the status page has no $section section (log: $slog)"
	done
	log "the status page (${url}) shows services, backups, history, TLS and the host with its energy"
	log "metrics (${url}metrics):"
	curl -fsS "${url}metrics" | grep '^homelab_' | sed 's/^/    /' >&2
	kill -TERM "$pid"
	wait "$pid" || die "homelab serve exited non-zero after SIGTERM (log: $slog)"
	log "stopped with SIGTERM; its JSON log is $slog"
}

main "$@"
