#!/usr/bin/env bash
# The benchmark in one command. Flags go to the runner, e.g.
#   bench/run.sh --quick
#   bench/run.sh --gateways gatehouse,hive-router --variants dedup-off,unique-auth
# See bench/README.md. Installs wrk (Debian) if missing; the runner installs
# the peer gateways into bench/.peers itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "[bench] installing wrk"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
# The runner and its subgraphs are built like the gateway: optimised, thin LTO.
exec cargo run --quiet -p gatehouse-bench --profile bench-release -- run "$@"
