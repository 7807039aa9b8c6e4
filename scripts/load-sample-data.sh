#!/usr/bin/env bash
# load-sample-data.sh DIR DB: load real sample data into database DB of the
# throwaway cluster in DIR (made by scripts/pg-throwaway.sh start DIR).
#
# The data is nobody's here: the Debian package index apt keeps in
# /var/lib/apt/lists/*_Packages* (plain, .lz4, .gz or .xz; about 60,000
# packages for bookworm/main on amd64), parsed into
#   maintainers   one row per Maintainer field, with the package count
#   packages      (name, version, architecture) primary key, foreign key
#                 to maintainers, indexes on section and maintainer
#   dependencies  Depends / Pre-Depends / Recommends / Suggests, one row per
#                 alternative, foreign key to packages, index on depends_on
# plus pgbench's tables (pgbench -i -s ${PGBENCH_SCALE:-20}: 100,000
# pgbench_accounts rows per scale unit, about 15 MB each).
#
# DB is dropped and created again, so running this twice gives the same
# database. Row counts are printed on stdout at the end. The password is
# read from DIR/pgpass.password into PGPASSWORD (environment only, never a
# command line). If apt has no package index yet, runs `apt-get update`
# (root only).
#
# Environment:
#   PGBENCH_SCALE   pgbench scale factor (default 20; 0 skips pgbench)
#   APT_LISTS       where to look for Packages files (default /var/lib/apt/lists)
set -euo pipefail

log() { printf '%s\n' "load-sample-data: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	printf 'usage: %s DIR DB\n' "${0##*/}" >&2
	exit 2
}

# packages_files: prints apt's Packages index files, one a line.
packages_files() {
	find "${APT_LISTS:-/var/lib/apt/lists}" -maxdepth 1 -type f \
		\( -name '*_Packages' -o -name '*_Packages.lz4' -o -name '*_Packages.gz' -o -name '*_Packages.xz' \) |
		sort
}

# decompress FILE: writes FILE's content, whatever its compression, to stdout.
decompress() {
	case $1 in
	*.lz4) lz4cat "$1" ;;
	*.gz) gzip -dc "$1" ;;
	*.xz) xz -dc "$1" ;;
	*) cat "$1" ;;
	esac
}

# origin FILE: "bookworm/main" from ..._dists_bookworm_main_binary-amd64_Packages.lz4
origin() {
	local b=${1##*/}
	b=${b#*_dists_}
	b=${b%%_binary-*}
	printf '%s\n' "${b//_//}"
}

# index_stream: all Packages files as one stream of RFC 822 stanzas, each
# file preceded by an "X-Homelab-Origin:" stanza naming where it came from.
index_stream() {
	local f
	while IFS= read -r f; do
		printf 'X-Homelab-Origin: %s\n\n' "$(origin "$f")"
		decompress "$f"
		printf '\n'
	done
}

# The parser: stanzas in, two CSV files out (packages, dependencies). The
# first stanza for a (name, version, architecture) wins.
# shellcheck disable=SC2016 # awk program, not shell
readonly PARSER='
function q(s) {
	if (s == "") return ""
	gsub(/"/, "\"\"", s)
	return "\"" s "\""
}
function num(s) { return (s ~ /^[0-9]+$/) ? s : "" }
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
# rel(KIND, VALUE): one dependencies row per alternative of each group.
function rel(kind, v,    groups, ng, g, alts, na, a, s, name, op, ver, inner) {
	if (v == "") return
	ng = split(v, groups, /,/)
	for (g = 1; g <= ng; g++) {
		na = split(groups[g], alts, /\|/)
		for (a = 1; a <= na; a++) {
			s = trim(alts[a])
			if (s == "") continue
			op = ""; ver = ""
			if (match(s, /\([^)]*\)/)) {
				inner = trim(substr(s, RSTART + 1, RLENGTH - 2))
				if (match(inner, /^(<<|<=|>=|>>|=|<|>)/)) {
					op = substr(inner, 1, RLENGTH)
					ver = trim(substr(inner, RLENGTH + 1))
				}
			}
			name = s
			sub(/[ (\[<].*$/, "", name)
			sub(/:.*$/, "", name)
			if (name == "") continue
			printf "%s,%s,%s,%s,%d,%d,%s,%s,%s\n", q(f["Package"]), q(f["Version"]), q(f["Architecture"]),
				kind, g, a, q(name), q(op), q(ver) > deps
		}
	}
}
BEGIN { RS = ""; FS = "\n" }
{
	split("", f)
	key = ""
	for (i = 1; i <= NF; i++) {
		line = $i
		if (line ~ /^[ \t]/) continue      # continuation line (long Description, Tag)
		c = index(line, ":")
		if (c == 0) continue
		key = substr(line, 1, c - 1)
		f[key] = trim(substr(line, c + 1))
	}
	if ("X-Homelab-Origin" in f) { origin = f["X-Homelab-Origin"]; next }
	if (f["Package"] == "" || f["Version"] == "" || f["Architecture"] == "") next
	id = f["Package"] SUBSEP f["Version"] SUBSEP f["Architecture"]
	if (id in seen) { dups++; next }
	seen[id] = 1
	n++
	printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
		q(f["Package"]), q(f["Version"]), q(f["Architecture"]), q(f["Section"]), q(f["Priority"]),
		q(f["Maintainer"]), num(f["Installed-Size"]), num(f["Size"]), q(f["SHA256"]), q(f["Homepage"]),
		q(f["Description"]), q(f["Source"]), q(f["Filename"]), q(origin), (f["Essential"] == "yes" ? "t" : "f") > pkgs
	rel("depends", f["Depends"])
	rel("pre-depends", f["Pre-Depends"])
	rel("recommends", f["Recommends"])
	rel("suggests", f["Suggests"])
}
END { printf "parsed %d packages (%d duplicates skipped)\n", n, dups > "/dev/stderr" }
'

# shellcheck disable=SC2016 # SQL with $$-quoted strings, not shell
readonly SCHEMA='
create table maintainers (
	maintainer text primary key,
	name       text not null,
	email      text,
	packages   integer not null check (packages > 0)
);
create table packages (
	name           text not null,
	version        text not null,
	architecture   text not null,
	section        text,
	priority       text,
	maintainer     text not null,
	installed_size bigint check (installed_size >= 0),
	size           bigint not null check (size >= 0),
	sha256         text check (sha256 ~ $$^[0-9a-f]{64}$$),
	homepage       text,
	description    text,
	source         text,
	filename       text not null,
	origin         text not null,
	essential      boolean not null default false,
	primary key (name, version, architecture)
);
create table dependencies (
	id           bigint generated always as identity primary key,
	package      text not null,
	version      text not null,
	architecture text not null,
	kind         text not null check (kind in ($$depends$$, $$pre-depends$$, $$recommends$$, $$suggests$$)),
	alt_group    integer not null,
	alternative  integer not null,
	depends_on   text not null,
	op           text check (op in ($$<<$$, $$<=$$, $$=$$, $$>=$$, $$>>$$, $$<$$, $$>$$)),
	op_version   text,
	check ((op is null) = (op_version is null)),
	foreign key (package, version, architecture)
		references packages (name, version, architecture) on delete cascade
);
'

# shellcheck disable=SC2016 # SQL with $$-quoted strings, not shell
readonly AFTER_LOAD='
insert into maintainers (maintainer, name, email, packages)
select maintainer,
       coalesce(nullif(trim(substring(maintainer from $$^([^<]*)$$)), $$$$), maintainer),
       substring(maintainer from $$<([^>]+)>$$),
       count(*)
from packages group by maintainer;
alter table packages add foreign key (maintainer) references maintainers (maintainer);
create index packages_section_idx on packages (section);
create index packages_maintainer_idx on packages (maintainer);
create index dependencies_depends_on_idx on dependencies (depends_on);
create index dependencies_package_idx on dependencies (package, version, architecture);
'

main() {
	[ $# -eq 2 ] || usage
	local dir=$1 db=$2 scale=${PGBENCH_SCALE:-20}
	[[ $db =~ ^[a-z_][a-z0-9_]*$ ]] || die "database name '$db' must match [a-z_][a-z0-9_]*"
	[[ $scale =~ ^[0-9]+$ ]] || die "PGBENCH_SCALE must be a whole number, got '$scale'"
	if [ ! -r "$dir/env" ] || [ ! -r "$dir/pgpass.password" ]; then
		die "$dir/env or $dir/pgpass.password missing; start the cluster first: scripts/pg-throwaway.sh start $dir"
	fi
	command -v psql >/dev/null 2>&1 || die "psql not found; run scripts/install-deps.sh"

	set -a
	# shellcheck source=/dev/null
	. "$dir/env"
	set +a
	PGPASSWORD=$(<"$dir/pgpass.password")
	export PGPASSWORD PGDATABASE=postgres PGAPPNAME=load-sample-data PGOPTIONS='-c client_min_messages=warning'
	psql -XAtq -c 'select 1' >/dev/null ||
		die "cannot connect to $PGHOST:$PGPORT as $PGUSER; is the cluster running? (scripts/pg-throwaway.sh status $dir)"

	local files
	files=$(packages_files)
	if [ -z "$files" ]; then
		[ "$(id -u)" -eq 0 ] || die "no apt package index in ${APT_LISTS:-/var/lib/apt/lists}; run 'sudo apt-get update' first"
		log "no apt package index yet; running apt-get update"
		apt-get update -q >&2
		files=$(packages_files)
		[ -n "$files" ] || die "still no *_Packages* files in ${APT_LISTS:-/var/lib/apt/lists} after apt-get update"
	fi
	local f
	while IFS= read -r f; do
		case $f in
		*.lz4) command -v lz4cat >/dev/null 2>&1 || die "$f needs lz4cat (apt-get install lz4)" ;;
		*.xz) command -v xz >/dev/null 2>&1 || die "$f needs xz (apt-get install xz-utils)" ;;
		esac
	done <<<"$files"

	local tmp
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT

	log "parsing $(wc -l <<<"$files") package index file(s):"
	while IFS= read -r f; do log "  $f"; done <<<"$files"
	index_stream <<<"$files" | awk -v pkgs="$tmp/packages.csv" -v deps="$tmp/dependencies.csv" "$PARSER"

	log "creating database $db (dropping an old one)"
	psql -Xq -v ON_ERROR_STOP=1 -c "drop database if exists $db with (force)" -c "create database $db"
	export PGDATABASE=$db

	log "loading maintainers, packages and dependencies"
	psql -Xq -v ON_ERROR_STOP=1 -c "$SCHEMA"
	psql -Xq -v ON_ERROR_STOP=1 -c '\copy packages (name, version, architecture, section, priority, maintainer, installed_size, size, sha256, homepage, description, source, filename, origin, essential) from stdin with (format csv)' <"$tmp/packages.csv"
	psql -Xq -v ON_ERROR_STOP=1 -c '\copy dependencies (package, version, architecture, kind, alt_group, alternative, depends_on, op, op_version) from stdin with (format csv)' <"$tmp/dependencies.csv"
	psql -Xq -v ON_ERROR_STOP=1 -c "$AFTER_LOAD"

	if [ "$scale" -gt 0 ]; then
		log "pgbench -i -s $scale ($((scale * 100000)) pgbench_accounts rows)"
		pgbench -i -q -s "$scale" "$db" 2>&1 | sed 's/^/load-sample-data: pgbench: /' >&2
	fi
	psql -Xq -v ON_ERROR_STOP=1 -c 'vacuum analyze'

	log "done; row counts:"
	local sql="select 'maintainers', count(*) from maintainers
		union all select 'packages', count(*) from packages
		union all select 'dependencies', count(*) from dependencies"
	if [ "$scale" -gt 0 ]; then
		sql="$sql union all select 'pgbench_accounts', count(*) from pgbench_accounts"
	fi
	sql="$sql union all select 'database size', pg_database_size(current_database())"
	psql -XAtq -F $'\t' -v ON_ERROR_STOP=1 -c "$sql" |
		awk -F'\t' '$1 == "database size" { printf "%-18s %12.1f MB\n", $1, $2 / 1048576; next } { printf "%-18s %12d\n", $1, $2 }'
}

main "$@"
