//! Exact pod times from kube-state-metrics: `kube_pod_start_time`, and
//! `kube_pod_completion_time` or `kube_pod_deletion_timestamp` (Unix seconds as the value).
//! Where a pod has them, its sampled running intervals take them for their first start and last
//! end, so its figures are exact to the second; where it does not, the sampled ends stay
//! (each off by less than a step) and the report says so.

use std::collections::HashMap;

use super::{PodKey, pod_key, present, sampled};
use crate::prometheus::{Prometheus, PrometheusError};
use crate::time::Interval;

/// When kube-state-metrics says a pod started and ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PodTimes {
    pub start: Option<i64>,
    /// The earlier of its completion and its deletion.
    pub end: Option<i64>,
}

/// The exact times of every pod that has them over `window`.
pub(super) async fn pod_times(
    prometheus: &Prometheus,
    window: Interval,
    step: i64,
) -> Result<HashMap<PodKey, PodTimes>, PrometheusError> {
    let mut times: HashMap<PodKey, PodTimes> = HashMap::new();
    for (metric, starts) in [
        ("kube_pod_start_time", true),
        ("kube_pod_completion_time", false),
        ("kube_pod_deletion_timestamp", false),
    ] {
        let query = format!("max by (namespace, pod, uid) ({})", present(metric, step));
        for series in sampled(prometheus, &query, window, step).await? {
            let Some(&(_, value)) = series.samples.last() else {
                continue;
            };
            if !value.is_finite() || value <= 0.0 {
                continue;
            }
            let at = value as i64;
            let pod = times.entry(pod_key(series.metric())).or_default();
            if starts {
                pod.start = Some(at);
            } else {
                pod.end = Some(pod.end.map_or(at, |end| end.min(at)));
            }
        }
    }
    Ok(times)
}

/// Moves the first start and the last end of `running` (runs sampled every `step`) to the
/// exact times, when they are the same events (within two steps). Returns whether every end of
/// the pod inside `window` is exact now.
pub(super) fn snap(
    running: &mut Vec<Interval>,
    times: PodTimes,
    step: i64,
    window: Interval,
) -> bool {
    let near = |sampled: i64, exact: i64| (sampled - exact).abs() <= 2 * step;
    let mut exact = true;
    if let Some(first) = running.first_mut().filter(|r| r.start > window.start) {
        match times.start {
            Some(start) if near(first.start, start) => first.start = start.max(window.start),
            _ => exact = false,
        }
    }
    if let Some(last) = running.last_mut().filter(|r| r.end < window.end) {
        match times.end {
            Some(end) if near(last.end, end) => last.end = end.min(window.end),
            _ => exact = false,
        }
    }
    running.retain(|run| run.start < run.end);
    exact
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_ends_take_the_exact_times_of_the_same_events() {
        let window = Interval::new(0, 86_400);
        // Started at 3,600 + 17 s, finished at 7,200 + 42 s; sampled every 300 s the run is
        // [3,600, 7,500).
        let mut running = vec![Interval::new(3_600, 7_500)];
        let times = PodTimes {
            start: Some(3_617),
            end: Some(7_242),
        };
        assert!(snap(&mut running, times, 300, window));
        assert_eq!(running, [Interval::new(3_617, 7_242)]);
        // Without the series the sampled ends stay, and they are not exact.
        let mut running = vec![Interval::new(3_600, 7_500)];
        assert!(!snap(&mut running, PodTimes::default(), 300, window));
        assert_eq!(running, [Interval::new(3_600, 7_500)]);
        // Running through the window: nothing inside it to make exact.
        let mut running = vec![Interval::new(0, 86_400)];
        assert!(snap(&mut running, PodTimes::default(), 300, window));
        // An end far from the sampled one is another event (a restart's): left as sampled.
        let mut running = vec![Interval::new(3_600, 7_500)];
        let times = PodTimes {
            start: Some(3_617),
            end: Some(20_000),
        };
        assert!(!snap(&mut running, times, 300, window));
        assert_eq!(running, [Interval::new(3_617, 7_500)]);
    }
}
