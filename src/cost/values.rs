//! The values of a line's group-by keys. The engine's lines hold numbers into names their
//! report shares (a line of a per-pod report copies no text); lines read from a store or built
//! by hand hold their texts. Both compare, order and print by text.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::group::GroupKey;
use crate::allocation::{AllocationSet, CostCenterSource, Names, Sym, Texts, UNALLOCATED};
use crate::pricing::PriceTier;

/// Marks the cost center of unallocated capacity in a line key.
pub(super) const UNALLOCATED_ID: u32 = u32::MAX;
/// Nine group-by columns plus a flag that keeps unallocated capacity apart internally.
pub(super) const KEY_DIMS: usize = 10;
/// A line's values as numbers: each group key's in the order asked, then the flag.
pub(super) type LineKey = [u32; KEY_DIMS];

/// The names a report's lines carry, numbered densely in the order the report meets them.
pub(super) enum ReportNames {
    /// One set (a snapshot, the demo, one archived day): the texts the report meets, copied
    /// side by side as met (not hashed again). Sorting lines and printing them then reads the
    /// report's own few megabytes, not a table of every name the set holds.
    Own(Texts),
    /// Several sets, each with its own names: interned by text, so that one name in two sets
    /// is one symbol.
    Merged(Names),
}

impl ReportNames {
    pub(super) fn for_sets(sets: &[&AllocationSet]) -> Self {
        match sets {
            // The empty name is symbol 0, as in every set.
            [_] => {
                let mut own = Texts::default();
                own.push("");
                ReportNames::Own(own)
            }
            _ => ReportNames::Merged(Names::default()),
        }
    }

    /// Makes room for the names of `lines` more lines, each with names of its own (a pod's
    /// name and UID).
    pub(super) fn reserve(&mut self, lines: usize) {
        /// Bytes of a pod's name and UID, about.
        const NAMES_OF_A_LINE: usize = 96;
        if let ReportNames::Own(own) = self {
            own.reserve(lines * 2, lines * NAMES_OF_A_LINE);
        }
    }

    /// The report symbol of `sym` of `names` (a set's), met for the first time.
    pub(super) fn add(&mut self, names: &Names, sym: Sym) -> Sym {
        match self {
            ReportNames::Own(own) => own.push(names.resolve(sym)),
            ReportNames::Merged(merged) => merged.intern(names.resolve(sym)),
        }
    }

    pub(super) fn resolve(&self, sym: Sym) -> &str {
        match self {
            ReportNames::Own(own) => own.get(sym),
            ReportNames::Merged(merged) => merged.resolve(sym),
        }
    }

    /// Starts loading where `sym`'s text lies, or with `text`, the text itself.
    fn warm(&self, sym: Sym, text: bool) {
        match (self, text) {
            (ReportNames::Own(own), false) => own.warm_place(sym),
            (ReportNames::Own(own), true) => own.warm_text(sym),
            (ReportNames::Merged(merged), false) => merged.warm_place(sym),
            (ReportNames::Merged(merged), true) => merged.warm_text(sym),
        }
    }
}

/// What the numbers of a report's lines name: shared by every line of the report.
pub(super) struct LineNames {
    /// The group-by keys, in column order.
    pub(super) keys: Vec<GroupKey>,
    /// Cost centers, namespaces, nodes, pods, resource IDs, claims.
    pub(super) names: ReportNames,
    /// GPU model labels, as the rate card prints them.
    pub(super) labels: Names,
}

impl LineNames {
    /// The printed value `id` of `key`.
    pub(super) fn value(&self, key: GroupKey, id: u32) -> &str {
        match key {
            GroupKey::CostCenter if id == UNALLOCATED_ID => UNALLOCATED,
            GroupKey::GpuModel => self.labels.resolve(Sym::from_raw(id)),
            GroupKey::CostCenterSource => CostCenterSource::ALL[id as usize].as_str(),
            GroupKey::PricingTier => PriceTier::ALL[id as usize].as_str(),
            GroupKey::Cluster => "",
            _ => self.names.resolve(Sym::from_raw(id)),
        }
    }
}

/// The values of a line's group-by keys, in the order asked.
#[derive(Clone, Default)]
pub struct GroupValues(Values);

#[derive(Clone)]
enum Values {
    /// An engine's line: its key, read through the names of its report.
    Named(Arc<LineNames>, LineKey),
    Texts(Vec<String>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Texts(Vec::new())
    }
}

impl GroupValues {
    /// The values `key` numbers in `names`.
    pub(super) fn named(names: Arc<LineNames>, key: LineKey) -> Self {
        GroupValues(Values::Named(names, key))
    }

    /// Starts loading where the texts of its values with many others (pods, resource IDs,
    /// claims) lie, or with `texts`, the texts themselves (once where they lie is loaded): a
    /// hint for a loop that reads lines a few ahead of where their names lie in memory.
    pub(crate) fn warm(&self, texts: bool) {
        if let Values::Named(names, key) = &self.0 {
            for (group_key, &id) in names.keys.iter().zip(key) {
                if matches!(
                    group_key,
                    GroupKey::Pod | GroupKey::ResourceId | GroupKey::Claim
                ) {
                    names.names.warm(Sym::from_raw(id), texts);
                }
            }
        }
    }

    /// How many values (one per group-by key).
    pub fn len(&self) -> usize {
        match &self.0 {
            Values::Named(names, _) => names.keys.len(),
            Values::Texts(texts) => texts.len(),
        }
    }

    /// Whether the line is grouped by nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of the `at`th group-by key.
    pub fn get(&self, at: usize) -> Option<&str> {
        match &self.0 {
            Values::Named(names, key) => Some(names.value(*names.keys.get(at)?, key[at])),
            Values::Texts(texts) => texts.get(at).map(String::as_str),
        }
    }

    /// All `N` values at once, where the line has exactly `N` (read through its names once,
    /// not value by value).
    pub fn all<const N: usize>(&self) -> Option<[&str; N]> {
        match &self.0 {
            Values::Named(names, key) => {
                let keys: &[GroupKey; N] = names.keys.as_slice().try_into().ok()?;
                Some(std::array::from_fn(|at| names.value(keys[at], key[at])))
            }
            Values::Texts(texts) => {
                let texts: &[String; N] = texts.as_slice().try_into().ok()?;
                Some(texts.each_ref().map(String::as_str))
            }
        }
    }

    /// The values, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|at| &self[at])
    }

    /// The values as owned texts.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }

    /// The values joined by `separator`.
    pub fn join(&self, separator: &str) -> String {
        self.to_vec().join(separator)
    }

    /// Puts `value` at `at` (at most [`GroupValues::len`]), the values after it moving right.
    pub fn insert(&mut self, at: usize, value: String) {
        let mut texts = match std::mem::replace(&mut self.0, Values::Texts(Vec::new())) {
            Values::Texts(texts) => texts,
            named => GroupValues(named).to_vec(),
        };
        texts.insert(at, value);
        self.0 = Values::Texts(texts);
    }
}

impl std::ops::Index<usize> for GroupValues {
    type Output = str;

    fn index(&self, at: usize) -> &str {
        self.get(at).unwrap_or_else(|| {
            panic!(
                "group value {at} asked of a line of {} group-by keys",
                self.len()
            )
        })
    }
}

impl From<Vec<String>> for GroupValues {
    fn from(texts: Vec<String>) -> Self {
        GroupValues(Values::Texts(texts))
    }
}

impl FromIterator<String> for GroupValues {
    fn from_iter<I: IntoIterator<Item = String>>(texts: I) -> Self {
        GroupValues(Values::Texts(texts.into_iter().collect()))
    }
}

impl PartialEq for GroupValues {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for GroupValues {}

impl<const N: usize> PartialEq<[&str; N]> for GroupValues {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl PartialOrd for GroupValues {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GroupValues {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl Hash for GroupValues {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        self.iter().for_each(|value| value.hash(state));
    }
}

impl std::fmt::Debug for GroupValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_read_as_the_texts_they_name() {
        let mut set = Names::default();
        let team = set.intern("team-a");
        let pod = set.intern("pod-1");
        let mut labels = Names::default();
        let h100 = labels.intern("H100");
        let names = Arc::new(LineNames {
            keys: vec![
                GroupKey::CostCenter,
                GroupKey::GpuModel,
                GroupKey::Pod,
                GroupKey::PricingTier,
            ],
            names: {
                let mut names = ReportNames::for_sets(&[&AllocationSet::default()]);
                for sym in [pod, team] {
                    names.add(&set, sym);
                }
                names
            },
            labels,
        });
        let mut key = [0; KEY_DIMS];
        key[..4].copy_from_slice(&[2, h100.index() as u32, 1, PriceTier::Spot as u32]);
        let named = GroupValues::named(names.clone(), key);
        let texts = GroupValues::from(vec![
            "team-a".to_string(),
            "H100".to_string(),
            "pod-1".to_string(),
            "spot".to_string(),
        ]);
        assert_eq!(named, texts);
        assert_eq!(named, ["team-a", "H100", "pod-1", "spot"]);
        assert_eq!(
            format!("{named:?}"),
            r#"["team-a", "H100", "pod-1", "spot"]"#
        );
        assert_eq!((named.len(), &named[2], named.get(4)), (4, "pod-1", None));
        let all = Some(["team-a", "H100", "pod-1", "spot"]);
        assert_eq!((named.all(), texts.all()), (all, all));
        assert_eq!((named.all::<3>(), texts.all::<5>()), (None, None));
        key[0] = UNALLOCATED_ID;
        let unallocated = GroupValues::named(names, key);
        assert_eq!(&unallocated[0], "__unallocated__");
        assert!(unallocated < named, "\"__\" sorts before \"team\"");

        let mut with_cluster = named.clone();
        with_cluster.insert(1, "east".to_string());
        assert_eq!(with_cluster, ["team-a", "east", "H100", "pod-1", "spot"]);
    }
}
