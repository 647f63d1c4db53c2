//! The demo fleet's timeline: on each share of each node, one run of pods after another,
//! drawn from a seeded generator so that the same fleet always has the same past.

use super::fleet::{Ask, DemoNode, Slot, Tenant, Workload};
use crate::time::UnixSeconds;

pub(super) const HOUR: i64 = 3600;
pub(super) const DAY: i64 = 24 * HOUR;

/// How long the simulated history runs before "as of".
pub const DEMO_DAYS: i64 = 35;

/// A deterministic generator (SplitMix64).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)` (seconds, counts).
    pub(super) fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low).max(1) as u64) as i64
    }

    pub(super) fn token(&mut self, len: usize) -> String {
        let mut token = String::with_capacity(len);
        self.push_token(&mut token, len);
        token
    }

    /// Pushes `len` letters and digits, as a generated Kubernetes name suffix has.
    fn push_token(&mut self, out: &mut String, len: usize) {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        for _ in 0..len {
            out.push(char::from(
                ALPHABET[(self.next() % ALPHABET.len() as u64) as usize],
            ));
        }
    }

    /// A version 4 UUID, as the API server gives an object.
    pub(super) fn uid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        let mut uid = String::with_capacity(36);
        push_hex(&mut uid, a >> 32, 8);
        uid.push('-');
        push_hex(&mut uid, (a >> 16) & 0xffff, 4);
        uid.push_str("-4");
        push_hex(&mut uid, a & 0xfff, 3);
        uid.push_str("-8");
        push_hex(&mut uid, (b >> 48) & 0xfff, 3);
        uid.push('-');
        push_hex(&mut uid, b & 0xffff_ffff_ffff, 12);
        uid
    }
}

/// Pushes the last `digits` hexadecimal digits of `value`, in lower case.
fn push_hex(out: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for at in (0..digits).rev() {
        out.push(char::from(HEX[((value >> (4 * at)) & 0xf) as usize]));
    }
}

pub(super) fn seed(name: &str, slot: u64, salt: u64) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) ^ slot.wrapping_mul(0x9E37_79B9)
        ^ salt.rotate_left(48)
}

/// How long a pod runs and how long its slot then stays empty. Inference replicas scale down
/// at night (longer gaps from 22:00 to 06:00 UTC).
fn durations(workload: Workload, at: UnixSeconds, rng: &mut Rng) -> (i64, i64) {
    let night = !(6..22).contains(&(at.rem_euclid(DAY) / HOUR));
    match workload {
        Workload::Inference => {
            let run = rng.between(2 * HOUR, 14 * HOUR);
            let gap = if night {
                rng.between(HOUR, 5 * HOUR)
            } else {
                rng.between(60, HOUR)
            };
            (run, gap)
        }
        Workload::Batch => (
            rng.between(20 * 60, 6 * HOUR),
            rng.between(5 * 60, 3 * HOUR),
        ),
        Workload::Training => (
            rng.between(12 * HOUR, 60 * HOUR),
            rng.between(HOUR, 12 * HOUR),
        ),
    }
}

/// `<app>-<template hash>-<suffix>` for a Deployment's pod, a shorter first part for a Job's.
pub(super) fn pod_name(tenant: &Tenant, rng: &mut Rng) -> String {
    let first = match tenant.workload {
        Workload::Inference => 9,
        Workload::Batch | Workload::Training => 6,
    };
    let mut name = String::with_capacity(tenant.app.len() + first + 7);
    name.push_str(tenant.app);
    name.push('-');
    rng.push_token(&mut name, first);
    name.push('-');
    rng.push_token(&mut name, 5);
    name
}

/// Pods whose namespace names no cost center sometimes carry their own.
fn pod_cost_center(tenant: &Tenant, rng: &mut Rng) -> Option<(&'static str, &'static str)> {
    match tenant.namespace {
        "batch-eval" if rng.next().is_multiple_of(2) => Some(("label", "cc-300")),
        "platform-tools" => Some(("annotation", "cc-500")),
        "inference-chat" if rng.next().is_multiple_of(10) => Some(("annotation", "cc-110")),
        _ => None,
    }
}

/// One pod of a run.
pub(super) struct Member {
    pub(super) name: String,
    pub(super) uid: String,
    /// The pod's own cost-center tag (`label` or `annotation`, value), if any.
    pub(super) cost_center: Option<(&'static str, &'static str)>,
}

/// The claim of a run's pods.
pub(super) struct RunClaim {
    pub(super) name: String,
    pub(super) uid: String,
}

/// Pods that run side by side on one share of a node over `[start, end)` (two for a shared
/// claim, else one).
pub(super) struct Run {
    pub(super) start: UnixSeconds,
    pub(super) end: UnixSeconds,
    pub(super) members: Vec<Member>,
    pub(super) claim: Option<RunClaim>,
}

/// The runs of one share of one node, one after another from the start of the history.
pub(super) struct SlotRuns {
    rng: Rng,
    next_start: UnixSeconds,
    serial: u32,
}

impl SlotRuns {
    /// The runs of slot `index` of `node`, from `history_start` on.
    pub(super) fn new(node: &DemoNode, index: usize, history_start: UnixSeconds) -> Self {
        let mut rng = Rng::new(seed(&node.name, index as u64, 1));
        let next_start = history_start + rng.between(0, 3 * HOUR);
        SlotRuns {
            rng,
            next_start,
            serial: 0,
        }
    }

    /// When the next run starts.
    pub(super) fn next_start(&self) -> UnixSeconds {
        self.next_start
    }

    /// The next run of `slot` on `node`.
    pub(super) fn next_run(&mut self, node: &DemoNode, slot: &Slot) -> Run {
        let rng = &mut self.rng;
        let start = self.next_start;
        let (run, gap) = durations(slot.tenant.workload, start, rng);
        let replicas = if matches!(slot.ask, Ask::SharedClaim { .. }) {
            2
        } else {
            1
        };
        let mut names = Vec::with_capacity(replicas);
        for _ in 0..replicas {
            let name = pod_name(&slot.tenant, rng);
            let uid = rng.uid();
            names.push((name, uid));
        }
        let claim_name = match &slot.ask {
            Ask::Resource { .. } => None,
            Ask::TemplateClaim { .. } => Some(format!("{}-gpu-{}", names[0].0, rng.token(5))),
            Ask::SharedClaim { .. } => Some(format!("kv-cache-{}-{}", node.name, self.serial)),
            Ask::ExtendedClaim { .. } => Some(format!(
                "{}-extended-resources-{}",
                names[0].0,
                rng.token(5)
            )),
        };
        let claim = claim_name.map(|name| RunClaim {
            name,
            uid: rng.uid(),
        });
        let members = names
            .into_iter()
            .map(|(name, uid)| Member {
                name,
                uid,
                cost_center: pod_cost_center(&slot.tenant, rng),
            })
            .collect();
        self.serial += 1;
        self.next_start = start + run + gap;
        Run {
            start,
            end: start + run,
            members,
            claim,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_are_the_value_s_last_ones_padded_with_zeros() {
        let hex = |value, digits| {
            let mut out = String::new();
            push_hex(&mut out, value, digits);
            out
        };
        assert_eq!(hex(0xabc, 3), "abc");
        assert_eq!(hex(0x1f, 4), "001f");
        assert_eq!(hex(0x12345, 4), "2345");
        assert_eq!(hex(0, 12), "000000000000");
        assert_eq!(hex(u64::MAX, 8), "ffffffff");
    }

    #[test]
    fn a_uid_is_a_version_4_uuid_of_two_draws() {
        for seed in [0, 1, 42, u64::MAX] {
            let (mut rng, mut draws) = (Rng::new(seed), Rng::new(seed));
            let (a, b) = (draws.next(), draws.next());
            let expected = format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                (b >> 48) & 0xfff,
                b & 0xffff_ffff_ffff
            );
            assert_eq!(rng.uid(), expected);
        }
    }
}
