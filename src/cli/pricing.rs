//! `tollgate pricing check`: rate cards validated, and how they price named products.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CliError;
use crate::config::Settings;
use crate::pricing::RateCard;
use crate::time::format_time;

/// One line on how `card` prices `product`.
fn describe_match(card: &RateCard, product: &str) -> String {
    let Some(found) = card.explain(product) else {
        return format!("{product:?}: unpriced (no match string matches it)");
    };
    let name = |id| card.model(id).name.as_str();
    let others: Vec<&str> = found.tied_with.iter().map(|&id| name(id)).collect();
    let chosen = name(found.model);
    let rule = &found.rule;
    if found.ambiguous() {
        format!(
            "{product:?}: AMBIGUOUS: match {rule:?} selects {chosen} and {}; priced as {chosen}, the model written first. Name the memory in the product (nodes: the nvidia.com/gpu.memory label) or add a longer match string",
            others.join(", ")
        )
    } else if found.by_memory {
        format!(
            "{product:?}: {chosen} (match {rule:?}, memory {} GB chose it over {})",
            crate::pricing::gpu_memory_gb(product).unwrap_or_default(),
            others.join(", ")
        )
    } else {
        format!("{product:?}: {chosen} (match {rule:?})")
    }
}

pub(super) fn pricing_check(
    files: &[PathBuf],
    products: &[String],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let cards: Vec<Result<RateCard, String>> = if files.is_empty() {
        let settings = Settings::load(None).map_err(CliError::input)?;
        vec![match &settings.pricing.file {
            Some(path) => RateCard::load(path).map_err(|e| e.to_string()),
            None => Ok(RateCard::builtin()),
        }]
    } else {
        files
            .iter()
            .map(|f| RateCard::load(Path::new(f)).map_err(|e| e.to_string()))
            .collect()
    };
    let mut failures = Vec::new();
    for card in cards {
        match card {
            Ok(card) => {
                let periods: usize = card.models().iter().map(|m| m.periods.len()).sum();
                writeln!(
                    out,
                    "{}: ok, {} models, {periods} price periods, {}",
                    card.origin(),
                    card.models().len(),
                    card.currency()
                )
                .map_err(CliError::runtime)?;
                for (rule, models) in card.shared_matches() {
                    let names: Vec<String> = models
                        .iter()
                        .map(|&id| {
                            let model = card.model(id);
                            format!(
                                "{} ({} GB)",
                                model.name,
                                model.memory_gb.unwrap_or_default()
                            )
                        })
                        .collect();
                    writeln!(
                        out,
                        "  match {rule:?} is shared by {}: a product is priced as the one nearest its memory; a name without one as {}",
                        names.join(", "),
                        card.model(models[0]).name
                    )
                    .map_err(CliError::runtime)?;
                }
                for model in card.models() {
                    for (span, line) in model.unpriced_spans() {
                        let until = if span.end == i64::MAX {
                            String::new()
                        } else {
                            format!(" to {}", format_time(span.end))
                        };
                        writeln!(
                            out,
                            "  {} has no price from {}{until} (after the period on line {line}): its hours then are reported as unpriced_gpu_hours, with no cost",
                            model.name,
                            format_time(span.start)
                        )
                        .map_err(CliError::runtime)?;
                    }
                }
                for product in products {
                    writeln!(out, "  {}", describe_match(&card, product))
                        .map_err(CliError::runtime)?;
                }
            }
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(CliError::input(failures.remove(0))),
        n => Err(CliError::input(format!(
            "{n} rate cards are invalid: {}",
            failures.join("; ")
        ))),
    }
}
