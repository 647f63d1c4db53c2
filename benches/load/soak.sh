#!/usr/bin/env bash
# Soak of `tollgate serve` over a month of churn (issue 10): the demo fleet at SCALE (48: 10,032
# GPUs) moving through the watch path for DAYS simulated days at SPEED× real time, its ledger
# kept on disk like a cluster's and its days rolled up as they close. Once per simulated day it
# prints resident memory, the mean reconcile time over that day, and the ledger segments kept in
# memory; at the end, day DAYS against day 1. Then the service is stopped and started again on
# the same data, and the time until /readyz answers 200 is printed.
#
# Usage: benches/load/soak.sh [SCALE] [DAYS] [SPEED]      (defaults: 48 35 2400, ~21 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
scale="${1:-48}"
days="${2:-35}"
speed="${3:-2400}"
cargo build --release --quiet
address=127.0.0.1:18932
data="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$data"' EXIT

start() {
  ./target/release/tollgate serve --demo --demo-scale "$scale" --demo-speed "$speed" \
    --demo-data "$data" --listen "$address" --log-format json 2>>"$data/serve.log" >/dev/null &
  server=$!
}
metric() {
  curl -sf "http://$address/metrics" | awk -v name="$1" '!found && ($1 == name || index($1, name"{") == 1) { print $2; found = 1 }'
}
ready_after() {
  local began=$1
  until curl -sf "http://$address/readyz" >/dev/null; do sleep 0.05; done
  echo "$(( $(date +%s%N) / 1000000 - began ))"
}

began=$(( $(date +%s%N) / 1000000 ))
start
echo "first start: ready after $(ready_after "$began") ms (history rolled up day by day)"
seconds_per_day=$(( 86400 / speed ))
printf '%4s %10s %14s %8s %8s %10s\n' day rss_mib reconcile_ms open closed ledger_kib
first_rss="" first_reconcile=""
t0=$(date +%s)
for day in $(seq 1 "$days"); do
  sum=0 n=0
  while [ $(( $(date +%s) - t0 )) -lt $(( day * seconds_per_day )) ]; do
    r=$(metric tollgate_reconcile_duration_seconds)
    sum=$(awk -v a="$sum" -v b="$r" 'BEGIN { print a + b }')
    n=$((n + 1))
    sleep 2
  done
  rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")
  reconcile=$(awk -v s="$sum" -v n="$n" 'BEGIN { printf "%.1f", 1000 * s / (n > 0 ? n : 1) }')
  ledger=$(du -sk "$data"/ledger-* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
  printf '%4s %10s %14s %8s %8s %10s\n' "$day" "$rss" "$reconcile" \
    "$(metric 'tollgate_ledger_segments{state="open"}')" \
    "$(metric 'tollgate_ledger_segments{state="closed"}')" "$ledger"
  if [ "$day" = 1 ]; then first_rss=$rss first_reconcile=$reconcile; fi
done
echo "day $days vs day 1: resident memory ${rss} / ${first_rss} MiB = $(awk -v a="$rss" -v b="$first_rss" 'BEGIN { printf "%.2f", a / b }')×," \
  "reconcile ${reconcile} / ${first_reconcile} ms = $(awk -v a="$reconcile" -v b="$first_reconcile" 'BEGIN { printf "%.2f", a / b }')×"

kill -TERM "$server"
wait "$server" || true
began=$(( $(date +%s%N) / 1000000 ))
start
echo "restart on $days days of ledger and rollups: ready after $(ready_after "$began") ms"
