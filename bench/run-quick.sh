#!/usr/bin/env bash
# Every benchmark in its --quick size, one after the other: proves they run (CI).
# Benchmarks measure, they do not judge: only a crash fails this script.
#   bash bench/run-quick.sh [extra args for every benchmark, e.g. --latency 20]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
start=$(date +%s)
for bench in list_jobs attach_latency keystrokes throughput footprint growth forward stacks; do
    echo "::: bench/$bench.py --quick $*"
    "$python" "bench/$bench.py" --quick "$@"
done
echo "::: all benchmarks ran (quick) in $(( $(date +%s) - start )) s"
