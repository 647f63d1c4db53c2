//! When a pod held its GPUs (SPEC §1.4).
//!
//! From `status.startTime` (else the `PodScheduled` condition's transition) to: the latest
//! container `finishedAt` for a pod that succeeded or failed; the moment it was seen deleted; or
//! "as of" for a pod still running. A pod never scheduled to a node holds nothing.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::time::{Interval, UnixSeconds};

/// The interval a pod held its devices, clipped to end at `as_of`; `None` when it held nothing
/// (never scheduled, or starting after `as_of`). `seen_deleted` is when a watcher saw the pod
/// deleted, if it did.
pub fn pod_interval(
    pod: &Pod,
    as_of: UnixSeconds,
    seen_deleted: Option<UnixSeconds>,
) -> Option<Interval> {
    let spec = pod.spec.as_ref()?;
    if spec.node_name.as_deref().is_none_or(str::is_empty) {
        return None;
    }
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.iter().flatten();
    let start = status
        .start_time
        .as_ref()
        .map(|t| t.0.as_second())
        .or_else(|| {
            conditions
                .clone()
                .find(|c| c.type_ == "PodScheduled" && c.status == "True")
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0.as_second())
        })?;
    let finished = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    let mut end = if finished {
        let statuses: Vec<&ContainerStatus> = status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .collect();
        statuses
            .iter()
            .filter_map(|s| s.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
            .map(|t| t.0.as_second())
            .max()
            // A finished pod without a container finish time (evicted, node lost): its last
            // condition change is the best time known.
            .or_else(|| {
                conditions
                    .filter_map(|c| c.last_transition_time.as_ref())
                    .map(|t| t.0.as_second())
                    .max()
            })
            .unwrap_or(start)
    } else {
        as_of
    };
    if let Some(deleted) = seen_deleted {
        end = end.min(deleted);
    }
    let interval = Interval::new(start, end.min(as_of));
    (!interval.is_empty()).then_some(interval)
}
