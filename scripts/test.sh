#!/usr/bin/env bash
# test.sh: the test command of README.md and CI. Installs what the tests
# need (scripts/install-deps.sh: PostgreSQL, chromium, haproxy,
# debootstrap, prometheus-alertmanager and prometheus (promtool) from apt,
# restic >= 0.17 built from the Go module proxy;
# scripts/install-compose.sh: Docker Compose v2; the systemd test image;
# the PostgreSQL 15+17 root of scripts/build-pg-majors-root.sh)
# when run as root, then vets and runs every test
# against the real tools. Under CI=true a missing tool fails the tests
# instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
	./scripts/install-deps.sh
	./scripts/install-compose.sh
	# The Debian rootfs image with systemd as PID 1 that the systemd
	# runtime and journald tests boot (cached by its recipe's hash).
	./scripts/build-systemd-image.sh >/dev/null
	# The trixie root with PostgreSQL 17 and bookworm's 15 side by side
	# that the major-upgrade tests run pg_upgrade in (cached likewise).
	./scripts/build-pg-majors-root.sh >/dev/null
fi
export PATH="/usr/local/go/bin:$PATH"
go vet ./...
# The tests mostly wait (on restic, PostgreSQL, Docker, health gates;
# the end-to-end packages under e2e/ most of all), so run twice as many
# test processes as there are cores, at least 4, where go test runs one
# per core by default.
p=$(($(nproc) * 2))
[ "$p" -ge 4 ] || p=4
go test -count=1 -p "$p" -timeout 20m ./...
