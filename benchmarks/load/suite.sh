#!/usr/bin/env bash
# The full set of load figures kept in benchmarks/results/ (about 16 minutes on 2 cores):
#   1. direct vs fastroute (with and without the policy file) vs nginx at 1/4/16/64 connections,
#      plain and streaming, + wrk cross-check, + plot
#   2. the same at 1 and 64 connections again (stability: compare the two runs' ratios)
#   3. FASTROUTE_WORKERS=1 vs 2 (scaling)
#   4. peak RSS with a 100,000-entry semantic cache
#   5. microseconds per request per pipeline stage
# Usage: benchmarks/load/suite.sh [results-dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-benchmarks/results}"
mkdir -p "$out"
stamp="$(date -u +%Y%m%d-%H%M)"
py="${PYTHON:-python}"

$py benchmarks/load/run.py --connections 1,4,16,64 --rounds 3 --duration 3 --warmup 1 --wrk \
  --targets fastroute,fastroute-nopolicy,nginx \
  --results "$out" --note "suite run 1 (connection sweep)"
$py benchmarks/load/run.py --connections 1,64 --rounds 3 --duration 4 --warmup 1 \
  --results "$out" --plot "$out/load-$stamp-rerun.png" --note "suite run 2 (stability re-run)"
$py benchmarks/load/run.py --targets "" --workers-compare 1,2 --unpinned --modes plain --connections 64 \
  --rounds 3 --duration 4 --warmup 1 --markdown "$out/scaling-$stamp.md" --json "$out/scaling-$stamp.json"
$py benchmarks/load/cache_rss.py --entries 100000 --env FASTROUTE_CACHE_MAX_BYTES=4000000000 \
  | tee "$out/cache-rss-$stamp.txt"
$py benchmarks/load/stage_costs.py 2>/dev/null | tee "$out/stage-costs-$stamp.txt"
