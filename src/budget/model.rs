//! The GPU model a pod not scheduled yet is priced as: the costliest of those it may land on, or
//! of the whole rate card where they are not known; and what makes a pod unpriceable.

use rust_decimal::Decimal;

use crate::pricing::{DeviceHint, ModelId, PriceTier, RateCard};
use crate::time::UnixSeconds;

/// The most GPU units one check may ask about: more than any pod (or cluster) holds, and small
/// enough that its cost times a month of hours stays far inside `Decimal`.
pub const MAX_UNITS: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// A pod spec that cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProspectError(pub String);

/// The costliest of `choices` (or of the whole card when there are none) at `at`, in `tier`.
/// Returns (product to size MIG with, model label, price, note).
pub(super) fn priced_model(
    card: &RateCard,
    choices: &[String],
    tier: PriceTier,
    at: UnixSeconds,
) -> Result<(String, String, Decimal, Option<String>), ProspectError> {
    let known: Vec<(String, Decimal)> = choices
        .iter()
        .filter_map(|p| Some((p.clone(), card.price_at(p, tier, None, at)?)))
        .collect();
    if let Some((product, price)) = known.iter().max_by(|a, b| a.1.cmp(&b.1)) {
        let note = (choices.len() > 1).then(|| {
            format!(
                "priced as {}, the most expensive of the GPU models its node affinity allows",
                card.model_label(product)
            )
        });
        return Ok((product.clone(), card.model_label(product), *price, note));
    }
    let (model, _) = card.costliest_at(at).ok_or_else(|| {
        ProspectError("the rate card has no price in force to price the pod with".into())
    })?;
    let name = card.model(model).name.clone();
    let price = card.price_at(&name, tier, None, at).unwrap_or_default();
    let note = if choices.is_empty() {
        format!(
            "its GPU model is not known before scheduling: priced as {name}, the most expensive in the rate card"
        )
    } else {
        format!(
            "GPU model {} has no price: priced as {name}, the most expensive in the rate card",
            choices.join(", ")
        )
    };
    Ok((name.clone(), name, price, Some(note)))
}

/// The costliest model of `card` priced at `at` in `tier` that every device of `hints` can be
/// ([`RateCard::may_be`]), by `cost`: what the devices come to on a GPU of that model at that
/// price (a MIG slice is a different part of each GPU). Returns its name and price;
/// `None` where the hints leave no model, every model, or the one [`priced_model`] takes
/// without them (the card's costliest): they change nothing.
pub(super) fn costliest_offering(
    card: &RateCard,
    hints: &[DeviceHint<'_>],
    tier: PriceTier,
    at: UnixSeconds,
    cost: impl Fn(ModelId, Decimal) -> Decimal,
) -> Option<(String, Decimal)> {
    let priced: Vec<(ModelId, Decimal)> = (0..card.models().len() as u32)
        .map(ModelId)
        .filter_map(|id| Some((id, card.price_by_name_at(id, tier, at)?)))
        .collect();
    let offering: Vec<&(ModelId, Decimal)> = priced
        .iter()
        .filter(|(id, _)| hints.iter().all(|hint| card.may_be(*id, hint)))
        .collect();
    if offering.len() == priced.len() {
        return None;
    }
    // The first of the card's order among equals.
    let best = offering
        .into_iter()
        .map(|&(id, price)| (cost(id, price), &card.model(id).name, price))
        .fold(
            None,
            |best: Option<(Decimal, &String, Decimal)>, next| match best {
                Some(top) if top.0 >= next.0 => Some(top),
                _ => Some(next),
            },
        )
        .map(|(_, name, price)| (name.clone(), price))?;
    let costliest = card.costliest_at(at).map(|(id, _)| &card.model(id).name);
    (costliest != Some(&best.0)).then_some(best)
}
