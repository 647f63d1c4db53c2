//! The rate card: what a GPU-hour costs, per model, tier and period (SPEC §2).
//!
//! Loaded once from TOML (`load`), then asked two questions by the rest of the core: which model
//! is this product name (`model_for`), and what does that model cost over time in a tier
//! (`schedule`). It also knows how large a MIG slice is for a model (`mig_fraction`).

mod load;
mod matching;
mod offers;
mod schedule;

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;

use crate::money::{Currency, Rounding};
use crate::time::Interval;
use crate::units::GpuUnits;

pub use load::RateCardError;
pub use matching::{gpu_memory_gb, normalize, stated_memory_gb, with_memory};
pub use offers::{DeviceHint, Maker, mig_profile, named_gpu_memory_gb};
pub use schedule::{PriceSchedule, PriceSegment};

use matching::Matcher;

/// The price tier a node's capacity type selects.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Debug,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PriceTier {
    /// List price (`on_demand`).
    #[default]
    OnDemand,
    /// Spot or preemptible capacity (`spot`).
    Spot,
    /// Reserved or committed capacity (`reserved`).
    Reserved,
}

impl PriceTier {
    /// Every tier, in declaration order (`tier as usize` indexes it).
    pub const ALL: [PriceTier; 3] = [PriceTier::OnDemand, PriceTier::Spot, PriceTier::Reserved];

    /// Its name in reports and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            PriceTier::OnDemand => "on-demand",
            PriceTier::Spot => "spot",
            PriceTier::Reserved => "reserved",
        }
    }
}

impl fmt::Display for PriceTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Index of a model in its rate card.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ModelId(pub(crate) u32);

/// What a GPU product is, whatever its spelling (see [`RateCard::product_identity`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum ProductIdentity {
    /// A model of the rate card.
    Model(ModelId),
    /// A product the rate card does not price, by its normalized words.
    Named(String),
}

/// How a product name was matched ([`RateCard::explain`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProductMatch {
    /// The model chosen.
    pub model: ModelId,
    /// The (normalized) match string that chose it.
    pub rule: String,
    /// Other models whose match strings matched as well as the chosen one's.
    pub tied_with: Vec<ModelId>,
    /// Whether the memory the name states decided between tied models.
    pub by_memory: bool,
}

impl ProductMatch {
    /// True when the card's rules matched more than one model and the name's memory did not
    /// decide: the product was priced as the model written first.
    pub fn ambiguous(&self) -> bool {
        !self.tied_with.is_empty() && !self.by_memory
    }
}

/// One `[[gpu]]` price period of a model.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PricePeriod {
    /// When the prices hold (unbounded ends are `i64::MIN` / `i64::MAX`).
    pub during: Interval,
    /// Price per whole GPU-hour on demand.
    pub on_demand: Decimal,
    /// Spot price, if set.
    pub spot: Option<Decimal>,
    /// Reserved price, if set.
    pub reserved: Option<Decimal>,
    /// Line of the `[[gpu]]` entry, for messages.
    pub line: usize,
}

impl PricePeriod {
    /// The price in `tier`, falling back to on-demand when the tier has none.
    pub fn price(&self, tier: PriceTier) -> Decimal {
        match tier {
            PriceTier::OnDemand => self.on_demand,
            PriceTier::Spot => self.spot.unwrap_or(self.on_demand),
            PriceTier::Reserved => self.reserved.unwrap_or(self.on_demand),
        }
    }
}

/// A GPU model as reports name it, with its prices over time.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GpuModel {
    /// The name used in reports (`H100-80GB`).
    pub name: String,
    /// Compute slices of one GPU for MIG fractions, if the card sets it.
    pub mig_slices: Option<u32>,
    /// GPU memory in GB, if the card sets it: tells apart models that share a match string
    /// (`a100` for both A100-40GB and A100-80GB).
    pub memory_gb: Option<u32>,
    /// Per-profile MIG fractions overriding `g / mig_slices`.
    pub mig: BTreeMap<String, GpuUnits>,
    /// Price periods, non-overlapping, sorted by start.
    pub periods: Vec<PricePeriod>,
}

impl GpuModel {
    /// Its price period holding `at`; `None` where it has no price then.
    pub fn period_at(&self, at: crate::time::UnixSeconds) -> Option<&PricePeriod> {
        self.periods.iter().find(|p| p.during.contains(at))
    }

    /// The spans after its first price where it has none: between two periods that do not
    /// meet, and after the last one's `until`. Hours then are unpriced; a card seldom means
    /// that. Each comes with the line of the period it follows.
    pub fn unpriced_spans(&self) -> Vec<(Interval, usize)> {
        let mut spans: Vec<(Interval, usize)> = self
            .periods
            .windows(2)
            .filter(|pair| pair[0].during.end < pair[1].during.start)
            .map(|pair| {
                let gap = Interval::new(pair[0].during.end, pair[1].during.start);
                (gap, pair[0].line)
            })
            .collect();
        if let Some(last) = self.periods.last().filter(|p| p.during.end != i64::MAX) {
            spans.push((Interval::new(last.during.end, i64::MAX), last.line));
        }
        spans
    }
}

/// A validated rate card.
#[derive(Clone, Debug)]
pub struct RateCard {
    origin: String,
    currency: Currency,
    rounding: Rounding,
    models: Vec<GpuModel>,
    matchers: Vec<Matcher>,
    /// What each model is, for telling which devices it can be ([`offers`]).
    kinds: Vec<offers::ModelKind>,
}

/// The rate card shipped with Tollgate (`pricing/default.toml`): example list prices only.
pub const DEFAULT_RATE_CARD: &str = include_str!("../../pricing/default.toml");

/// The highest price of a GPU-hour Tollgate takes, in any currency: a trillion (10¹²), far above
/// what a GPU-hour costs anywhere, and far enough below the 7.9 × 10²⁸ that exact decimal
/// arithmetic holds that years of a 100,000-GPU fleet's costs still add up exactly. A price above
/// it is a mistake in the card or an annotation, refused where it is read rather than failing a
/// report later with no name to it.
pub const MAX_HOURLY_PRICE: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// Why `price` is not a GPU-hour's price Tollgate takes, or `None` if it is.
pub fn refused_price(price: Decimal) -> Option<String> {
    if price.is_sign_negative() && !price.is_zero() {
        Some("a price cannot be negative".into())
    } else if price > MAX_HOURLY_PRICE {
        Some(format!(
            "{price} an hour is above the highest price Tollgate takes ({MAX_HOURLY_PRICE} an hour)"
        ))
    } else {
        None
    }
}

impl RateCard {
    /// Loads and validates a rate card file (SPEC §2).
    pub fn load(path: &std::path::Path) -> Result<Self, RateCardError> {
        load::load_file(path)
    }

    /// Parses and validates rate-card TOML; `origin` names the text in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, RateCardError> {
        load::parse(text, origin)
    }

    /// The built-in example rate card.
    pub fn builtin() -> Self {
        // The built-in card is validated by a unit test; failing here is a build defect.
        Self::parse(DEFAULT_RATE_CARD, "<built-in pricing/default.toml>")
            .unwrap_or_else(|e| panic!("built-in rate card is invalid: {e}"))
    }

    /// Where the card came from (a path, or a description of the built-in card).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The card's currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// How printed money is rounded.
    pub fn rounding(&self) -> Rounding {
        self.rounding
    }

    /// A digest of what the card prices with — currency, rounding, models, match strings,
    /// memory, MIG sizes and every price period — not of its text: comments and layout do not
    /// change it. Stored rollups record it, so days priced with another card are found.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        use std::fmt::Write;
        let mut canonical = format!("{}|{:?}\n", self.currency, self.rounding);
        for (i, m) in self.models.iter().enumerate() {
            let _ = write!(
                canonical,
                "{}|{:?}|{:?}|",
                m.name, m.memory_gb, m.mig_slices
            );
            for (profile, fraction) in &m.mig {
                let _ = write!(canonical, "{profile}={fraction};");
            }
            for p in &m.periods {
                let _ = write!(
                    canonical,
                    "[{},{})={}/{:?}/{:?};",
                    p.during.start, p.during.end, p.on_demand, p.spot, p.reserved
                );
            }
            for matcher in self.matchers.iter().filter(|x| x.model == i) {
                let _ = write!(canonical, "~{}", matcher.words.join(" "));
            }
            canonical.push('\n');
        }
        let hash = Sha256::digest(canonical.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// All models, in the order first written.
    pub fn models(&self) -> &[GpuModel] {
        &self.models
    }

    /// A model by id.
    pub fn model(&self, id: ModelId) -> &GpuModel {
        &self.models[id.0 as usize]
    }

    /// The model a GPU product name selects, if any match string matches it.
    pub fn model_for(&self, product: &str) -> Option<ModelId> {
        Some(self.explain(product)?.model)
    }

    /// Match strings shared by several models (told apart by `memory_gb`), with those models in
    /// card order.
    pub fn shared_matches(&self) -> Vec<(String, Vec<ModelId>)> {
        let mut owners: BTreeMap<String, Vec<ModelId>> = BTreeMap::new();
        for m in &self.matchers {
            let models = owners.entry(m.words.join(" ")).or_default();
            let id = ModelId(m.model as u32);
            if !models.contains(&id) {
                models.push(id);
            }
        }
        owners.retain(|_, models| models.len() > 1);
        owners.into_iter().collect()
    }

    /// How `product` is matched: the model, the match string that chose it, and the other models
    /// whose match strings tied with it. A tie goes to the model whose `memory_gb` is nearest
    /// the memory of the GPU the name names ([`gpu_memory_gb`]); without one, or between models
    /// with the same distance, to the model written first.
    pub fn explain(&self, product: &str) -> Option<ProductMatch> {
        self.explain_by_memory(product, || gpu_memory_gb(product))
    }

    /// [`RateCard::explain`], a tie going to the model whose `memory_gb` is nearest the GB
    /// `memory` gives (asked only where models tie) rather than the name's.
    pub(crate) fn explain_by_memory(
        &self,
        product: &str,
        memory: impl FnOnce() -> Option<u32>,
    ) -> Option<ProductMatch> {
        let best = matching::best_matches(&self.matchers, product);
        let mut tied: Vec<ModelId> = Vec::new();
        for m in &best {
            let id = ModelId(m.model as u32);
            if !tied.contains(&id) {
                tied.push(id);
            }
        }
        let memory = if tied.len() > 1 { memory() } else { None };
        let distance = |id: &ModelId| match (memory, self.model(*id).memory_gb) {
            (Some(stated), Some(card)) => stated.abs_diff(card),
            _ => u32::MAX,
        };
        let model = *tied.iter().min_by_key(|id| distance(id))?;
        let rule = best
            .iter()
            .find(|m| m.model as u32 == model.0)
            .map(|m| m.words.join(" "))
            .unwrap_or_default();
        let by_memory = tied.len() > 1 && distance(&model) != u32::MAX;
        tied.retain(|id| *id != model);
        Some(ProductMatch {
            model,
            rule,
            tied_with: tied,
            by_memory,
        })
    }

    /// One name for a GPU product however it is spelled: the rate-card model it selects, else
    /// its normalized words. A GFD label (`NVIDIA-H200`), a DRA `productName` (`NVIDIA H200`)
    /// and DCGM's `modelName` name the same GPU; a node's capacity and what its pods hold are
    /// matched on this, never on the raw text.
    pub fn product_identity(&self, product: &str) -> ProductIdentity {
        match self.model_for(product) {
            Some(id) => ProductIdentity::Model(id),
            None => ProductIdentity::Named(normalize(product)),
        }
    }

    /// The name reports use for a product: the model's name, else the product name itself, else
    /// `unknown`.
    pub fn model_label(&self, product: &str) -> String {
        match self.model_for(product) {
            Some(id) => self.model(id).name.clone(),
            None if product.is_empty() => "unknown".to_string(),
            None => product.to_string(),
        }
    }

    /// The hourly price per whole GPU of `product` in `tier` at `at`: the node's override if
    /// any, else the rate card's; `None` when unpriced.
    pub fn price_at(
        &self,
        product: &str,
        tier: PriceTier,
        price_override: Option<Decimal>,
        at: crate::time::UnixSeconds,
    ) -> Option<Decimal> {
        if price_override.is_some() {
            return price_override;
        }
        Some(
            self.model(self.model_for(product)?)
                .period_at(at)?
                .price(tier),
        )
    }

    /// The model with the highest on-demand price in force at `at`, and that price (ties: the
    /// model written first).
    pub fn costliest_at(&self, at: crate::time::UnixSeconds) -> Option<(ModelId, Decimal)> {
        self.models
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((ModelId(i as u32), m.period_at(at)?.on_demand)))
            .fold(
                None,
                |best: Option<(ModelId, Decimal)>, (id, price)| match best {
                    Some((_, top)) if top >= price => best,
                    _ => Some((id, price)),
                },
            )
    }

    /// The hourly price of `model` in `tier` over time; tiers without a price fall back to
    /// on-demand, and times outside every period are unpriced.
    pub fn schedule(&self, model: ModelId, tier: PriceTier) -> PriceSchedule {
        PriceSchedule::from_periods(
            self.model(model)
                .periods
                .iter()
                .map(|p| (p.during, p.price(tier)))
                .collect(),
        )
    }

    /// The fraction of a whole GPU that one MIG instance of `profile` (`3g.40gb`) is, on a GPU
    /// whose product name is `product`: the card's per-profile override, else `g / S` with `S`
    /// the model's `mig_slices` (default 4 for an A30, 7 otherwise). `None` when the profile does
    /// not start with `<g>g`.
    pub fn mig_fraction(&self, product: &str, profile: &str) -> Option<GpuUnits> {
        self.mig_sizing(product).fraction(self, profile)
    }

    /// How `product` is cut into MIG slices, found once for all its profiles (see
    /// [`RateCard::mig_fraction`]).
    pub fn mig_sizing(&self, product: &str) -> MigSizing {
        let model = self.model_for(product);
        MigSizing {
            model,
            slices: model
                .and_then(|id| self.model(id).mig_slices)
                .unwrap_or_else(|| default_mig_slices(product)),
        }
    }
}

/// How one GPU product is cut into MIG slices: the rate-card model it selects (whose
/// per-profile fractions come first) and its compute slices per GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigSizing {
    model: Option<ModelId>,
    slices: u32,
}

impl Default for MigSizing {
    /// A product nobody named: no model, the slices of the A100/H100 family.
    fn default() -> Self {
        MigSizing {
            model: None,
            slices: default_mig_slices(""),
        }
    }
}

impl MigSizing {
    /// The fraction of a GPU one device of MIG `profile` is: the card's per-profile override,
    /// else `g / slices`. `None` when the profile does not start with `<g>g`, or `g` is none of
    /// the GPU's slices (0, or more than it has).
    pub fn fraction(&self, card: &RateCard, profile: &str) -> Option<GpuUnits> {
        let stated = self.model.and_then(|id| card.model(id).mig.get(profile));
        if let Some(fraction) = stated {
            return Some(*fraction);
        }
        // A profile of no slices, or of more than the GPU has, is no part of it.
        let g: u32 = profile.split_once('g')?.0.parse().ok()?;
        if !(1..=self.slices).contains(&g) {
            return None;
        }
        GpuUnits::ratio(i64::from(g), i64::from(self.slices))
    }
}

/// Compute slices per GPU when the rate card does not say, as NVIDIA's MIG user guide gives the
/// most instances of each GPU: 4 for an A30 and the RTX PRO 6000 Blackwell (every edition), 2
/// for the RTX PRO 5000 and 4500 Blackwell, 7 for the A100/H100/H200/B200 family.
pub fn default_mig_slices(product: &str) -> u32 {
    let words = format!(" {} ", normalize(product));
    let named = |model: &str| words.contains(&format!(" {model} "));
    if named("a30") || named("rtx pro 6000") {
        4
    } else if named("rtx pro 5000") || named("rtx pro 4500") {
        2
    } else {
        7
    }
}

#[cfg(test)]
mod tests;
