//! The token report: each pod's GPU cost, hour by hour, split over the models it served by their
//! share of its tokens in that hour, then grouped by the keys asked (`served_model` and any
//! chargeback key) — what a million tokens of each model cost each team.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rustc_hash::FxHashMap;

use super::{Served, TokenCounts};
use crate::cost::{
    CostLine, CostReport, Figures, GroupBy, GroupKey, GroupValues, LineFilter, ReportRequest,
    RequestError, RequestText,
};
use crate::money::{Currency, Rounding};
use crate::time::{Interval, Step, UnixSeconds};

/// The group-by key of the serving engine's model label.
pub const SERVED_MODEL: &str = "served_model";

/// What a token report is grouped by unless asked otherwise.
pub const DEFAULT_GROUP_BY: &str = "served_model,cost_center,namespace";

/// Costs per million tokens print with this many decimals (they are rates, often cents).
pub const PER_MILLION_PLACES: u32 = 4;

/// A token report asked for: a chargeback request, with `served_model` somewhere among its keys.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TokenRequest {
    /// The report asked, less `served_model`.
    pub report: ReportRequest,
    /// Where `served_model` sits among the group columns, if it is asked.
    pub model_at: Option<usize>,
}

impl TokenRequest {
    /// Reads a request; the group-by defaults to `served_model,cost_center,namespace`.
    pub fn parse(text: RequestText<'_>, now: UnixSeconds) -> Result<Self, RequestError> {
        let wrong = |message: String| RequestError {
            field: "group_by",
            message,
        };
        let mut names: Vec<&str> = text
            .group_by
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            names = DEFAULT_GROUP_BY.split(',').collect();
        }
        let model_at = names.iter().position(|n| *n == SERVED_MODEL);
        let mut keys = Vec::new();
        for name in names.iter().filter(|n| **n != SERVED_MODEL) {
            keys.push(GroupKey::named(name).ok_or_else(|| {
                wrong(format!(
                    "unknown group-by key {name:?}: use served_model or any of cost_center, namespace, gpu_model, node, pod, cost_center_source, cluster"
                ))
            })?);
        }
        if names.iter().filter(|n| **n == SERVED_MODEL).count() > 1 {
            return Err(wrong(format!(
                "group-by key {SERVED_MODEL} is listed twice"
            )));
        }
        let group_by = GroupBy::new(keys).map_err(|e| wrong(e.to_string()))?;
        Ok(TokenRequest {
            report: ReportRequest::parse_grouped(text, group_by, now)?,
            model_at,
        })
    }

    /// The default report over `window`, one line per served model, cost center and
    /// namespace: what the console and `tollgate_cost_per_million_tokens` show.
    pub fn served_models(window: Interval) -> Self {
        let keys = vec![GroupKey::CostCenter, GroupKey::Namespace];
        TokenRequest {
            report: ReportRequest {
                window,
                step: Step::Window,
                group_by: GroupBy::new(keys).unwrap_or_else(|_| unreachable!("distinct keys")),
                share_unallocated: false,
                only: LineFilter::default(),
            },
            model_at: Some(0),
        }
    }

    /// The group columns, in the order asked.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut columns: Vec<&'static str> = self
            .report
            .group_by
            .keys()
            .iter()
            .map(|k| k.as_str())
            .collect();
        if let Some(at) = self.model_at {
            columns.insert(at.min(columns.len()), SERVED_MODEL);
        }
        columns
    }

    /// What the engine prices: the keys asked, then namespace and pod where not asked, hour by
    /// hour — the grain tokens are counted at.
    pub fn per_pod(&self) -> ReportRequest {
        let mut keys = self.report.group_by.keys().to_vec();
        for key in [GroupKey::Namespace, GroupKey::Pod] {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        ReportRequest {
            step: Step::Hour,
            group_by: GroupBy::new(keys).unwrap_or_else(|_| unreachable!("distinct keys")),
            ..self.report.clone()
        }
    }
}

/// One group in one period: its GPU figures (exact) and the tokens it served.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TokenLine {
    /// The row's period.
    pub period: Interval,
    /// Values of the group columns ([`TokenRequest::columns`]).
    pub group: Vec<String>,
    /// GPU hours, cost and idle cost.
    pub figures: Figures,
    /// Prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
}

/// Exact token lines, sorted by period then group values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TokenReport {
    /// What was asked.
    pub request: TokenRequest,
    /// The rate card's currency.
    pub currency: Currency,
    /// The rate card's rounding.
    pub rounding: Rounding,
    /// `tokens.input_weight`: what an input token costs beside an output token, if set.
    pub input_weight: Option<Decimal>,
    /// Exact lines.
    pub lines: Vec<TokenLine>,
    /// Things the reader must know (models with cost and no tokens, no counters read).
    pub warnings: Vec<String>,
}

/// Costs per million tokens of a line, rounded; `None` where there are no tokens to divide by.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PerMillion {
    /// Cost ÷ all tokens × 10⁶.
    pub tokens: Option<Decimal>,
    /// Cost ÷ output tokens × 10⁶.
    pub output_tokens: Option<Decimal>,
    /// With `input_weight` w: w × [`PerMillion::output`].
    pub input: Option<Decimal>,
    /// With `input_weight` w: cost ÷ (w × input + output tokens) × 10⁶.
    pub output: Option<Decimal>,
}

/// A token line for print: figures rounded so that lines add up to the total.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrintedLine {
    /// The row's period (the window for the total).
    pub period: Interval,
    /// Values of the group columns (none for the total).
    pub group: Vec<String>,
    /// Rounded GPU figures.
    pub figures: Figures,
    /// Prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
    /// Per-million-token costs from the exact cost.
    pub per_million: PerMillion,
}

/// A token report rounded once for print.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrintedTokens {
    /// The lines.
    pub lines: Vec<PrintedLine>,
    /// Column totals.
    pub total: PrintedLine,
}

impl TokenReport {
    /// The per-million costs of a line's exact cost and its tokens, each rounded once.
    fn per_million(&self, cost: Option<Decimal>, input: u64, output: u64) -> PerMillion {
        let (input, output) = (Decimal::from(input), Decimal::from(output));
        let rate = |tokens: Decimal| match tokens.is_zero() {
            true => None,
            false => cost?
                .checked_mul(Decimal::from(1_000_000))?
                .checked_div(tokens),
        };
        let print = |rate: Decimal| self.rounding.money(rate, PER_MILLION_PLACES);
        let weighted = self
            .input_weight
            .and_then(|weight| Some((weight, rate(weight * input + output)?)));
        PerMillion {
            tokens: rate(input + output).map(print),
            output_tokens: rate(output).map(print),
            input: weighted.map(|(weight, rate)| print(rate * weight)),
            output: weighted.map(|(_, rate)| print(rate)),
        }
    }

    /// Rounds once: hours and money as the chargeback does (lines add up to the total), tokens
    /// as counted, per-million costs from the exact cost.
    pub fn printed(&self) -> PrintedTokens {
        let as_costs = CostReport {
            request: self.request.report.clone(),
            currency: self.currency.clone(),
            rounding: self.rounding,
            lines: self
                .lines
                .iter()
                .map(|line| CostLine {
                    period: line.period,
                    group: GroupValues::default(),
                    figures: line.figures.clone(),
                })
                .collect(),
            warnings: Default::default(),
        };
        let exact = as_costs.exact_total();
        // Rounded in place: no third copy of every line's figures.
        let rounded = as_costs.into_chargeback();
        let lines = self
            .lines
            .iter()
            .zip(rounded.lines)
            .map(|(line, rounded)| PrintedLine {
                period: line.period,
                group: line.group.clone(),
                figures: rounded.figures,
                input: line.input,
                output: line.output,
                per_million: self.per_million(line.figures.cost, line.input, line.output),
            })
            .collect();
        let (input, output) = self.lines.iter().fold((0u64, 0u64), |(i, o), l| {
            (i.saturating_add(l.input), o.saturating_add(l.output))
        });
        PrintedTokens {
            lines,
            total: PrintedLine {
                period: self.request.report.window,
                group: Vec::new(),
                figures: rounded.total,
                input,
                output,
                per_million: self.per_million(exact.cost, input, output),
            },
        }
    }
}

/// `whole` less the sum of `parts`: the last share of a split, so that the shares add up to the
/// whole exactly.
fn remainder(whole: &Figures, parts: &[Figures]) -> Figures {
    let mut taken = Figures::default();
    for part in parts {
        taken.absorb(part);
    }
    let less = |w: Option<Decimal>, t: Option<Decimal>| w.map(|w| w - t.unwrap_or_default());
    Figures {
        gpu_hours: whole.gpu_hours - taken.gpu_hours,
        used_gpu_hours: less(whole.used_gpu_hours, taken.used_gpu_hours),
        cost: less(whole.cost, taken.cost),
        idle_cost: less(whole.idle_cost, taken.idle_cost),
        unpriced_gpu_hours: whole.unpriced_gpu_hours - taken.unpriced_gpu_hours,
    }
}

/// `whole` split by `weights` (not all zero): each share `whole × weight ÷ Σ weights`, the last
/// the remainder.
fn split(whole: &Figures, weights: &[Decimal]) -> Vec<Figures> {
    let sum: Decimal = weights.iter().sum();
    let mut parts: Vec<Figures> = weights[..weights.len() - 1]
        .iter()
        .map(|w| whole.scaled(*w / sum))
        .collect();
    parts.push(remainder(whole, &parts));
    parts
}

/// `tokens` split over lines in proportion to `weights` in whole tokens (largest remainder,
/// earlier lines first on ties); all to the first line when every weight is zero.
fn share_tokens(tokens: u64, weights: &[Decimal]) -> Vec<u64> {
    let sum: Decimal = weights.iter().sum();
    if sum.is_zero() {
        let mut shares = vec![0; weights.len()];
        shares[0] = tokens;
        return shares;
    }
    let exact: Vec<Decimal> = weights
        .iter()
        .map(|w| Decimal::from(tokens) * *w / sum)
        .collect();
    let mut shares: Vec<u64> = exact
        .iter()
        .map(|e| e.floor().to_u64().unwrap_or(0))
        .collect();
    let mut missing = tokens - shares.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).cmp(&(exact[a] - exact[a].floor())));
    for i in order {
        if missing == 0 {
            break;
        }
        shares[i] += 1;
        missing -= 1;
    }
    shares
}

/// A token line being summed.
#[derive(Default)]
struct Cell {
    figures: Figures,
    input: u64,
    output: u64,
}

impl Cell {
    fn absorb(&mut self, figures: &Figures, input: u64, output: u64) {
        self.figures.absorb(figures);
        self.input = self.input.saturating_add(input);
        self.output = self.output.saturating_add(output);
    }
}

/// A token report being summed from the engine's per-pod hourly report
/// ([`TokenRequest::per_pod`]), a part of the window at a time (a day, say), and the tokens each
/// pod served. A pod-hour's figures go to the models it served by their share of its tokens in
/// the hour (equal shares when it served none that hour); a pod no counter names keeps an empty
/// `served_model`. Tokens of a pod in an hour it held no GPU are not counted.
pub struct TokenTally<'a> {
    request: &'a TokenRequest,
    periods: Vec<Interval>,
    cells: FxHashMap<(Interval, Vec<String>), Cell>,
    /// Every model served, and whether it counted any token.
    models: BTreeMap<String, bool>,
}

impl<'a> TokenTally<'a> {
    /// An empty tally of `request`.
    pub fn new(request: &'a TokenRequest) -> Self {
        TokenTally {
            request,
            periods: request.report.step.periods(request.report.window),
            cells: FxHashMap::default(),
            models: BTreeMap::new(),
        }
    }

    /// The lines tallied so far.
    pub fn lines(&self) -> usize {
        self.cells.len()
    }

    /// Adds `per_pod`, the engine's report of [`TokenRequest::per_pod`] over part of the window.
    pub fn add(&mut self, per_pod: &CostReport, tokens: &dyn TokenCounts) {
        let keys = per_pod.request.group_by.keys();
        let at = |key| keys.iter().position(|k| *k == key);
        let (Some(ns_at), Some(pod_at)) = (at(GroupKey::Namespace), at(GroupKey::Pod)) else {
            unreachable!("the per-pod request has namespace and pod")
        };
        let asked: Vec<usize> = self
            .request
            .report
            .group_by
            .keys()
            .iter()
            .filter_map(|k| at(*k))
            .collect();
        let model_at = self.request.model_at;
        let group_of = |line: &CostLine, model: &str| {
            let mut group: Vec<String> = asked.iter().map(|&i| line.group[i].to_string()).collect();
            if let Some(m) = model_at {
                group.insert(m.min(group.len()), model.to_string());
            }
            group
        };
        // A pod's lines in one hour (several when grouped by gpu_model, say).
        let mut pod_hours: FxHashMap<(Interval, &str, &str), Vec<&CostLine>> = FxHashMap::default();
        for line in &per_pod.lines {
            let (ns, pod) = (&line.group[ns_at], &line.group[pod_at]);
            pod_hours
                .entry((line.period, ns, pod))
                .or_default()
                .push(line);
        }
        for ((hour, ns, pod), lines) in pod_hours {
            let at = self.periods.partition_point(|p| p.start <= hour.start);
            let period = self.periods[at.saturating_sub(1)];
            let served: Vec<Served> = if pod.is_empty() {
                Vec::new()
            } else {
                tokens.served(ns, pod, hour)
            };
            if served.is_empty() {
                for line in lines {
                    let cell = self.cells.entry((period, group_of(line, ""))).or_default();
                    cell.absorb(&line.figures, 0, 0);
                }
                continue;
            }
            let all: u64 = served
                .iter()
                .map(Served::total)
                .fold(0, u64::saturating_add);
            let shares: Vec<Decimal> = served
                .iter()
                .map(|s| match all {
                    0 => Decimal::ONE,
                    _ => Decimal::from(s.total()),
                })
                .collect();
            let hours: Vec<Decimal> = lines.iter().map(|l| l.figures.gpu_hours).collect();
            let inputs: Vec<Vec<u64>> = served
                .iter()
                .map(|s| share_tokens(s.input, &hours))
                .collect();
            let outputs: Vec<Vec<u64>> = served
                .iter()
                .map(|s| share_tokens(s.output, &hours))
                .collect();
            for s in &served {
                *self.models.entry(s.model.clone()).or_default() |= s.total() > 0;
            }
            for (l, line) in lines.iter().enumerate() {
                for (m, figures) in split(&line.figures, &shares).iter().enumerate() {
                    let group = group_of(line, &served[m].model);
                    let cell = self.cells.entry((period, group)).or_default();
                    cell.absorb(figures, inputs[m][l], outputs[m][l]);
                }
            }
        }
    }

    /// The report: lines in order, `warnings` and one for the models with no tokens.
    pub fn finish(
        self,
        (currency, rounding): (Currency, Rounding),
        input_weight: Option<Decimal>,
        mut warnings: Vec<String>,
    ) -> TokenReport {
        let idle: Vec<&str> = self
            .models
            .iter()
            .filter(|(_, counted)| !**counted)
            .map(|(model, _)| model.as_str())
            .collect();
        if !idle.is_empty() {
            warnings.push(format!(
                "served models with GPU cost and no tokens in the window: {}; their per-token costs are left empty",
                idle.join(", ")
            ));
        }
        let mut lines: Vec<TokenLine> = self
            .cells
            .into_iter()
            .filter(|(_, c)| !c.figures.is_empty() || c.input > 0 || c.output > 0)
            .map(|((period, group), c)| TokenLine {
                period,
                group,
                figures: c.figures,
                input: c.input,
                output: c.output,
            })
            .collect();
        lines.sort_unstable_by(|a, b| (a.period, &a.group).cmp(&(b.period, &b.group)));
        TokenReport {
            request: self.request.clone(),
            currency,
            rounding,
            input_weight,
            lines,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests;
