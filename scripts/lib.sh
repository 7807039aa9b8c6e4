# shellcheck shell=bash
# lib.sh: shell helpers shared by scripts/*.sh and bench/*.sh (sourced).

# find_go: prints the go binary (sudo's secure_path often drops /usr/local/go/bin).
find_go() {
	local g
	for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
		if [ -n "$g" ] && [ -x "$g" ]; then
			printf '%s\n' "$g"
			return 0
		fi
	done
	return 1
}

# port_free PORT: true when nothing accepts connections on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port: prints a port in 20000-59999 nobody listens on (die, from the
# sourcing script, when there is none).
pick_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if port_free "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	die "no free TCP port found on 127.0.0.1"
}

# go_build_module GO MODULE VERSION PKG OUT [LDFLAGS]: builds PKG (a path
# inside the module, ./cmd/x) of MODULE@vVERSION, fetched with `go mod
# download` of that one exact version (some module proxies refuse the
# @v/list lookup `go install` makes), into OUT, static (CGO_ENABLED=0).
go_build_module() {
	local go=$1 module=$2 version=$3 pkg=$4 out=$5 ldflags=${6:-} tmp json dir
	tmp=$(mktemp -d)
	json=$(cd "$tmp" && GO111MODULE=on GOFLAGS='' "$go" mod download -json "$module@v$version") || {
		rm -rf "$tmp"
		die "go mod download $module@v$version failed: $json"
	}
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	if [ -z "$dir" ] || [ ! -d "$dir/$pkg" ]; then
		rm -rf "$tmp"
		die "go mod download gave no usable module directory: $json"
	fi
	mkdir -p "$(dirname "$out")"
	(cd "$dir" && CGO_ENABLED=0 GOFLAGS='' "$go" build -trimpath -ldflags "$ldflags" -o "$tmp/bin" "$pkg") || {
		rm -rf "$tmp"
		die "building $pkg in $dir failed"
	}
	mv -f "$tmp/bin" "$out"
	rm -rf "$tmp"
}
