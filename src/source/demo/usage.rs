//! How busy the demo fleet's GPUs are: a utilization per pod (or DRA claim) and hour, from the
//! workload each runs, the way DCGM would report it for a real fleet. Busy training and batch
//! jobs, inference that follows the day, embedders that idle, and notebooks left running with
//! nothing to do. Deterministic: the same pod and hour always give the same ratio.

use rust_decimal::Decimal;

use crate::time::UnixSeconds;
use crate::usage::{UsageKey, Utilization};

/// The demo fleet's simulated GPU utilization, served through the same [`Utilization`] the
/// cost engine reads DCGM's through.
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

/// FNV-1a: a stable hash of the name and, with `hour`, of that hour too.
fn hash(text: &str, hour: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes().chain(hour.to_le_bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn profile(namespace: &str, name: &str) -> Profile {
    match namespace {
        "ml-training" | "batch-eval" => Profile::Busy,
        "inference-search" => Profile::Steady,
        "inference-chat" => Profile::Daily,
        "platform-tools" => Profile::Idle,
        // One notebook in three is left running idle; the others are used now and then.
        "research" if hash(name, 0).is_multiple_of(3) => Profile::Abandoned,
        "research" => Profile::Idle,
        "recsys" if name.starts_with("ranker") => Profile::Steady,
        "recsys" if name.starts_with("candidate-gen") => Profile::Daily,
        _ => Profile::Idle,
    }
}

impl Utilization for DemoUtilization {
    fn hourly(&self, key: &UsageKey, hour: UnixSeconds) -> Option<Decimal> {
        let (namespace, name) = match key {
            UsageKey::Pod { namespace, pod } => (namespace, pod),
            UsageKey::Claim { namespace, claim } => (namespace, claim),
        };
        // A spread of 0–0.15 around each profile's level, different every hour.
        let jitter = i64::try_from(hash(name, hour) % 16).unwrap_or(0);
        let hour_of_day = hour.rem_euclid(86_400) / 3_600;
        let percent = match profile(namespace, name) {
            Profile::Busy => 82 + jitter,
            Profile::Steady => 55 + jitter,
            Profile::Daily if (8..20).contains(&hour_of_day) => 68 + jitter,
            Profile::Daily => 12 + jitter,
            Profile::Idle => 3 + jitter / 2,
            Profile::Abandoned => 0,
        };
        Some(Decimal::new(percent.min(100), 2))
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
}
