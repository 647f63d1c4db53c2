//! When a pod held its GPUs (SPEC §1.4).
//!
//! From `status.startTime` (else the `PodScheduled` condition's transition) to: the latest
//! container `finishedAt` for a pod that succeeded or failed; the moment it was seen deleted; or
//! "as of" for a pod still running. A pod never scheduled to a node holds nothing.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::time::{Interval, UnixSeconds};

/// Why a pod holds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHeld {
    /// It is not scheduled to a node, has not started, or starts after "as of": nothing to say.
    Yet,
    /// It runs or has succeeded by its phase, but says nothing of when it started: a pod read
    /// from the API server always does, so the object was made or edited by hand.
    NoStart,
    /// It has succeeded, but says nothing of when, or a time before it started.
    NoTime,
}

/// The interval a pod held its devices, clipped to end at `as_of`; why it held nothing
/// otherwise. `seen_deleted` is when a watcher saw the pod deleted, if it did.
pub fn pod_interval(
    pod: &Pod,
    as_of: UnixSeconds,
    seen_deleted: Option<UnixSeconds>,
) -> Result<Interval, NotHeld> {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.node_name.as_deref())
        .is_some_and(|node| !node.is_empty());
    let status = pod
        .status
        .as_ref()
        .filter(|_| scheduled)
        .ok_or(NotHeld::Yet)?;
    let conditions = status.conditions.iter().flatten();
    let finished = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
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
        })
        .ok_or(
            if matches!(status.phase.as_deref(), Some("Running" | "Succeeded")) {
                NotHeld::NoStart
            } else {
                // A pod the kubelet refused (`Failed`, e.g. `OutOfnvidia.com/gpu`) never started.
                NotHeld::Yet
            },
        )?;
    let mut end = if finished {
        let statuses: Vec<&ContainerStatus> = status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .collect();
        let ended = statuses
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
            });
        match ended {
            // Over within the second it began: it held nothing measurable.
            Some(ended) if ended >= start => ended,
            // Only a pod whose containers all ran to completion must say when they did.
            _ if start >= as_of || status.phase.as_deref() != Some("Succeeded") => {
                return Err(NotHeld::Yet);
            }
            _ => return Err(NotHeld::NoTime),
        }
    } else {
        as_of
    };
    if let Some(deleted) = seen_deleted {
        end = end.min(deleted);
    }
    let interval = Interval::new(start, end.min(as_of));
    if interval.is_empty() {
        Err(NotHeld::Yet)
    } else {
        Ok(interval)
    }
}
