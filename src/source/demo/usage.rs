//! How busy the demo fleet's GPUs are: a utilization per pod (or DRA claim) and hour, from the
//! workload each runs, the way DCGM would report it for a real fleet. Busy training and batch
//! jobs, inference that follows the day, embedders that idle, and notebooks left running with
//! nothing to do. Its inference servers count tokens the way vLLM would, in proportion to how
//! busy they are. Deterministic: the same pod and hour always give the same figures.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::time::{Interval, UnixSeconds};
use crate::tokens::{Served, TokenCounts};
use crate::usage::{UsageKey, Utilization, hours_of};

/// The demo fleet's simulated GPU utilization and token counts, served through the same
/// [`Utilization`] and [`TokenCounts`] the cost engine reads DCGM's and the serving engines'
/// through.
#[derive(Clone, Copy, Debug, Default)]
pub struct DemoUtilization;

/// How a workload keeps its GPUs busy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Profile {
    /// Near full all the time (training, batch evaluation).
    Busy,
    /// Steady mid load (embedding search, ranking).
    Steady,
    /// Follows the working day (UTC 08:00–20:00 busy, nights quiet).
    Daily,
    /// Mostly waiting (a service few call).
    Idle,
    /// Holds GPUs and does nothing (a notebook nobody closed).
    Abandoned,
}

/// FNV-1a over the bytes of `text`: a stable hash, carried on over an hour by [`with_hour`].
fn hash(text: &str) -> u64 {
    fold(0xcbf2_9ce4_8422_2325, text.bytes())
}

/// [`hash`] of a name carried on over the bytes of `hour`: the name's hash for that hour.
fn with_hour(name: u64, hour: i64) -> u64 {
    fold(name, hour.to_le_bytes())
}

fn fold(mut h: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    for byte in bytes {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn profile(namespace: &str, name: &str, hashed: u64) -> Profile {
    match namespace {
        "ml-training" | "batch-eval" => Profile::Busy,
        "inference-search" => Profile::Steady,
        "inference-chat" => Profile::Daily,
        "platform-tools" => Profile::Idle,
        // One notebook in three is left running idle; the others are used now and then.
        "research" if with_hour(hashed, 0).is_multiple_of(3) => Profile::Abandoned,
        "research" => Profile::Idle,
        "recsys" if name.starts_with("ranker") => Profile::Steady,
        "recsys" if name.starts_with("candidate-gen") => Profile::Daily,
        _ => Profile::Idle,
    }
}

/// How one pod (or DRA claim) keeps its GPUs busy, read from its key once for all its hours.
struct Load {
    profile: Profile,
    /// The hash of its name.
    name: u64,
}

impl Load {
    fn of(key: &UsageKey) -> Self {
        let (namespace, name) = match key {
            UsageKey::Pod { namespace, pod } => (namespace, pod),
            UsageKey::Claim { namespace, claim } => (namespace, claim),
        };
        let hashed = hash(name);
        Load {
            profile: profile(namespace, name, hashed),
            name: hashed,
        }
    }

    /// How busy its GPUs are in the hour starting at `hour`: a spread of 0–0.15 around its
    /// profile's level, different every hour.
    fn at(&self, hour: UnixSeconds) -> Decimal {
        let jitter = i64::try_from(with_hour(self.name, hour) % 16).unwrap_or(0);
        let hour_of_day = hour.rem_euclid(86_400) / 3_600;
        let percent = match self.profile {
            Profile::Busy => 82 + jitter,
            Profile::Steady => 55 + jitter,
            Profile::Daily if (8..20).contains(&hour_of_day) => 68 + jitter,
            Profile::Daily => 12 + jitter,
            Profile::Idle => 3 + jitter / 2,
            Profile::Abandoned => 0,
        };
        Decimal::new(percent.min(100), 2)
    }
}

impl Utilization for DemoUtilization {
    fn hourly(&self, key: &UsageKey, hour: UnixSeconds) -> Option<Decimal> {
        Some(Load::of(key).at(hour))
    }

    fn each_hour(
        &self,
        key: &UsageKey,
        during: Interval,
        each: &mut dyn FnMut(UnixSeconds, Decimal),
    ) {
        let load = Load::of(key);
        for hour in hours_of(during) {
            each(hour, load.at(hour));
        }
    }
}

/// A model an inference server of the demo serves.
struct Model {
    /// Its name, as vLLM's `model_name` label gives it.
    name: &'static str,
    /// Its share of the pod's traffic, in percent.
    share: u64,
    /// Prompt and generated tokens per second when the pod's GPUs are fully busy.
    per_second: (u64, u64),
}

/// The models each inference server of the demo serves, by its app (the start of its pod's
/// name). The Mistral servers carry a LoRA adapter beside the base model, the way vLLM names
/// each in `model_name`; the embedder reads and writes nothing back.
const SERVED: [(&str, &[Model]); 3] = [
    (
        "chat-llama-70b",
        &[Model {
            name: "meta-llama/Llama-3.1-70B-Instruct",
            share: 100,
            per_second: (2_400, 800),
        }],
    ),
    (
        "chat-mistral-7b",
        &[
            Model {
                name: "mistralai/Mistral-7B-Instruct-v0.3",
                share: 70,
                per_second: (6_000, 2_500),
            },
            Model {
                name: "support-agent-lora",
                share: 30,
                per_second: (6_000, 2_500),
            },
        ],
    ),
    (
        "search-embedder",
        &[Model {
            name: "BAAI/bge-m3",
            share: 100,
            per_second: (40_000, 0),
        }],
    ),
];

impl TokenCounts for DemoUtilization {
    fn served(&self, namespace: &str, pod: &str, period: Interval) -> Vec<Served> {
        let Some((_, models)) = SERVED.iter().find(|(app, _)| pod.starts_with(app)) else {
            return Vec::new();
        };
        let key = UsageKey::Pod {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
        };
        let hour = period.start.div_euclid(3600) * 3600;
        let busy = self.hourly(&key, hour).unwrap_or_default();
        let seconds = Decimal::from(period.seconds());
        let tokens = |per_second: u64, share: u64| {
            (Decimal::from(per_second * share) / Decimal::ONE_HUNDRED * busy * seconds)
                .floor()
                .to_u64()
                .unwrap_or(0)
        };
        models
            .iter()
            .map(|model| Served {
                model: model.name.to_string(),
                input: tokens(model.per_second.0, model.share),
                output: tokens(model.per_second.1, model.share),
            })
            .collect()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn ratio(namespace: &str, pod: &str, hour: i64) -> Decimal {
        let key = UsageKey::Pod {
            namespace: namespace.into(),
            pod: pod.into(),
        };
        DemoUtilization.hourly(&key, hour).unwrap()
    }

    #[test]
    fn each_workload_keeps_its_gpus_as_busy_as_it_should() {
        let noon = 1_764_590_400; // 2025-12-01T12:00:00Z
        let night = noon - 10 * 3_600;
        for hour in [night, noon] {
            let busy = ratio("ml-training", "finetune-llama-x1", hour);
            assert!(
                busy >= Decimal::new(82, 2) && busy <= Decimal::new(97, 2),
                "{busy}"
            );
            let idle = ratio("platform-tools", "ocr-service-x", hour);
            assert!(idle <= Decimal::new(10, 2), "{idle}");
        }
        assert!(ratio("inference-chat", "chat-a", noon) >= Decimal::new(68, 2));
        assert!(ratio("inference-chat", "chat-a", night) <= Decimal::new(27, 2));
        assert_eq!(
            ratio("inference-chat", "chat-a", noon),
            ratio("inference-chat", "chat-a", noon),
            "deterministic"
        );
        let abandoned = (0..30)
            .map(|i| format!("notebook-{i}"))
            .filter(|pod| ratio("research", pod, noon).is_zero())
            .count();
        assert!(
            (5..=15).contains(&abandoned),
            "{abandoned} of 30 notebooks abandoned"
        );
    }

    #[test]
    fn a_pod_s_hours_read_together_are_its_hours_read_one_by_one() {
        let noon = 1_764_590_400;
        // 11:45 to 14:00: the hours starting at 11:00, 12:00 and 13:00.
        let during = Interval::new(noon - 900, noon + 2 * 3_600);
        for (namespace, pod) in [
            ("inference-chat", "chat-a"),
            ("research", "notebook-1"),
            ("research", "notebook-2"),
            ("ml-training", "finetune-llama-x1"),
        ] {
            let mut seen = Vec::new();
            let key = UsageKey::Pod {
                namespace: namespace.into(),
                pod: pod.into(),
            };
            DemoUtilization.each_hour(&key, during, &mut |hour, busy| seen.push((hour, busy)));
            let expected: Vec<_> = [noon - 3_600, noon, noon + 3_600]
                .into_iter()
                .map(|hour| (hour, ratio(namespace, pod, hour)))
                .collect();
            assert_eq!(seen, expected, "{namespace}/{pod}");
        }
    }

    #[test]
    fn inference_servers_count_tokens_as_busy_as_they_are() {
        let noon = 1_764_590_400;
        let hour = Interval::new(noon, noon + 3600);
        let busy = ratio("inference-chat", "chat-mistral-7b-a-b", noon);
        let served = DemoUtilization.served("inference-chat", "chat-mistral-7b-a-b", hour);
        let models: Vec<&str> = served.iter().map(|s| s.model.as_str()).collect();
        assert_eq!(
            models,
            ["mistralai/Mistral-7B-Instruct-v0.3", "support-agent-lora"]
        );
        // 70 % of 2,500 generated tokens a second at the hour's utilization, for 3,600 s.
        let expected = (Decimal::from(1_750 * 3_600) * busy).floor();
        assert_eq!(Decimal::from(served[0].output), expected);
        assert!(
            DemoUtilization
                .served("ml-training", "finetune-llama-x", hour)
                .is_empty()
        );
        let embedder = DemoUtilization.served("inference-search", "search-embedder-x-y", hour);
        assert_eq!(embedder[0].output, 0);
        assert!(embedder[0].input > 0);
    }
}
