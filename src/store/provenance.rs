//! Which cluster and rate card a stored day came from. One small JSON file per day
//! (`rollups/provenance/YYYY-MM-DD.json`), written before the day's daily file, so that a report
//! or a quota for another source never reads the day, and a day priced with another rate card
//! is found and named.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;

use super::{StoreError, fail};
use crate::time::{UnixSeconds, format_time};

/// Where a stored day's figures came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// The cluster: `cluster.name` when configured, else the watched cluster's `kube-system`
    /// namespace UID, the snapshot's, `demo`, or the Prometheus URL history came from.
    pub source: String,
    /// [`crate::pricing::RateCard::digest`] of the card the day was priced with.
    pub rate_card: String,
}

/// The stored days, by whom they belong to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Days of this source (priced with any card).
    pub mine: BTreeSet<UnixSeconds>,
    /// Those of `mine` priced with another rate card, or stored before Tollgate recorded
    /// provenance.
    pub stale: BTreeSet<UnixSeconds>,
    /// Days of other sources, with theirs.
    pub foreign: BTreeMap<UnixSeconds, String>,
}

impl Catalog {
    /// Sorts each stored day by its provenance (`None`: not recorded) against `ours`.
    pub(super) fn of(
        days: impl IntoIterator<Item = (UnixSeconds, Option<Provenance>)>,
        ours: &Provenance,
    ) -> Self {
        let mut catalog = Catalog::default();
        for (day, provenance) in days {
            match provenance {
                Some(p) if p.source != ours.source => {
                    catalog.foreign.insert(day, p.source);
                }
                Some(p) => {
                    catalog.mine.insert(day);
                    if p.rate_card != ours.rate_card {
                        catalog.stale.insert(day);
                    }
                }
                None => {
                    catalog.mine.insert(day);
                    catalog.stale.insert(day);
                }
            }
        }
        catalog
    }

    /// The warning for the stale days among `days`, if any.
    pub fn stale_warning(&self, days: impl IntoIterator<Item = UnixSeconds>) -> Option<String> {
        let stale: Vec<UnixSeconds> = days
            .into_iter()
            .filter(|d| self.stale.contains(d))
            .collect();
        let (first, last) = (stale.first()?, stale.last()?);
        let (first, last) = (&format_time(*first)[..10], &format_time(*last)[..10]);
        Some(format!(
            "{} stored days from {first} to {last} were priced with another rate card (or before Tollgate recorded which): their figures are the old prices until `tollgate store reprice --from {first} --to <day after {last}>` prices them again",
            stale.len()
        ))
    }
}

/// Writes `provenance` to `path` crash-safely (temporary file, fsync, rename).
pub(super) fn write(path: &Path, provenance: &Provenance) -> Result<(), StoreError> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(provenance).map_err(|e| fail(path, e))?;
    let mut file = fs::File::create(&tmp).map_err(|e| fail(&tmp, e))?;
    file.write_all(&text).map_err(|e| fail(&tmp, e))?;
    file.sync_all().map_err(|e| fail(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| fail(path, e))
}

/// The provenance at `path`; `None` when the day has none (stored by an older Tollgate).
pub(super) fn read(path: &Path) -> Result<Option<Provenance>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| fail(path, format!("not a provenance record: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(path, e)),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn p(source: &str, card: &str) -> Option<Provenance> {
        Some(Provenance {
            source: source.into(),
            rate_card: card.into(),
        })
    }

    #[test]
    fn days_are_sorted_by_source_and_card() {
        let ours = p("uid-a", "sha256:1").unwrap();
        let catalog = Catalog::of(
            [
                (0, p("uid-a", "sha256:1")),
                (86_400, p("uid-a", "sha256:0")),
                (172_800, p("uid-b", "sha256:1")),
                (259_200, None),
            ],
            &ours,
        );
        assert_eq!(catalog.mine, BTreeSet::from([0, 86_400, 259_200]));
        assert_eq!(catalog.stale, BTreeSet::from([86_400, 259_200]));
        assert_eq!(catalog.foreign, BTreeMap::from([(172_800, "uid-b".into())]));
        assert_eq!(catalog.stale_warning([0]), None);
        assert_eq!(
            catalog.stale_warning([0, 86_400]).unwrap(),
            "1 stored days from 1970-01-02 to 1970-01-02 were priced with another rate card (or before Tollgate recorded which): their figures are the old prices until `tollgate store reprice --from 1970-01-02 --to <day after 1970-01-02>` prices them again"
        );
    }
}
