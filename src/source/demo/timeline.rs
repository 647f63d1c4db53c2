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
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    pub(super) fn uid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
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

pub(super) fn pod_name(tenant: &Tenant, rng: &mut Rng) -> String {
    match tenant.workload {
        Workload::Inference => format!("{}-{}-{}", tenant.app, rng.token(9), rng.token(5)),
        Workload::Batch | Workload::Training => {
            format!("{}-{}-{}", tenant.app, rng.token(6), rng.token(5))
        }
    }
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
