//! Reading and validating a rate card from TOML, with errors that name file, line and field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rust_decimal::Decimal;
use serde::Deserialize;
use toml::Spanned;

use super::matching::{Matcher, normalize};
use super::{GpuModel, PricePeriod, RateCard, refused_price};
use crate::money::{Currency, Rounding};
use crate::time::{Interval, UnixSeconds, parse_time};
use crate::units::GpuUnits;

/// Why a rate card was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RateCardError {
    /// The file (or description of the text) that was read.
    pub origin: String,
    /// 1-based line of the offending entry, when known.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for RateCardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    currency: Spanned<String>,
    rounding: Option<Spanned<String>>,
    #[serde(default)]
    gpu: Vec<Spanned<RawGpu>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpu {
    model: Spanned<String>,
    #[serde(rename = "match")]
    matches: Option<Vec<Spanned<String>>>,
    mig_slices: Option<Spanned<i64>>,
    memory_gb: Option<Spanned<i64>>,
    on_demand: Spanned<toml::Value>,
    spot: Option<Spanned<toml::Value>>,
    reserved: Option<Spanned<toml::Value>>,
    from: Option<Spanned<toml::Value>>,
    until: Option<Spanned<toml::Value>>,
    mig: Option<BTreeMap<String, Spanned<toml::Value>>>,
}

struct Reader<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Reader<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn error<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, RateCardError> {
        Err(RateCardError {
            origin: self.origin.to_string(),
            line: Some(self.line_of(span.start)),
            message: message.into(),
        })
    }

    fn price(&self, field: &str, value: &Spanned<toml::Value>) -> Result<Decimal, RateCardError> {
        let parsed = match value.get_ref() {
            toml::Value::String(s) => s.trim().parse::<Decimal>().ok(),
            toml::Value::Integer(i) => Some(Decimal::from(*i)),
            toml::Value::Float(_) => {
                return self.error(
                    value.span(),
                    format!("{field}: write prices as decimal strings ({field} = \"6.88\") so they stay exact"),
                );
            }
            _ => None,
        };
        match parsed {
            Some(p) => match refused_price(p) {
                None => Ok(p),
                Some(why) => self.error(value.span(), format!("{field}: {why}")),
            },
            None => self.error(
                value.span(),
                format!(
                    "{field}: {} is not a decimal price (write e.g. \"6.88\")",
                    value.get_ref()
                ),
            ),
        }
    }

    fn time(
        &self,
        field: &str,
        value: &Spanned<toml::Value>,
    ) -> Result<UnixSeconds, RateCardError> {
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            other => other.to_string(),
        };
        parse_time(&text).or_else(|_| {
            self.error(
                value.span(),
                format!("{field}: {text:?} is not an RFC 3339 time (write e.g. \"2026-01-01T00:00:00Z\")"),
            )
        })
    }

    fn fraction(
        &self,
        profile: &str,
        value: &Spanned<toml::Value>,
    ) -> Result<GpuUnits, RateCardError> {
        let field = format!("mig.\"{profile}\"");
        let fraction = self.price(&field, value)?;
        if fraction.is_zero() || fraction > Decimal::ONE {
            return self.error(
                value.span(),
                format!("{field}: a MIG fraction must be above 0 and at most 1"),
            );
        }
        if profile
            .split_once('g')
            .is_none_or(|(g, _)| g.parse::<u32>().is_err())
        {
            return self.error(
                value.span(),
                format!("{field}: a MIG profile looks like \"1g.10gb\""),
            );
        }
        GpuUnits::from_decimal(fraction).map_or_else(
            || self.error(value.span(), format!("{field}: too many decimals")),
            Ok,
        )
    }
}

/// Loads and validates a rate card file.
pub(super) fn load_file(path: &Path) -> Result<RateCard, RateCardError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| RateCardError {
        origin: origin.clone(),
        line: None,
        message: format!("cannot read the rate card: {e}"),
    })?;
    parse(&text, &origin)
}

/// Parses and validates rate-card TOML; `origin` names the text in errors.
pub(super) fn parse(text: &str, origin: &str) -> Result<RateCard, RateCardError> {
    let reader = Reader { origin, text };
    let raw: RawCard = toml::from_str(text).map_err(|e| RateCardError {
        origin: origin.to_string(),
        line: e.span().map(|s| reader.line_of(s.start)),
        message: e.message().trim().to_string(),
    })?;
    let currency = Currency::new(raw.currency.get_ref()).map_or_else(
        || {
            reader.error(
                raw.currency.span(),
                format!(
                    "currency: {:?} is not a three-letter ISO 4217 code like \"USD\"",
                    raw.currency.get_ref()
                ),
            )
        },
        Ok,
    )?;
    let rounding = match &raw.rounding {
        None => Rounding::default(),
        Some(r) => Rounding::parse(r.get_ref()).map_or_else(
            || {
                reader.error(
                    r.span(),
                    format!(
                        "rounding: {:?} is not \"half-even\" or \"half-up\"",
                        r.get_ref()
                    ),
                )
            },
            Ok,
        )?,
    };

    let mut models: Vec<GpuModel> = Vec::new();
    let mut matchers: Vec<Matcher> = Vec::new();
    let mut match_owner: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
    for entry in &raw.gpu {
        let line = reader.line_of(entry.span().start);
        let gpu = entry.get_ref();
        let name = gpu.model.get_ref().trim();
        if name.is_empty() {
            return reader.error(gpu.model.span(), "model: must not be empty");
        }
        let from = gpu
            .from
            .as_ref()
            .map(|v| reader.time("from", v))
            .transpose()?;
        let until = gpu
            .until
            .as_ref()
            .map(|v| reader.time("until", v))
            .transpose()?;
        let during = Interval::new(
            from.unwrap_or(UnixSeconds::MIN),
            until.unwrap_or(UnixSeconds::MAX),
        );
        if during.is_empty() {
            return reader.error(
                entry.span(),
                format!("model {name:?}: `from` must be before `until`"),
            );
        }
        let period = PricePeriod {
            during,
            on_demand: reader.price("on_demand", &gpu.on_demand)?,
            spot: gpu
                .spot
                .as_ref()
                .map(|v| reader.price("spot", v))
                .transpose()?,
            reserved: gpu
                .reserved
                .as_ref()
                .map(|v| reader.price("reserved", v))
                .transpose()?,
            line,
        };
        let mig_slices = match &gpu.mig_slices {
            None => None,
            Some(s) if (1..=16).contains(s.get_ref()) => Some(*s.get_ref() as u32),
            Some(s) => {
                return reader.error(s.span(), "mig_slices: must be a whole number from 1 to 16");
            }
        };
        let memory_gb = match &gpu.memory_gb {
            None => None,
            Some(m) if (1..=100_000).contains(m.get_ref()) => Some(*m.get_ref() as u32),
            Some(m) => {
                return reader.error(
                    m.span(),
                    "memory_gb: must be a whole number of GB from 1 to 100000",
                );
            }
        };
        let mut mig = BTreeMap::new();
        for (profile, value) in gpu.mig.iter().flatten() {
            mig.insert(profile.clone(), reader.fraction(profile, value)?);
        }

        let index = match models.iter().position(|m| m.name == name) {
            Some(i) => {
                let model = &mut models[i];
                if let Some(other) = model
                    .periods
                    .iter()
                    .find(|p| p.during.clip(during).is_some())
                {
                    return reader.error(
                        entry.span(),
                        format!(
                            "model {name:?}: this price period overlaps the one on line {}",
                            other.line
                        ),
                    );
                }
                if mig_slices.is_some()
                    && model.mig_slices.is_some()
                    && mig_slices != model.mig_slices
                {
                    return reader.error(
                        entry.span(),
                        format!("model {name:?}: mig_slices differs from an earlier entry"),
                    );
                }
                if memory_gb.is_some() && model.memory_gb.is_some() && memory_gb != model.memory_gb
                {
                    return reader.error(
                        entry.span(),
                        format!("model {name:?}: memory_gb differs from an earlier entry"),
                    );
                }
                model.mig_slices = model.mig_slices.or(mig_slices);
                model.memory_gb = model.memory_gb.or(memory_gb);
                model.mig.extend(mig);
                model.periods.push(period);
                model.periods.sort_by_key(|p| p.during.start);
                i
            }
            None => {
                models.push(GpuModel {
                    name: name.to_string(),
                    mig_slices,
                    memory_gb,
                    mig,
                    periods: vec![period],
                });
                models.len() - 1
            }
        };

        let default_match = [Spanned::new(gpu.model.span(), name.to_string())];
        for text in gpu.matches.as_deref().unwrap_or(&default_match) {
            let normalized = normalize(text.get_ref());
            if normalized.is_empty() {
                return reader.error(
                    text.span(),
                    format!("match: {:?} has no letters or digits", text.get_ref()),
                );
            }
            let owners = match_owner.entry(normalized.clone()).or_default();
            if owners.iter().any(|(owner, _)| *owner == index) {
                continue;
            }
            // Models may share a match string only when their memory tells them apart.
            let memory = models[index].memory_gb;
            if let Some((owner, owner_line)) = owners.iter().find(|(owner, _)| {
                memory.is_none() || models[*owner].memory_gb.is_none_or(|m| Some(m) == memory)
            }) {
                return reader.error(
                    text.span(),
                    format!(
                        "match: {:?} is also a match string of model {:?} (line {owner_line}); models may share a match string only when each sets a different memory_gb",
                        text.get_ref(),
                        models[*owner].name
                    ),
                );
            }
            owners.push((index, reader.line_of(text.span().start)));
            matchers.push(Matcher {
                words: normalized.split(' ').map(str::to_string).collect(),
                model: index,
            });
        }
    }

    let mut card = RateCard {
        origin: origin.to_string(),
        currency,
        rounding,
        models,
        matchers,
        kinds: Vec::new(),
    };
    card.kinds = card.model_kinds();
    Ok(card)
}
