//! The Prometheus adapter: DCGM usage, the serving engines' token counters and (in `history`)
//! allocations rebuilt from kube-state-metrics, through any Prometheus-compatible API
//! (Prometheus, Thanos, Mimir, VictoriaMetrics).
//!
//! Every DCGM and history query aggregates on the server: one sample per allocation and hour
//! comes back, never the raw 1-minute series, and windows are queried in chunks of
//! `chunk_hours`. Token counters are read raw (exact increases need every sample), in chunks of
//! at most six hours; there is one series per serving pod, model and direction.

mod clusters;
mod history;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_http_query::response::{PromqlResult, RangeVector};
use prometheus_http_query::{Client, InstantQueryBuilder, RangeQueryBuilder};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;

pub use history::{HISTORY_LABELS, history_allocations};

use crate::time::{Interval, UnixSeconds};
use crate::tokens::{
    COUNTERS, Series, TokenCollector, TokenIndex, counter, served_model, serving_pod,
};
use crate::usage::{UsageCollector, UsageIndex, UsageKey, series_key};

/// `[prometheus]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSettings {
    /// Base URL (`http://prometheus:9090`, a Thanos querier, Mimir's `/prometheus`, …);
    /// `--prometheus` overrides it. Unset: no usage, no history.
    pub url: Option<String>,
    /// File holding a bearer token, re-read for every query (projected tokens rotate).
    pub bearer_token_file: Option<PathBuf>,
    /// PEM CA bundle for a server certificate signed by a private CA.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (self-signed test setups only).
    pub insecure_skip_verify: bool,
    /// Seconds a query may take (default 60).
    pub timeout_seconds: u64,
    /// Attempts after a failed query, with exponential backoff (default 3).
    pub retries: u32,
    /// Hours per range query (default 24): bounds each response to one sample per allocation per
    /// hour of one day.
    pub chunk_hours: u32,
    /// Seconds between samples when rebuilding history from kube-state-metrics (default 300):
    /// the resolution error of each history interval end.
    pub history_step_seconds: u32,
    /// `serve` rebuilds this many days before its ledger began from history (default 35).
    pub history_days: u32,
    /// Seconds after which `serve` reads again the days of that history Prometheus could not
    /// answer for (default 300), for as long as it runs.
    pub history_retry_seconds: u32,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        PrometheusSettings {
            url: None,
            bearer_token_file: None,
            ca_file: None,
            insecure_skip_verify: false,
            timeout_seconds: 60,
            retries: 3,
            chunk_hours: 24,
            history_step_seconds: 300,
            history_days: 35,
            history_retry_seconds: 300,
        }
    }
}

impl PrometheusSettings {
    /// How long `serve` waits before reading again history days Prometheus could not answer
    /// for (`history_retry_seconds`, at least a second).
    pub fn history_retry(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.history_retry_seconds.max(1).into())
    }
}

/// A failed read from Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The settings cannot make a client.
    #[error("prometheus: {0}")]
    Setup(String),
    /// A query failed after every retry.
    #[error("prometheus at {url}: {message}")]
    Query {
        /// The server.
        url: String,
        /// What failed.
        message: String,
    },
}

/// A client, counting the queries it sends.
pub struct Prometheus {
    client: Client,
    url: String,
    settings: PrometheusSettings,
    queries: AtomicU64,
    /// How the last query ended: [`NOT_ASKED`], [`DOWN`] or [`UP`].
    last: AtomicU8,
}

const NOT_ASKED: u8 = 0;
const DOWN: u8 = 1;
const UP: u8 = 2;

/// Labels DCGM usage is grouped by: every spelling of pod and namespace, and DRA claims.
const USAGE_LABELS: &str = "exported_pod, exported_namespace, pod, namespace, pod_name, pod_namespace, dra_claim_name, dra_claim_namespace";

/// Mean utilization per allocation over `[t − 3599 s, t]`: `DCGM_FI_PROF_GR_ENGINE_ACTIVE`, or
/// for series without it `DCGM_FI_DEV_GPU_UTIL` ÷ 100 (`or` falls back per series).
fn usage_query() -> String {
    format!(
        "avg by ({USAGE_LABELS}) (avg_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE[3599s]) or (avg_over_time(DCGM_FI_DEV_GPU_UTIL[3599s]) / 100))"
    )
}

impl Prometheus {
    /// A client for `url` with `settings` (TLS, token, timeouts).
    pub fn new(url: &str, settings: &PrometheusSettings) -> Result<Self, PrometheusError> {
        // The one crypto provider compiled in (`main` installs it too; a library user may not
        // have): without it the HTTPS client cannot be built.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_seconds.max(1)))
            .danger_accept_invalid_certs(settings.insecure_skip_verify);
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| PrometheusError::Setup(format!("ca_file {}: {e}", ca.display())))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| PrometheusError::Setup(format!("ca_file {}: {e}", ca.display())))?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder
            .build()
            .map_err(|e| PrometheusError::Setup(e.to_string()))?;
        let url = url.trim_end_matches('/').to_string();
        let client = Client::from(http, &url)
            .map_err(|e| PrometheusError::Setup(format!("{url:?} is not a usable URL: {e}")))?;
        Ok(Prometheus {
            client,
            url,
            settings: settings.clone(),
            queries: AtomicU64::new(0),
            last: AtomicU8::new(NOT_ASKED),
        })
    }

    /// Queries sent so far (every attempt counts).
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Whether the last query (after its retries) worked; `None` before the first.
    pub fn up(&self) -> Option<bool> {
        match self.last.load(Ordering::Relaxed) {
            NOT_ASKED => None,
            last => Some(last == UP),
        }
    }

    /// A failed query: remembered for [`Prometheus::up`].
    fn fail(&self, message: String) -> PrometheusError {
        self.last.store(DOWN, Ordering::Relaxed);
        PrometheusError::Query {
            url: self.url.clone(),
            message,
        }
    }

    /// One range query, retried with exponential backoff.
    async fn range(
        &self,
        query: &str,
        start: UnixSeconds,
        end: UnixSeconds,
        step: i64,
    ) -> Result<Vec<RangeVector>, PrometheusError> {
        let timeout = self.settings.timeout_seconds as i64 * 1000;
        self.ask(|auth| {
            let request = self.client.query_range(query, start, end, step as f64);
            request.timeout(timeout).bearer(auth).get()
        })
        .await
    }

    /// The raw samples of `selector` over `[start, end)` (milliseconds of a second included),
    /// one instant query of a range selector, retried like [`Prometheus::range`].
    async fn samples(
        &self,
        selector: &str,
        start: UnixSeconds,
        end: UnixSeconds,
    ) -> Result<Vec<RangeVector>, PrometheusError> {
        // Evaluated a millisecond before `end` over exactly the window's length: every sample
        // of `[start, end)`, and (Prometheus 2 closes ranges on the left) one a millisecond
        // before `start`, which the caller leaves out.
        let query = format!("{selector}[{}ms]", (end - start) * 1000);
        let at = format!("{}.999", end - 1);
        let timeout = self.settings.timeout_seconds as i64 * 1000;
        self.ask(|auth| {
            let request = self.client.query(&query).query("time", &at);
            request.timeout(timeout).bearer(auth).get()
        })
        .await
    }

    /// Sends a query built by `send` (given the bearer token's header, if one is configured)
    /// until it answers, with exponential backoff between attempts; the answer's series.
    async fn ask<F>(
        &self,
        send: impl Fn(Option<HeaderValue>) -> F,
    ) -> Result<Vec<RangeVector>, PrometheusError>
    where
        F: Future<Output = Result<PromqlResult, prometheus_http_query::Error>>,
    {
        let mut attempt = 0;
        loop {
            self.queries.fetch_add(1, Ordering::Relaxed);
            let auth = match &self.settings.bearer_token_file {
                Some(file) => {
                    let token = std::fs::read_to_string(file).map_err(|e| {
                        self.fail(format!("bearer_token_file {}: {e}", file.display()))
                    })?;
                    Some(
                        format!("Bearer {}", token.trim())
                            .parse::<HeaderValue>()
                            .map_err(|e| self.fail(format!("bearer token: {e}")))?,
                    )
                }
                None => None,
            };
            match send(auth).await {
                Ok(result) => {
                    self.last.store(UP, Ordering::Relaxed);
                    return Ok(result.data().as_matrix().cloned().unwrap_or_default());
                }
                Err(e) if attempt < self.settings.retries => {
                    tracing::warn!(error = %e, attempt, "prometheus query failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.fail(e.to_string())),
            }
        }
    }

    /// Hourly DCGM utilization per allocation over the whole hours of `window`, one range query
    /// per chunk of `chunk_hours`.
    pub async fn dcgm_usage(&self, window: Interval) -> Result<UsageIndex, PrometheusError> {
        let mut collector = UsageCollector::default();
        let query = usage_query();
        for (first, last) in hour_chunks(window, self.settings.chunk_hours) {
            for series in self.range(&query, first + 3599, last + 3599, 3600).await? {
                let Some(key) = series_key(series.metric()) else {
                    continue;
                };
                for sample in series.samples() {
                    let hour = sample.timestamp() as i64 - 3599;
                    collector.add(key.clone(), hour, sample.value());
                }
            }
        }
        Ok(collector.finish())
    }
}

/// A query about to be sent, which takes the bearer token's `Authorization` header.
trait Bearer: Sized {
    /// The query with an `Authorization` header.
    fn authorization(self, value: HeaderValue) -> Self;

    /// The query with the bearer token's header, if there is one.
    fn bearer(self, auth: Option<HeaderValue>) -> Self {
        match auth {
            Some(value) => self.authorization(value),
            None => self,
        }
    }
}

impl Bearer for InstantQueryBuilder {
    fn authorization(self, value: HeaderValue) -> Self {
        self.header(AUTHORIZATION, value)
    }
}

impl Bearer for RangeQueryBuilder {
    fn authorization(self, value: HeaderValue) -> Self {
        self.header(AUTHORIZATION, value)
    }
}

/// How far before a window token counters are read: the sample a series' first increase in
/// the window is measured from.
const TOKEN_BASELINE_SECONDS: i64 = 3600;

/// The most hours of raw token samples one query reads: six hours of 15-second samples of
/// 1,000 serving series is 1.4 million samples, a response of tens of megabytes.
const TOKEN_CHUNK_HOURS: u32 = 6;

impl Prometheus {
    /// Tokens each pod served per model and hour in `window`, from the serving engines'
    /// counters ([`crate::tokens::COUNTERS`]): their raw samples, a chunk of `chunk_hours` (at
    /// most six) at a time, so that increases are exact whole tokens. There are few such series
    /// (one per serving pod, model and direction), unlike DCGM's.
    pub async fn token_counts(&self, window: Interval) -> Result<TokenIndex, PrometheusError> {
        let names: Vec<&str> = COUNTERS.iter().map(|(name, _, _)| *name).collect();
        let selector = format!("{{__name__=~\"{}\"}}", names.join("|"));
        let mut collector = TokenCollector::default();
        let hours = self.settings.chunk_hours.clamp(1, TOKEN_CHUNK_HOURS);
        let chunk = i64::from(hours) * 3600;
        let mut start = window.start - TOKEN_BASELINE_SECONDS;
        while start < window.end {
            let end = (start + chunk).min(window.end);
            for series in self.samples(&selector, start, end).await? {
                let labels = series.metric();
                let Some((engine, direction)) = labels.get("__name__").and_then(|n| counter(n))
                else {
                    continue;
                };
                let Some((namespace, pod)) = serving_pod(labels) else {
                    continue;
                };
                let model = served_model(labels, engine);
                let mut identity: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                identity.sort_unstable();
                let series_of = Series {
                    identity: identity.join(","),
                    pod: (&namespace, &pod),
                    model: &model,
                    direction,
                };
                let samples = series
                    .samples()
                    .iter()
                    .map(|s| (s.timestamp(), s.value()))
                    .filter(|(at, _)| *at >= start as f64);
                collector.add(&series_of, samples, window);
            }
            start = end;
        }
        Ok(collector.finish())
    }

    /// The latest utilization (mean of the last five minutes) per allocation, for
    /// `tollgate_gpu_utilization_ratio`.
    pub async fn current_utilization(&self) -> Result<Vec<(UsageKey, f64)>, PrometheusError> {
        let query = format!(
            "avg by ({USAGE_LABELS}) (avg_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE[5m]) or (avg_over_time(DCGM_FI_DEV_GPU_UTIL[5m]) / 100))"
        );
        let now = jiff::Timestamp::now().as_second();
        let series = self.range(&query, now, now, 60).await?;
        Ok(series
            .iter()
            .filter_map(|s| Some((series_key(s.metric())?, s.samples().last()?.value())))
            .collect())
    }
}

/// The hour starts touched by `window`, in chunks of at most `chunk_hours`: (first, last).
fn hour_chunks(window: Interval, chunk_hours: u32) -> Vec<(UnixSeconds, UnixSeconds)> {
    let first = window.start.div_euclid(3600) * 3600;
    let last = (window.end - 1).div_euclid(3600) * 3600;
    let per_chunk = i64::from(chunk_hours.max(1)) * 3600;
    let mut chunks = Vec::new();
    let mut start = first;
    while start <= last {
        let end = (start + per_chunk - 3600).min(last);
        chunks.push((start, end));
        start = end + 3600;
    }
    chunks
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn windows_are_cut_into_whole_hour_chunks() {
        let window = Interval::new(1800, 3 * 86_400 + 10);
        let chunks = hour_chunks(window, 24);
        assert_eq!(chunks.first(), Some(&(0, 23 * 3600)));
        assert_eq!(chunks.last(), Some(&(3 * 86_400, 3 * 86_400)));
        assert_eq!(chunks.len(), 4);
        assert!(usage_query().contains("or (avg_over_time(DCGM_FI_DEV_GPU_UTIL[3599s]) / 100)"));
    }
}
