//! The segment archive: each stored day's allocations and capacity, clipped to the day, kept
//! beside its rollups (`rollups/segments/YYYY-MM-DD.parquet`).
//!
//! Rollups answer reports grouped by the rollup keys; a report the rollups cannot answer
//! (grouped by pod, a FOCUS export, unallocated capacity shared out) is priced by the engine
//! from these records instead. That lets the running service forget a day's segments once the
//! day is stored: its memory follows what is live, while every past report stays exact.

use std::path::Path;

use polars::prelude::*;
use rust_decimal::Decimal;

use super::{StoreError, fail, write_frame};
use crate::allocation::{
    Allocation, AllocationKind, AllocationSet, CostCenterSource, NodeCapacity, Sym,
};
use crate::pricing::PriceTier;
use crate::time::Interval;
use crate::units::GpuUnits;

/// `record` of a capacity row; allocation rows hold their kind's code.
const CAPACITY: i32 = 0;
const KINDS: [AllocationKind; 4] = [
    AllocationKind::Gpu,
    AllocationKind::Mig,
    AllocationKind::Shared,
    AllocationKind::Dra,
];

fn kind_code(kind: AllocationKind) -> i32 {
    code_index(&KINDS, &kind) + 1
}

fn code_index<T: PartialEq>(all: &[T], value: &T) -> i32 {
    all.iter().position(|v| v == value).unwrap_or_default() as i32
}

/// The entry of `all` a code names.
fn decode<T: Copy>(all: &[T], code: i32) -> Option<T> {
    usize::try_from(code).ok().and_then(|i| all.get(i)).copied()
}

/// One column of text per name an allocation carries.
const TEXT: [&str; 8] = [
    "namespace",
    "pod",
    "pod_uid",
    "resource_id",
    "claim",
    "node",
    "product",
    "cost_center",
];

/// The columns of a segment file, filled row by row.
#[derive(Default)]
struct Columns<'a> {
    text: [Vec<&'a str>; 8],
    record: Vec<i32>,
    source: Vec<i32>,
    tier: Vec<i32>,
    numer: Vec<i64>,
    denom: Vec<i64>,
    start: Vec<i64>,
    end: Vec<i64>,
    price: Vec<Option<String>>,
}

/// One row: the names of [`TEXT`], what it is, and its figures.
struct Row<'a> {
    names: [&'a str; 8],
    record: i32,
    source: CostCenterSource,
    tier: PriceTier,
    units: GpuUnits,
    during: Interval,
    price_override: Option<Decimal>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, row: Row<'a>) {
        for (column, name) in self.text.iter_mut().zip(row.names) {
            column.push(name);
        }
        self.record.push(row.record);
        self.source
            .push(code_index(&CostCenterSource::ALL, &row.source));
        self.tier.push(code_index(&PriceTier::ALL, &row.tier));
        self.numer.push(row.units.numer());
        self.denom.push(row.units.denom());
        self.start.push(row.during.start);
        self.end.push(row.during.end);
        self.price.push(row.price_override.map(|p| p.to_string()));
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        let rows = self.record.len();
        let mut columns: Vec<Column> = TEXT
            .iter()
            .zip(self.text)
            .map(|(name, values)| Column::new((*name).into(), values))
            .collect();
        columns.extend([
            Column::new("record".into(), self.record),
            Column::new("cost_center_source".into(), self.source),
            Column::new("tier".into(), self.tier),
            Column::new("units_numer".into(), self.numer),
            Column::new("units_denom".into(), self.denom),
            Column::new("start".into(), self.start),
            Column::new("end".into(), self.end),
            Column::new("price_override".into(), self.price),
        ]);
        DataFrame::new(rows, columns)
    }
}

/// Writes the records of `sets` that fall in `day`, clipped to it, to `path`.
pub fn write_segments(
    path: &Path,
    sets: &[&AllocationSet],
    day: Interval,
) -> Result<(), StoreError> {
    let mut columns = Columns::default();
    for set in sets {
        let name = |sym| set.names.resolve(sym);
        for a in &set.allocations {
            let Some(during) = a.interval.clip(day) else {
                continue;
            };
            let names = [
                a.namespace,
                a.pod,
                a.pod_uid,
                a.resource_id,
                a.claim,
                a.node,
                a.product,
                a.cost_center,
            ];
            columns.push(Row {
                names: names.map(name),
                record: kind_code(a.kind),
                source: a.cost_center_source,
                tier: a.tier,
                units: a.units,
                during,
                price_override: a.price_override,
            });
        }
        for c in &set.capacity {
            let Some(during) = c.interval.clip(day) else {
                continue;
            };
            let none = Sym::EMPTY;
            let names = [none, none, none, none, none, c.node, c.product, none];
            columns.push(Row {
                names: names.map(name),
                record: CAPACITY,
                source: CostCenterSource::Unallocated,
                tier: c.tier,
                units: c.units,
                during,
                price_override: c.price_override,
            });
        }
    }
    let frame = columns.frame().map_err(|e| fail(path, e))?;
    write_frame(path, frame)
}

/// Reads the records `write_segments` wrote to `path`.
pub fn read_segments(path: &Path) -> Result<AllocationSet, StoreError> {
    let frame = LazyFrame::scan_parquet(
        PlRefPath::from(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .and_then(LazyFrame::collect)
    .map_err(|e| fail(path, e))?;
    set_of(&frame).map_err(|e| fail(path, e))
}

fn set_of(frame: &DataFrame) -> PolarsResult<AllocationSet> {
    let text: Vec<&StringChunked> = TEXT
        .iter()
        .map(|name| frame.column(name)?.str())
        .collect::<PolarsResult<_>>()?;
    let small = |name: &str| -> PolarsResult<Vec<i32>> {
        Ok(frame
            .column(name)?
            .i32()?
            .iter()
            .map(Option::unwrap_or_default)
            .collect())
    };
    let wide = |name: &str| -> PolarsResult<Vec<i64>> {
        Ok(frame
            .column(name)?
            .i64()?
            .iter()
            .map(Option::unwrap_or_default)
            .collect())
    };
    let (record, source, tier) = (
        small("record")?,
        small("cost_center_source")?,
        small("tier")?,
    );
    let (numer, denom) = (wide("units_numer")?, wide("units_denom")?);
    let (start, end) = (wide("start")?, wide("end")?);
    let price = frame.column("price_override")?.str()?;
    let mut set = AllocationSet::default();
    for row in 0..frame.height() {
        let mut sym = |column: usize| set.names.intern(text[column].get(row).unwrap_or_default());
        let [
            namespace,
            pod,
            pod_uid,
            resource_id,
            claim,
            node,
            product,
            cost_center,
        ] = [0, 1, 2, 3, 4, 5, 6, 7].map(&mut sym);
        let units = GpuUnits::ratio(numer[row], denom[row]).ok_or_else(|| {
            polars_err!(ComputeError: "row {row}: units {}/{} are not a fraction", numer[row], denom[row])
        })?;
        let price_override = match price.get(row) {
            Some(text) => Some(
                text.parse::<Decimal>()
                    .map_err(|e| polars_err!(ComputeError: "row {row}: price {text:?}: {e}"))?,
            ),
            None => None,
        };
        let interval = Interval::new(start[row], end[row]);
        let tier = decode(&PriceTier::ALL, tier[row]).unwrap_or_default();
        if record[row] == CAPACITY {
            set.capacity.push(NodeCapacity {
                node,
                product,
                units,
                interval,
                tier,
                price_override,
            });
            continue;
        }
        let kind = decode(&KINDS, record[row] - 1).ok_or_else(
            || polars_err!(ComputeError: "row {row}: unknown record {}", record[row]),
        )?;
        set.allocations.push(Allocation {
            namespace,
            pod,
            pod_uid,
            resource_id,
            claim,
            node,
            product,
            kind,
            units,
            interval,
            tier,
            price_override,
            cost_center,
            cost_center_source: decode(&CostCenterSource::ALL, source[row])
                .unwrap_or(CostCenterSource::Default),
        });
    }
    Ok(set)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::allocation::Names;

    #[test]
    fn a_day_of_records_comes_back_clipped_to_the_day() {
        let mut names = Names::default();
        let mut sym = |t: &str| names.intern(t);
        let day = Interval::new(86_400, 2 * 86_400);
        let allocation = Allocation {
            namespace: sym("team-a"),
            pod: sym("infer-0"),
            pod_uid: sym("uid-1"),
            resource_id: sym("claim-uid"),
            claim: sym("infer-0-gpu"),
            node: sym("node-1"),
            product: sym("NVIDIA H200"),
            kind: AllocationKind::Dra,
            units: GpuUnits::ratio(3, 7).unwrap(),
            interval: Interval::new(80_000, 100_000),
            tier: PriceTier::Spot,
            price_override: Some("1.25".parse().unwrap()),
            cost_center: sym("cc-1"),
            cost_center_source: CostCenterSource::NamespaceLabel,
        };
        let outside = Allocation {
            interval: Interval::new(0, 86_400),
            ..allocation.clone()
        };
        let capacity = NodeCapacity {
            node: sym("node-1"),
            product: sym("NVIDIA H200"),
            units: GpuUnits::ratio(8, 1).unwrap(),
            interval: Interval::new(0, 3 * 86_400),
            tier: PriceTier::Reserved,
            price_override: None,
        };
        let set = AllocationSet {
            names,
            allocations: vec![allocation.clone(), outside],
            capacity: vec![capacity.clone()],
            ..AllocationSet::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("day.parquet");
        write_segments(&path, &[&set], day).unwrap();
        let back = read_segments(&path).unwrap();
        assert_eq!(back.allocations.len(), 1);
        assert_eq!(back.capacity.len(), 1);
        let a = &back.allocations[0];
        let text = |sym| back.names.resolve(sym).to_string();
        assert_eq!(
            [
                a.namespace,
                a.pod,
                a.pod_uid,
                a.resource_id,
                a.claim,
                a.node,
                a.product,
                a.cost_center
            ]
            .map(text),
            [
                "team-a",
                "infer-0",
                "uid-1",
                "claim-uid",
                "infer-0-gpu",
                "node-1",
                "NVIDIA H200",
                "cc-1"
            ]
        );
        assert_eq!(a.interval, Interval::new(86_400, 100_000));
        assert_eq!(
            (
                a.kind,
                a.units,
                a.tier,
                a.price_override,
                a.cost_center_source
            ),
            (
                AllocationKind::Dra,
                GpuUnits::ratio(3, 7).unwrap(),
                PriceTier::Spot,
                Some("1.25".parse().unwrap()),
                CostCenterSource::NamespaceLabel
            )
        );
        let c = &back.capacity[0];
        assert_eq!(c.interval, day);
        assert_eq!(
            (c.units, c.tier, c.price_override),
            (capacity.units, PriceTier::Reserved, None)
        );
    }
}
