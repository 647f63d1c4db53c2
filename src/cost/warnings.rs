//! What a report's reader must be told: notes (an unreadable object, pods holding more than
//! their node, Prometheus not answering), each once, and the GPU-hours of each model the rate
//! card has no price for, kept as figures so that the parts of a report (its days, the stored
//! days and the engine's) add up to the whole's hours rather than each saying its own.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// A report's warnings, merged across its parts by [`Warnings::absorb`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings {
    /// Notes in the order first met, each once.
    notes: Vec<String>,
    /// Exact GPU-hours of each model without a price, by model.
    unpriced: BTreeMap<String, Decimal>,
    /// Where the prices came from ([`crate::pricing::RateCard::origin`]), named in the text
    /// of unpriced hours.
    pricing: String,
}

impl Warnings {
    /// Adds `hours` of `model`, which the rate card from `pricing` has no price for.
    pub fn unpriced(&mut self, pricing: &str, model: &str, hours: Decimal) {
        if hours.is_zero() {
            return;
        }
        if self.pricing.is_empty() {
            self.pricing = pricing.to_string();
        }
        *self.unpriced.entry(model.to_string()).or_default() += hours;
    }

    /// Takes in the warnings of another part of the same report: its notes not already here,
    /// its unpriced hours added to these.
    pub fn absorb(&mut self, other: Warnings) {
        if self.pricing.is_empty() {
            self.pricing = other.pricing;
        }
        self.extend(other.notes);
        for (model, hours) in other.unpriced {
            *self.unpriced.entry(model).or_default() += hours;
        }
    }

    /// The notes, in the order first met.
    pub fn notes(&self) -> impl Iterator<Item = &String> {
        self.notes.iter()
    }

    /// The warnings as printed: the notes, then one for each model without a price, its hours
    /// rounded to four places.
    pub fn texts(&self) -> Vec<String> {
        let unpriced = self.unpriced.iter().map(|(model, hours)| {
            format!(
                "GPU model {model:?} has no price in {} for {} GPU-hours; they are reported as unpriced_gpu_hours, with no cost",
                self.pricing,
                hours.round_dp(4).normalize()
            )
        });
        self.notes.iter().cloned().chain(unpriced).collect()
    }
}

impl Extend<String> for Warnings {
    /// Adds notes, each that is not already here.
    fn extend<I: IntoIterator<Item = String>>(&mut self, notes: I) {
        for note in notes {
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
    }
}

impl FromIterator<String> for Warnings {
    fn from_iter<I: IntoIterator<Item = String>>(notes: I) -> Self {
        let mut warnings = Warnings::default();
        warnings.extend(notes);
        warnings
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn hours(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn parts_add_up_their_unpriced_hours_and_say_each_note_once() {
        // Three days of a GH200's 24 hours, and a half day of an MI300X's, the notes of two
        // parts overlapping.
        let mut whole: Warnings = ["pod a: unreadable".to_string()].into_iter().collect();
        whole.unpriced("card.toml", "GH200", hours("24"));
        for day in 0..2 {
            let mut part: Warnings = ["pod a: unreadable".to_string(), format!("day {day}")]
                .into_iter()
                .collect();
            part.unpriced("card.toml", "GH200", hours("24"));
            part.unpriced("card.toml", "MI300X", hours("0.00005"));
            part.unpriced("card.toml", "L4", Decimal::ZERO);
            whole.absorb(part);
        }
        assert_eq!(
            whole.texts(),
            [
                "pod a: unreadable",
                "day 0",
                "day 1",
                "GPU model \"GH200\" has no price in card.toml for 72 GPU-hours; they are reported as unpriced_gpu_hours, with no cost",
                "GPU model \"MI300X\" has no price in card.toml for 0.0001 GPU-hours; they are reported as unpriced_gpu_hours, with no cost",
            ]
        );
    }

    #[test]
    fn the_card_is_named_by_the_part_that_priced() {
        let mut whole = Warnings::default();
        assert!(whole.texts().is_empty());
        let mut part = Warnings::default();
        part.unpriced("rates.toml", "GH200", hours("1.5"));
        whole.absorb(part);
        assert_eq!(
            whole.texts(),
            [
                "GPU model \"GH200\" has no price in rates.toml for 1.5 GPU-hours; they are reported as unpriced_gpu_hours, with no cost"
            ]
        );
    }
}
