#!/usr/bin/env bash
# Loopback load test of POST /api/v1/quota/check (issue #5: p99 ≤ 1 ms at 5,000 requests/s).
#
# Runs a release `tollgate serve` on the fixture snapshot with the fixture budgets, then `oha`
# (from crates.io; installed into target/oha if missing) at a fixed rate with latency
# correction, sending the body Kyverno sends (no Content-Type). Usage:
#   benches/load/quota-load.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rate="${1:-5000}"
seconds="${2:-20}"
. benches/load/oha.sh
cargo build --release --quiet
address=127.0.0.1:18931
./target/release/tollgate serve --listen "$address" \
  --snapshot tests/fixtures/snapshot --as-of 2026-11-02T00:00:00Z \
  --pricing tests/fixtures/rates.toml --config tests/fixtures/quota/budgets.toml \
  --log-format json 2>/dev/null >/dev/null &
server=$!
trap 'kill $server' EXIT
until curl -sf "http://$address/readyz" >/dev/null; do sleep 0.1; done
"$oha" --no-tui -z "${seconds}s" -q "$rate" -c 32 --latency-correction \
  -m POST -D benches/load/quota-body.json "http://$address/api/v1/quota/check"
