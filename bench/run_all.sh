#!/usr/bin/env bash
# Every benchmark, one after the other (about 3 minutes): bench/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench_lifecycle bench_rpc bench_writes bench_slow_work bench_cli bench_list bench_backup; do
    .venv/bin/python "bench/$b.py"
done
