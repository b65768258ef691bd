#!/usr/bin/env bash
# Runs every benchmark of the repo with small bench times (a few minutes
# on 2 cores) and prints the go test output; BENCHMARKS.md is built from it.
#   scripts/bench.sh [extra go test flags]
# Heavy benchmarks (seconds per op: 100k users, 1M log records, 20 ms
# per call) run a fixed number of ops; the small ones run for MICRO time.
set -euo pipefail
cd "$(dirname "$0")/.."
heavy='^Benchmark(PlatformCycle5000|FullSync100k|EventPull1M|EventPullMillion|GradeSync100k|FetchScores10k|FetchScoresWithEvents|ExecuteAdd10k|ControlsSteadyState|SafeScores100k|SafeScores100kEmulator|PullAllUsers|PullMillionLogs|PutSnapshot100k|Snapshot100k|AppendAudit10k)$'
heavyx=${HEAVY:-3x}
micro=${MICRO:-1s}
echo "# $(date -u +%FT%TZ) $(go version) nproc=$(nproc)"
# packages that hold benchmarks
pkgs=$(grep -rlE --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)
for p in $pkgs; do
	names=$(go test -list '^Benchmark' "$p" | grep '^Benchmark' || true)
	big=$(grep -E "$heavy" <<<"$names" | paste -sd'|' - || true)
	small=$(grep -vE "$heavy" <<<"$names" | paste -sd'|' - || true)
	if [ -n "$big" ]; then
		go test -run='^$' -bench="^(${big})\$" -benchtime="$heavyx" -benchmem -timeout 60m "$@" "$p"
	fi
	if [ -n "$small" ]; then
		go test -run='^$' -bench="^(${small})\$" -benchtime="$micro" -benchmem -timeout 30m "$@" "$p"
	fi
done
