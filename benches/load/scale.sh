#!/usr/bin/env bash
# `tollgate serve --demo` at a fleet size (issue 10), measured as a user would: resident memory
# and CPU while nobody asks anything, quota checks closed-loop (wrk -t1 -c16) and open-loop at
# RATE/s (oha, latency-corrected), and open-loop again while a month's FOCUS export streams.
# Each latency is printed beside its anchor measured in the same run: the same load against
# /healthz, which does no work, so the figure the machine itself allows is on the same line.
#
# Usage: benches/load/scale.sh [SCALE] [RATE] [SECONDS]     (defaults: 48 5000 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
scale="${1:-48}"
rate="${2:-5000}"
seconds="${3:-20}"
. benches/load/oha.sh
command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
address=127.0.0.1:18933
./target/release/tollgate serve --demo --demo-scale "$scale" --listen "$address" \
  --config benches/load/demo-budgets.toml --log-format json 2>/dev/null >/dev/null &
server=$!
trap 'kill $server 2>/dev/null' EXIT
until curl -sf "http://$address/readyz" >/dev/null; do sleep 0.2; done
sleep 30 # warm-up: first reconciles, the metrics page built once

ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
idle=60
before=$(ticks)
sleep "$idle"
after=$(ticks)
rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")
cpu=$(awk -v a="$before" -v b="$after" -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.2f", 100 * (b - a) / hz / s }')
echo "scale $scale idle: resident ${rss} MiB, ${cpu} % of a core over ${idle} s"

p99_wrk() { # URL [BODY]: p99 of wrk -t1 -c16 for SECONDS
  BODY="${2:-}" wrk -t1 -c16 -d"${seconds}s" --latency ${2:+-s benches/load/post.lua} "$1" |
    awk '$1 == "99%" { p = $2 } /Requests\/sec/ { r = $2 } END { printf "p99 %s at %.0f/s", p, r }'
}
p99_oha() { # URL [BODY]: p99 of oha at RATE/s for SECONDS
  "$oha" --no-tui -z "${seconds}s" -q "$rate" -c 32 --latency-correction \
    ${2:+-m POST -D "$2"} "$1" |
    awk '$1 == "99.00%" { p = $3 " " $4 } /Success rate/ { ok = $3 } END { printf "p99 %s, success %s", p, ok }'
}
# The server's own p99 of deciding (tollgate_quota_check_duration_seconds, whose buckets double
# from 10 µs): the bucket bound the 99th percentile of the checks between two scrapes falls in.
buckets() { curl -sf "http://$address/metrics" | awk -F'[{}" ]+' '/^tollgate_quota_check_duration_seconds_bucket/ { print $3, $NF }'; }
decision_p99() { # BEFORE AFTER (outputs of buckets)
  paste -d' ' <(echo "$1") <(echo "$2") | awk '{ le[NR] = $1; n[NR] = $4 - $2 } END {
    total = n[NR]; for (i = 1; i <= NR; i++) if (n[i] >= 0.99 * total) { printf "decided in ≤ %.2f ms at p99 (server side)", le[i] * 1000; exit } }'
}
quota="http://$address/api/v1/quota/check"
body=benches/load/demo-quota-body.json
echo "closed loop:       quota $(p99_wrk "$quota" "$body");  anchor /healthz $(p99_wrk "http://$address/healthz")"
before_buckets=$(buckets)
open=$(p99_oha "$quota" "$body")
open="$open, $(decision_p99 "$before_buckets" "$(buckets)")"
echo "open loop $rate/s: quota $open;  anchor /healthz $(p99_oha "http://$address/healthz")"

from=$(date -u -d '30 days ago' +%F)
export_started=$(date +%s%N)
curl -sf -o /dev/null "http://$address/api/v1/chargeback?format=focus&from=$from" &
export_job=$!
sleep 1
before_buckets=$(buckets)
during=$(p99_oha "$quota" "$body")
during="$during, $(decision_p99 "$before_buckets" "$(buckets)")"
wait "$export_job"
export_ms=$(( ($(date +%s%N) - export_started) / 1000000 ))
hwm=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")
echo "open loop $rate/s during a 30-day FOCUS export (${export_ms} ms): quota $during; peak resident ${hwm} MiB"
