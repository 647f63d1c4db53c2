//! Devices DCGM shows under several series at once: pods sharing one DRA claim, or claims
//! sharing one device (KEP-5075's consumable capacity). History has no claim objects to say what
//! each holds, so a device is split equally among the series present on it at each sampled step;
//! the device is never charged more than once, whoever held it.

use std::collections::{BTreeMap, HashMap};

use crate::time::UnixSeconds;

/// A device: the pool (or node) DCGM names it in, and its DRA device name.
pub(super) type DeviceKey<'a> = (&'a str, &'a str);

/// How many series DCGM shows on each device at each sampled step.
#[derive(Default)]
pub(super) struct Sharers<'a>(HashMap<DeviceKey<'a>, HashMap<UnixSeconds, i64>>);

impl<'a> Sharers<'a> {
    /// Counts a series on `device` present at `times`. A series naming no device shares with
    /// none.
    pub(super) fn add(&mut self, device: DeviceKey<'a>, times: &[UnixSeconds]) {
        if device.1.is_empty() {
            return;
        }
        let steps = self.0.entry(device).or_default();
        for &t in times {
            *steps.entry(t).or_default() += 1;
        }
    }

    /// `times` (of a series on `device`, in order) by how many series were on the device at
    /// each: the steps it held a whole device, a half, a third.
    pub(super) fn split(
        &self,
        device: DeviceKey<'_>,
        times: Vec<UnixSeconds>,
    ) -> BTreeMap<i64, Vec<UnixSeconds>> {
        let Some(steps) = self.0.get(&device) else {
            return BTreeMap::from([(1, times)]);
        };
        let mut by_sharers: BTreeMap<i64, Vec<UnixSeconds>> = BTreeMap::new();
        for t in times {
            let sharers = steps.get(&t).copied().unwrap_or(1).max(1);
            by_sharers.entry(sharers).or_default().push(t);
        }
        by_sharers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_s_steps_are_split_among_the_series_on_it_then() {
        // Two claims on gpu-0 of node-a: one at 300…1500, the other at 900…1200; gpu-1 alone.
        let first: Vec<i64> = (1..=5).map(|n| n * 300).collect();
        let second = vec![900, 1200];
        let mut sharers = Sharers::default();
        sharers.add(("node-a", "gpu-0"), &first);
        sharers.add(("node-a", "gpu-0"), &second);
        sharers.add(("node-a", "gpu-1"), &first);
        sharers.add(("node-a", ""), &first);
        assert_eq!(
            sharers.split(("node-a", "gpu-0"), first.clone()),
            BTreeMap::from([(1, vec![300, 600, 1500]), (2, vec![900, 1200])])
        );
        assert_eq!(
            sharers.split(("node-a", "gpu-0"), second.clone()),
            BTreeMap::from([(2, second)])
        );
        for device in [("node-a", "gpu-1"), ("node-a", ""), ("node-b", "gpu-0")] {
            assert_eq!(
                sharers.split(device, first.clone()),
                BTreeMap::from([(1, first.clone())])
            );
        }
    }
}
