//! A report's lines in print order — by period, then group values as text, lines that print
//! the same made one — and the report they make.

use std::sync::Arc;

use super::report::{CostLine, CostReport};
use super::request::ReportRequest;
use super::resolver::Resolver;
use super::sums::Parts;
use super::values::{GroupValues, UNALLOCATED_ID};
use super::warnings::Warnings;
use crate::allocation::Sym;
use crate::prefetch::{AHEAD, prefetch};
use crate::pricing::RateCard;

/// Values of a group key ranked before lines are sorted; a key with more (the pods of a
/// day at 10,000 GPUs) is compared by text within runs of lines whose keys before it tie.
pub(super) const RANKED_VALUES: usize = 4096;

/// Bits of a line's sort key that hold the ranks of its leading group values, below its
/// period's 32.
const PACKED_RANK_BITS: u32 = 96;

/// Where a group key's value `id` sits in a table indexed by ids (the unallocated cost center
/// first).
fn rank_slot(id: u32) -> usize {
    if id == UNALLOCATED_ID {
        0
    } else {
        id as usize + 1
    }
}

impl Resolver<'_> {
    /// For each group key, the rank of every value `lines` print for it in text order (equal
    /// texts share a rank), indexed by [`rank_slot`]; `None` for a key with more than
    /// [`RANKED_VALUES`] values (pod names, resource IDs), whose texts are compared where the
    /// keys before it tie instead of all being sorted.
    fn ranks(&self, lines: impl Iterator<Item = u32> + Clone) -> Vec<Option<Vec<u32>>> {
        // Which values each key has met, by [`rank_slot`]: the key's place plus one where met
        // (values are numbered densely, so a table serves where a hash set would hash each).
        let mut met: Vec<u32> = Vec::new();
        self.shared
            .keys
            .iter()
            .enumerate()
            .map(|(at, &group_key)| {
                // Values counted as met, given up on past the ranked many.
                let mark = at as u32 + 1;
                let mut column: Vec<u32> = Vec::new();
                for line in lines.clone() {
                    let id = self.lines[line as usize][at];
                    let slot = rank_slot(id);
                    if met.len() <= slot {
                        met.resize(slot + 1, 0);
                    }
                    if met[slot] != mark {
                        met[slot] = mark;
                        column.push(id);
                        if column.len() > RANKED_VALUES {
                            return None;
                        }
                    }
                }
                column.sort_unstable();
                let size = column.iter().map(|&id| rank_slot(id)).max().unwrap_or(0) + 1;
                // The texts are copied side by side first: sorting them where they were
                // interned (one allocation each, all over the heap) waits on memory at every
                // comparison.
                let mut texts = String::new();
                let mut spans: Vec<(usize, usize, u32)> = column
                    .iter()
                    .map(|&id| {
                        let start = texts.len();
                        texts.push_str(self.group_value(group_key, id));
                        (start, texts.len(), id)
                    })
                    .collect();
                spans.sort_unstable_by(|a, b| texts[a.0..a.1].cmp(&texts[b.0..b.1]));
                let mut ranks = vec![0; size];
                let mut rank = 0;
                let mut previous = None;
                for (start, end, id) in spans {
                    let text = &texts[start..end];
                    if previous.is_some_and(|p| p != text) {
                        rank += 1;
                    }
                    previous = Some(text);
                    ranks[rank_slot(id)] = rank;
                }
                Some(ranks)
            })
            .collect()
    }

    pub(super) fn report(
        self,
        request: &ReportRequest,
        mut parts: Parts,
        card: &RateCard,
    ) -> CostReport {
        let periods = request.step.periods(request.window);
        if !request.only.keeps_all() {
            parts.retain(|&((_, line, _), _)| {
                request
                    .only
                    .keeps(&self.shared.keys, self.group_values(line))
            });
        }
        let mut warnings = Warnings::default();
        for ((_, _, label), part) in &parts {
            let model = self.shared.labels.resolve(Sym::from_raw(*label));
            warnings.unpriced(card.origin(), model, part.unpriced_gpu_hours);
        }
        let order = self.ordered(&mut parts);
        let Resolver {
            shared,
            lines: keys,
            ..
        } = self;
        let shared = Arc::new(shared);
        // Room for every line made at once: most are kept, and they are large.
        let mut kept = Vec::with_capacity(order.len());
        kept.extend(order.iter().enumerate().filter_map(|(n, &(at, line))| {
            // Lines are taken in print order, not in the order they were numbered and priced
            // in: the figures and key of the one a few ahead are loaded meanwhile.
            if let Some(&(ahead, ahead_line)) = order.get(n + AHEAD) {
                prefetch(&parts[ahead as usize]);
                prefetch(&keys[ahead_line as usize]);
            }
            let ((period, ..), figures) = &mut parts[at as usize];
            // Each line's figures are moved once, from where they were priced.
            let figures = std::mem::take(figures);
            (!figures.is_empty()).then(|| CostLine {
                period: periods[*period as usize],
                group: GroupValues::named(shared.clone(), keys[line as usize]),
                figures,
            })
        }));
        CostReport {
            request: request.clone(),
            currency: card.currency().clone(),
            rounding: card.rounding(),
            lines: kept,
            warnings,
        }
    }

    /// The places in `parts` of their lines in print order (with each line's number): by
    /// period, then group values as text. Lines that print the same (one line of several
    /// models, or unallocated capacity and pods of one model grouped by model) become one: the
    /// first in print order takes the others' figures.
    fn ordered(&self, parts: &mut Parts) -> Vec<(u32, u32)> {
        // Compared as ranks, each key's values ranked once.
        let ranks = self.ranks(parts.iter().map(|&((_, line, _), _)| line));
        // The leading ranked keys that fit are packed with the period into one integer, the
        // next key's first bytes (or rank) into another: most lines are told apart by
        // comparing two integers. Lines that tie on both are compared key by key from there.
        let widths: Vec<u32> = ranks
            .iter()
            .map_while(|r| r.as_ref())
            .map(|ids| {
                ids.iter()
                    .max()
                    .map_or(0, |&r| u32::BITS - r.leading_zeros())
            })
            .scan(0, |used, width| {
                *used += width;
                (*used <= PACKED_RANK_BITS).then_some(width)
            })
            .collect();
        let packed = widths.len();
        let line_key = |line: u32| &self.lines[line as usize];
        let value_rank = |at: usize, id: u32| ranks[at].as_ref().map(|ids| ids[rank_slot(id)]);
        let packed_order = |period: u32, line: u32| -> u128 {
            widths.iter().zip(line_key(line)).enumerate().fold(
                u128::from(period),
                |order, (at, (&width, &id))| {
                    (order << width) | u128::from(value_rank(at, id).unwrap_or(0))
                },
            )
        };
        // The keys from the first not packed, each by rank or else by text.
        let rest = |a: u32, b: u32| -> std::cmp::Ordering {
            let (a, b) = (line_key(a), line_key(b));
            (packed..self.shared.keys.len())
                .filter(|&at| a[at] != b[at])
                .map(|at| match (value_rank(at, a[at]), value_rank(at, b[at])) {
                    (Some(a), Some(b)) => a.cmp(&b),
                    _ => {
                        let key = self.shared.keys[at];
                        self.group_value(key, a[at])
                            .cmp(self.group_value(key, b[at]))
                    }
                })
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        // Sorted as (place, line, place of its figures): small to move, quick to compare.
        // First by the packed keys alone; then each run that ties on them by the next key: its
        // rank, or the eight bytes of its text after those all the run's texts begin with (pods
        // of one workload on one node share all but the last few), then key by key.
        let mut keyed: Vec<((u128, u64), u32, u32)> = parts
            .iter()
            .enumerate()
            .map(|(at, &((period, line, _), _))| ((packed_order(period, line), 0), line, at as u32))
            .collect();
        keyed.sort_unstable_by_key(|&((order, _), ..)| order);
        let next_key = self.shared.keys.get(packed).copied();
        for run in keyed.chunk_by_mut(|a, b| a.0.0 == b.0.0) {
            let Some(group_key) = next_key else {
                break;
            };
            if run.len() == 1 {
                continue;
            }
            let text = |line: u32| {
                self.group_value(group_key, line_key(line)[packed])
                    .as_bytes()
            };
            let shared = match ranks[packed] {
                Some(_) => 0,
                None => {
                    let first = text(run[0].1);
                    run[1..].iter().fold(first.len(), |shared, &(_, line, _)| {
                        let other = text(line);
                        first[..shared]
                            .iter()
                            .zip(other)
                            .take_while(|(a, b)| a == b)
                            .count()
                    })
                }
            };
            for ((_, next), line, _) in run.iter_mut() {
                let id = line_key(*line)[packed];
                *next = match value_rank(packed, id) {
                    Some(rank) => u64::from(rank),
                    None => {
                        let text = text(*line);
                        let mut eight = [0; 8];
                        let after = &text[shared.min(text.len())..];
                        let len = after.len().min(8);
                        eight[..len].copy_from_slice(&after[..len]);
                        u64::from_be_bytes(eight)
                    }
                };
            }
            run.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| rest(a.1, b.1)));
        }
        let mut order: Vec<(u32, u32)> = Vec::with_capacity(keyed.len());
        let mut last = None;
        for &(place, line, at) in &keyed {
            match order.last() {
                Some(&(first, first_line))
                    if last == Some(place) && rest(first_line, line).is_eq() =>
                {
                    let merged = std::mem::take(&mut parts[at as usize].1);
                    parts[first as usize].1.absorb(&merged);
                }
                _ => {
                    order.push((at, line));
                    last = Some(place);
                }
            }
        }
        order
    }
}
