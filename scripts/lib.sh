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
