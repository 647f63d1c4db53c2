//! Tokens served: what the serving engines' counters say each pod served, per model and hour,
//! and what those tokens cost (SPEC §4.1 token reports, `tollgate report --tokens`).
//!
//! vLLM, SGLang, NVIDIA NIM and Hugging Face TGI count prompt and generated tokens in counters
//! (TGI in histogram sums) that reset when the server restarts. This module turns their samples
//! into exact integer tokens per pod, model and hour — the increase between consecutive samples,
//! a drop being a restart from zero — and matches series to pods by the same label rules as DCGM
//! ([`crate::usage::series_key`]). [`report`] splits each pod's hourly GPU cost over the models it
//! served by their share of its tokens.

pub mod report;

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use crate::time::{Interval, UnixSeconds};
use crate::usage::{UsageKey, Utilization, series_key};

/// What one pod served of one model in a period.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Served {
    /// The serving engine's model label (the served model or adapter name).
    pub model: String,
    /// Prompt tokens read.
    pub input: u64,
    /// Tokens generated.
    pub output: u64,
}

impl Served {
    /// Input and output tokens together.
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// Tokens served per pod, model and hour: counted from Prometheus ([`TokenIndex`]) or simulated
/// (the demo fleet's inference workloads).
pub trait TokenCounts: Sync {
    /// What the pod `namespace/pod` served of each model in `period` (within one UTC hour),
    /// sorted by model; empty when it served no model the counters know.
    fn served(&self, namespace: &str, pod: &str, period: Interval) -> Vec<Served>;
}

/// What a monitoring system says about workloads: GPU utilization and tokens served. The demo
/// fleet simulates both.
pub trait Telemetry: Utilization + TokenCounts {}

impl<T: Utilization + TokenCounts> Telemetry for T {}

/// Which way a counter counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Prompt tokens.
    Input,
    /// Generated tokens.
    Output,
}

/// The token counters read, with their engine and direction. NIM for LLMs (TensorRT-LLM or
/// vLLM inside) exports the unprefixed names.
pub const COUNTERS: [(&str, &str, Direction); 8] = [
    ("vllm:prompt_tokens_total", "vllm", Direction::Input),
    ("vllm:generation_tokens_total", "vllm", Direction::Output),
    ("sglang:prompt_tokens_total", "sglang", Direction::Input),
    (
        "sglang:generation_tokens_total",
        "sglang",
        Direction::Output,
    ),
    ("prompt_tokens_total", "nim", Direction::Input),
    ("generation_tokens_total", "nim", Direction::Output),
    ("tgi_request_input_length_sum", "tgi", Direction::Input),
    ("tgi_request_generated_tokens_sum", "tgi", Direction::Output),
];

/// The engine and direction of a counter by its metric name.
pub fn counter(metric: &str) -> Option<(&'static str, Direction)> {
    COUNTERS
        .iter()
        .find(|(name, _, _)| *name == metric)
        .map(|(_, engine, direction)| (*engine, *direction))
}

/// The served model of a series: its `model_name` label (vLLM, SGLang, NIM), else `model` or
/// `served_model_name` (added by relabeling), else the engine's name (TGI serves one model and
/// labels none).
pub fn served_model(labels: &HashMap<String, String>, engine: &str) -> String {
    ["model_name", "model", "served_model_name"]
        .iter()
        .find_map(|name| labels.get(*name).filter(|v| !v.is_empty()))
        .cloned()
        .unwrap_or_else(|| engine.to_string())
}

/// The pod a serving series belongs to, by the DCGM label rules; `None` for a series no pod
/// label names.
pub fn serving_pod(labels: &HashMap<String, String>) -> Option<(String, String)> {
    match series_key(labels)? {
        UsageKey::Pod { namespace, pod } => Some((namespace, pod)),
        UsageKey::Claim { .. } => None,
    }
}

/// Tokens per pod (namespace, name), hour start and model: (input, output).
type PodHours = BTreeMap<UnixSeconds, BTreeMap<String, (u64, u64)>>;

/// Tokens counted from the serving engines' counters over one window, per pod, hour and model.
#[derive(Clone, Debug, Default)]
pub struct TokenIndex {
    pods: FxHashMap<(String, String), PodHours>,
}

impl TokenCounts for TokenIndex {
    fn served(&self, namespace: &str, pod: &str, period: Interval) -> Vec<Served> {
        let hour = period.start.div_euclid(3600) * 3600;
        let key = (namespace.to_string(), pod.to_string());
        self.pods
            .get(&key)
            .and_then(|hours| hours.get(&hour))
            .map(|models| {
                models
                    .iter()
                    .map(|(model, &(input, output))| Served {
                        model: model.clone(),
                        input,
                        output,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TokenIndex {
    /// True when no counter matched a pod.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

/// One counter series of one pod and model, being read sample by sample.
pub struct Series<'a> {
    /// Every label of the series, `__name__` included: tells series apart across chunks.
    pub identity: String,
    /// The pod (namespace, name).
    pub pod: (&'a str, &'a str),
    /// The served model.
    pub model: &'a str,
    /// What the counter counts.
    pub direction: Direction,
}

/// Counts counter increases into an index. Each sample adds what its counter rose since the
/// series' previous sample, into the hour it was taken in; a sample below the previous one is a
/// restart, and adds its whole value (Prometheus' `increase()` without extrapolation). A series'
/// first sample is its baseline. Samples must come in time order, series by series; chunks of a
/// window in order.
#[derive(Default)]
pub struct TokenCollector {
    last: FxHashMap<String, f64>,
    index: TokenIndex,
}

impl TokenCollector {
    /// Reads `samples` (Unix seconds, value) of `series`: those in `counted` add to the index,
    /// earlier ones are baselines only.
    pub fn add(
        &mut self,
        series: &Series<'_>,
        samples: impl IntoIterator<Item = (f64, f64)>,
        counted: Interval,
    ) {
        let mut last = self.last.get(&series.identity).copied();
        for (at, value) in samples {
            if !value.is_finite() {
                continue;
            }
            let rise = match last {
                Some(before) if value >= before => value - before,
                Some(_) => value,
                None => 0.0,
            };
            last = Some(value);
            // Whole seconds: Prometheus keeps milliseconds, windows are whole seconds.
            let second = at.floor() as UnixSeconds;
            if !counted.contains(second) {
                continue;
            }
            let hour = second.div_euclid(3600) * 3600;
            let (ns, pod) = series.pod;
            let tokens = self
                .index
                .pods
                .entry((ns.to_string(), pod.to_string()))
                .or_default()
                .entry(hour)
                .or_default()
                .entry(series.model.to_string())
                .or_default();
            // Counters count whole tokens; the float only carries them. A sample that adds
            // nothing still says the pod served the model in that hour.
            let rise = rise.round() as u64;
            match series.direction {
                Direction::Input => tokens.0 = tokens.0.saturating_add(rise),
                Direction::Output => tokens.1 = tokens.1.saturating_add(rise),
            }
        }
        if let Some(value) = last {
            self.last.insert(series.identity.clone(), value);
        }
    }

    /// The index of everything counted.
    pub fn finish(self) -> TokenIndex {
        self.index
    }
}

#[cfg(test)]
mod tests;
