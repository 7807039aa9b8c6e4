#!/usr/bin/env bash
# fuzz-lab.sh: fuzz the lab file loader (internal/lab's FuzzLoad) for a
# bounded time. FuzzLoad feeds lab.Parse arbitrary bytes, starting from
# every testdata/*.yaml file and the inputs that once crashed it or got a
# wrong line (issue 12), and fails when the loader panics, reports a
# problem without the file and a line inside it, reports them out of line
# order, or reports differently the second time. `go test` runs the seeds
# alone every time; this script searches beyond them.
#
# A failing input is written to internal/lab/testdata/fuzz/FuzzLoad/ and
# `go test ./internal/lab` replays it from there until the bug is fixed;
# then add it to fuzzSeeds in internal/lab/fuzz_test.go (the corpus
# directory is not meant to be committed). The fuzzer's growing corpus
# lives in $(go env GOCACHE)/fuzz and survives between runs.
#
# Usage: bench/fuzz-lab.sh   (from anywhere in the repository)
#
# Environment:
#   FUZZTIME   how long to fuzz, a Go duration or Nx for N inputs (default 60s)
#   PARALLEL   fuzzing workers (default: go test's, GOMAXPROCS)
set -euo pipefail

cd "$(dirname "$0")/.."
args=(-run '^$' -fuzz '^FuzzLoad$' -fuzztime "${FUZZTIME:-60s}")
if [[ -n "${PARALLEL:-}" ]]; then
	args+=(-parallel "$PARALLEL")
fi
exec go test "${args[@]}" ./internal/lab
