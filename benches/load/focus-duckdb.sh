#!/usr/bin/env bash
# The anchor of the FOCUS export's speed (issue 14): DuckDB (PyPI) doing comparable work on the
# same month of the same fleet, measured in the same run as Tollgate's own figures.
#
# The demo fleet at SCALE (default 48: 10,032 GPUs) is rolled up for the 30 days before
# 2026-11-30 into a scratch store; its segment archive (one row per allocation, DRA claim and
# node capacity stretch and day, clipped to the day) is what DuckDB reads. DuckDB then prices
# every row (at one price, the H100's, in DECIMAL arithmetic: less than Tollgate does), builds the text
# columns a FOCUS row carries (description, allocation details JSON, tags JSON) and writes every
# row to CSV and to Parquet — timed from reading the segments to the closed file. Beside it, the
# same month from Tollgate: `tollgate report --demo --format focus --output FILE`, whole process
# (the demo fleet generated, then each day priced, rounded and written; no store), and `cargo
# bench --bench report -- focus_export` for the export alone.
#
# Usage: benches/load/focus-duckdb.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/../.."
scale="${1:-48}"
python3 -c 'import duckdb' 2>/dev/null || { echo "duckdb is missing (pip install duckdb)" >&2; exit 1; }
cargo build --release --quiet
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf '[store]\ndir = "%s/store"\n' "$scratch" >"$scratch/config.toml"
window=(--from 2026-10-31 --to 2026-11-30)
demo=(--demo --demo-scale "$scale" --as-of 2026-11-30T00:00:00Z)
./target/release/tollgate store backfill "${demo[@]}" --config "$scratch/config.toml" "${window[@]}" \
  >/dev/null 2>&1

python3 - "$scratch" <<'EOF'
import sys, time, duckdb
scratch = sys.argv[1]
db = duckdb.connect()
select = f"""
  WITH rows AS (
    SELECT s.*, p.price,
      CAST(s.units_numer AS DECIMAL(38, 10)) / s.units_denom * ("end" - start) / 3600 AS hours
    FROM read_parquet('{scratch}/store/rollups/segments/*.parquet') s
    CROSS JOIN (VALUES (6.88::DECIMAL(38, 10))) p(price)
  )
  SELECT
    '{{"Elements":[{{"AllocatedRatio":1,"UsageUnit":"GPU-Hours","UsageQuantity":' || hours || '}}]}}'
      AS AllocatedMethodDetails,
    'tollgate-gpu-hours' AS AllocatedMethodId,
    resource_id AS AllocatedResourceId, pod AS AllocatedResourceName,
    '{{"cost_center":"' || cost_center || '","namespace":"' || namespace || '"}}' AS AllocatedTags,
    CAST(ROUND(hours * price, 2) AS DECIMAL(38, 2)) AS BilledCost,
    'tollgate' AS BillingAccountId, 'USD' AS BillingCurrency,
    to_timestamp(start) AS ChargePeriodStart, to_timestamp("end") AS ChargePeriodEnd,
    'H100 GPU time of pod ' || namespace || '/' || pod || ' on node ' || node AS ChargeDescription,
    CAST(ROUND(hours, 4) AS DECIMAL(38, 4)) AS ConsumedQuantity, 'GPU-Hours' AS ConsumedUnit,
    resource_id AS ResourceId, pod AS ResourceName, product AS SkuId,
    namespace AS SubAccountId, namespace AS SubAccountName,
    '{{"cost_center":"' || cost_center || '"}}' AS Tags, cost_center AS x_CostCenter
  FROM rows
"""
rows = db.execute(f"SELECT count(*) FROM ({select})").fetchall()[0][0]
for name, options in [("csv", "FORMAT csv, HEADER"), ("parquet", "FORMAT parquet")]:
    started = time.perf_counter()
    db.execute(f"COPY ({select}) TO '{scratch}/focus.{name}' ({options})")
    print(f"duckdb {duckdb.__version__}: {rows} rows to {name} in {time.perf_counter() - started:.2f} s")
EOF

for output in focus.csv focus.parquet; do
  started=$(date +%s.%N)
  ./target/release/tollgate report "${demo[@]}" "${window[@]}" --format focus \
    --output "$scratch/tollgate-$output" 2>/dev/null
  echo "tollgate report --format focus --output $output (whole process): $(echo "$(date +%s.%N) - $started" | bc) s"
done
