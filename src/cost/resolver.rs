//! Allocation fields turned into numbers, every lookup cached: each set's names into the
//! report's, each product and tier into a price schedule, each line's group values into a line.
//! The small lookups the engine's loop makes for every allocation, and the ordering's
//! comparisons for every pair, are `#[inline]`: compiled apart from their callers otherwise.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use super::group::GroupKey;
use super::sums::Schedule;
use super::values::{KEY_DIMS, LineKey, LineNames, ReportNames};
use crate::allocation::{Allocation, AllocationSet, CostCenterSource, Names, Sym};
use crate::prefetch::{AHEAD, prefetch};
use crate::pricing::{ModelId, PriceSchedule, PriceTier, ProductIdentity, RateCard};

/// What a line is told apart by, before its group-by keys pick from it.
pub(super) struct LineFields {
    pub(super) cost_center: u32,
    pub(super) namespace: Sym,
    pub(super) model_label: Sym,
    pub(super) node: Sym,
    pub(super) pod: Sym,
    pub(super) resource: Sym,
    pub(super) claim: Sym,
    pub(super) tier: PriceTier,
    pub(super) source: CostCenterSource,
    pub(super) unallocated: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum ModelRef {
    Priced(ModelId),
    Unknown(Sym),
}

/// Turns allocation fields into line and price-schedule indexes, caching every lookup.
pub(super) struct Resolver<'a> {
    sets: &'a [&'a AllocationSet],
    /// Each set's symbols, translated into `shared.names` (`u32::MAX`: not yet).
    translations: Vec<Vec<u32>>,
    /// The names the lines' keys number, which the report's lines will share.
    pub(super) shared: LineNames,
    card: &'a RateCard,
    products: Vec<Option<(ModelRef, Sym)>>,
    /// Each product symbol's identity (`u32::MAX`: not yet), numbered in `identity_index`.
    identities: Vec<u32>,
    identity_index: FxHashMap<ProductIdentity, u32>,
    schedule_index: FxHashMap<(ModelRef, PriceTier, Option<Decimal>), u32>,
    pub(super) schedules: Vec<Schedule>,
    pub(super) line_index: FxHashMap<LineKey, u32>,
    pub(super) lines: Vec<LineKey>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(
        sets: &'a [&'a AllocationSet],
        card: &'a RateCard,
        keys: &[GroupKey],
    ) -> Self {
        Resolver {
            sets,
            translations: sets
                .iter()
                .map(|s| {
                    let mut translation = vec![u32::MAX; s.names.len()];
                    // The empty name is symbol 0 everywhere.
                    translation[Sym::EMPTY.index()] = Sym::EMPTY.index() as u32;
                    translation
                })
                .collect(),
            shared: LineNames {
                keys: keys.to_vec(),
                names: ReportNames::for_sets(sets),
                labels: Names::default(),
            },
            card,
            products: Vec::new(),
            identities: Vec::new(),
            identity_index: FxHashMap::default(),
            schedule_index: FxHashMap::default(),
            schedules: Vec::new(),
            line_index: FxHashMap::default(),
            lines: Vec::new(),
        }
    }

    /// The global symbol of symbol `sym` of set `set`.
    #[inline]
    pub(super) fn global(&mut self, set: usize, sym: Sym) -> Sym {
        let slot = &mut self.translations[set][sym.index()];
        if *slot == u32::MAX {
            *slot = self.shared.names.add(&self.sets[set].names, sym).index() as u32;
        }
        Sym::from_raw(*slot)
    }

    /// Starts loading what translating the names of `allocations[at + 2 × AHEAD]` reads:
    /// their translation slots and where their texts end; and for `allocations[at + AHEAD]`
    /// (whose ends are in cache by now), the texts themselves.
    #[inline]
    pub(super) fn warm(&self, set: usize, allocations: &[Allocation], at: usize) {
        let names = &self.sets[set].names;
        let translation = &self.translations[set];
        if let Some(ahead) = allocations.get(at + 2 * AHEAD) {
            for sym in [ahead.pod, ahead.resource_id] {
                prefetch(&translation[sym.index()]);
                names.warm_place(sym);
            }
        }
        if let Some(ahead) = allocations.get(at + AHEAD) {
            for sym in [ahead.pod, ahead.resource_id] {
                names.warm_text(sym);
            }
        }
    }

    /// [`Resolver::global`] when `wanted`, else the empty symbol.
    #[inline]
    pub(super) fn global_if(&mut self, wanted: bool, set: usize, sym: Sym) -> Sym {
        if wanted {
            self.global(set, sym)
        } else {
            Sym::EMPTY
        }
    }

    fn model(&mut self, product: Sym) -> (ModelRef, Sym) {
        if self.products.len() <= product.index() {
            self.products.resize(product.index() + 1, None);
        }
        if let Some(found) = self.products[product.index()] {
            return found;
        }
        let text = self.shared.names.resolve(product);
        let model = match self.card.model_for(text) {
            Some(id) => ModelRef::Priced(id),
            None => ModelRef::Unknown(product),
        };
        let found = (
            model,
            self.shared.labels.intern(&self.card.model_label(text)),
        );
        self.products[product.index()] = Some(found);
        found
    }

    /// The number of `product`'s identity: the same for every spelling of one GPU
    /// ([`RateCard::product_identity`]).
    pub(super) fn identity(&mut self, product: Sym) -> u32 {
        if self.identities.len() <= product.index() {
            self.identities.resize(product.index() + 1, u32::MAX);
        }
        if self.identities[product.index()] == u32::MAX {
            let identity = self
                .card
                .product_identity(self.shared.names.resolve(product));
            let next = self.identity_index.len() as u32;
            self.identities[product.index()] = *self.identity_index.entry(identity).or_insert(next);
        }
        self.identities[product.index()]
    }

    pub(super) fn schedule(
        &mut self,
        product: Sym,
        tier: PriceTier,
        price_override: Option<Decimal>,
    ) -> u32 {
        let (model, label) = self.model(product);
        let key = (model, tier, price_override);
        if let Some(&index) = self.schedule_index.get(&key) {
            return index;
        }
        let prices = match (price_override, model) {
            (Some(price), _) => PriceSchedule::constant(Some(price)),
            (None, ModelRef::Priced(id)) => self.card.schedule(id, tier),
            (None, ModelRef::Unknown(_)) => PriceSchedule::constant(None),
        };
        let index = self.schedules.len() as u32;
        self.schedules.push(Schedule { prices, label });
        self.schedule_index.insert(key, index);
        index
    }

    pub(super) fn line(&mut self, fields: LineFields) -> u32 {
        let mut key: LineKey = [0; KEY_DIMS];
        for (slot, group_key) in key.iter_mut().zip(&self.shared.keys) {
            *slot = match group_key {
                GroupKey::CostCenter => fields.cost_center,
                GroupKey::Namespace => fields.namespace.index() as u32,
                GroupKey::GpuModel => fields.model_label.index() as u32,
                GroupKey::Node => fields.node.index() as u32,
                GroupKey::Pod => fields.pod.index() as u32,
                GroupKey::CostCenterSource => fields.source as u32,
                GroupKey::ResourceId => fields.resource.index() as u32,
                GroupKey::Claim => fields.claim.index() as u32,
                GroupKey::PricingTier => fields.tier as u32,
                // One value for every line: the cluster's name, which reports fill in.
                GroupKey::Cluster => 0,
            };
        }
        key[KEY_DIMS - 1] = u32::from(fields.unallocated);
        if let Some(&index) = self.line_index.get(&key) {
            return index;
        }
        let index = self.lines.len() as u32;
        self.lines.push(key);
        self.line_index.insert(key, index);
        index
    }

    #[inline]
    pub(super) fn label_of(&self, schedule: u32) -> Sym {
        self.schedules[schedule as usize].label
    }

    #[inline]
    pub(super) fn is_unallocated(&self, line: u32) -> bool {
        self.lines[line as usize][KEY_DIMS - 1] == 1
    }

    /// The printed value of one group key of a line.
    #[inline]
    pub(super) fn group_value(&self, group_key: GroupKey, id: u32) -> &str {
        self.shared.value(group_key, id)
    }

    /// The printed group values of a line, without copying them.
    #[inline]
    pub(super) fn group_values(&self, line: u32) -> impl Iterator<Item = &str> {
        let key = &self.lines[line as usize];
        self.shared
            .keys
            .iter()
            .zip(key)
            .map(|(&group_key, &id)| self.group_value(group_key, id))
    }
}
