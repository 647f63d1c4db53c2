//! What a device a pod asks for says of the GPU it would be, before any node is chosen: whose
//! GPU it is (an `amd.com/` resource or AMD's DRA driver: an AMD Instinct; NVIDIA's resources
//! and drivers: not one), and, for a MIG device, which GPUs are cut into its profile (a
//! `1g.10gb` is an eighth of 80 GB: an A100 or H100 of 80 GB, never an H200 or a B200). The
//! quota check prices a pod that names no model as the costliest of the card's models its
//! devices can be (SPEC §5: the most expensive model it could land on).
//!
//! Every rule errs toward "it can be": a model left in only raises the price the gate takes.

use std::sync::LazyLock;

use rust_decimal::Decimal;

use super::{MigSizing, ModelId, PriceTier, RateCard, default_mig_slices, normalize};
use crate::time::UnixSeconds;
use crate::units::GpuUnits;

/// The maker of the GPU a device resource or DRA driver names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Maker {
    /// `nvidia.com/…` resources, NVIDIA's DRA drivers.
    Nvidia,
    /// `amd.com/…` resources, AMD's DRA driver.
    Amd,
}

/// What one device a pod asks for says of its GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceHint<'a> {
    /// Whose GPU it is.
    pub maker: Maker,
    /// The MIG profile of a MIG device (`1g.10gb`, `1g.10gb+me`).
    pub mig_profile: Option<&'a str>,
}

/// NVIDIA GPUs without MIG, as words of their names (`l40s`, `rtx 6000 ada`): a model the card
/// names so, and sizes no MIG profile of, is cut into none.
const WITHOUT_MIG: [&str; 22] = [
    "t4",
    "v100",
    "p100",
    "p40",
    "p4",
    "a2",
    "a10",
    "a10g",
    "a16",
    "a40",
    "l4",
    "l40",
    "l40s",
    "l20",
    "l2",
    "rtx 6000 ada",
    "rtx 5000 ada",
    "rtx 4000 ada",
    "rtx a6000",
    "rtx a5000",
    "rtx a4000",
    "rtx 6000",
];

/// NVIDIA GPUs with MIG, as GPU Feature Discovery names them, with their memory (GB) and compute
/// slices, as NVIDIA's MIG user guide gives their profiles. A model of the card that one of
/// them selects is cut into the profiles they are; a model none selects, into any its slices
/// allow (unless it is known to have no MIG). The memory is what MIG cuts, as the profiles'
/// names state it: a B200's 180 GB, a B300's 269 GB (`1g.34gb`, `7g.269gb`).
const MIG_GPUS: [(&str, u32, u32); 24] = [
    ("NVIDIA-A30", 24, 4),
    ("NVIDIA-A100-PCIE-40GB", 40, 7),
    ("NVIDIA-A100-SXM4-40GB", 40, 7),
    ("NVIDIA-A100-80GB-PCIe", 80, 7),
    ("NVIDIA-A100-SXM4-80GB", 80, 7),
    ("NVIDIA-A800-SXM4-80GB", 80, 7),
    ("NVIDIA-H100-PCIe", 80, 7),
    ("NVIDIA-H100-80GB-HBM3", 80, 7),
    ("NVIDIA-H100-NVL", 94, 7),
    ("NVIDIA-H800", 80, 7),
    ("NVIDIA-H200", 141, 7),
    ("NVIDIA-H200-NVL", 141, 7),
    ("NVIDIA-B200", 180, 7),
    ("NVIDIA-GB200", 186, 7),
    ("NVIDIA-B300-SXM6-AC", 269, 7),
    ("NVIDIA-GH200-480GB", 96, 7),
    ("NVIDIA-GH200-120GB", 96, 7),
    ("NVIDIA-GH200-144G-HBM3e", 144, 7),
    ("NVIDIA-H20", 96, 7),
    ("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", 96, 4),
    ("NVIDIA-RTX-PRO-6000-Blackwell-Workstation-Edition", 96, 4),
    (
        "NVIDIA-RTX-PRO-6000-Blackwell-Max-Q-Workstation-Edition",
        96,
        4,
    ),
    ("NVIDIA-RTX-PRO-5000-Blackwell", 48, 2),
    ("NVIDIA-RTX-PRO-4500-Blackwell", 32, 2),
];

/// The memory (GB) of the GPU a product name names, where it is one of [`MIG_GPUS`] however it
/// is spelled (GFD's `NVIDIA-GH200-480GB`, NVML's `NVIDIA GH200 480GB`, older GFDs' without
/// `NVIDIA`, with a MIG single profile or `-SHARED` after it): the memory MIG cuts, which is
/// the GPU's own where the name states its superchip's. A name with a memory appended
/// ([`super::with_memory`]) is not one of them.
pub fn named_gpu_memory_gb(product: &str) -> Option<u32> {
    let words = gpu_words(product);
    MIG_GPU_NAMES
        .iter()
        .find(|(name, _)| *name == words)
        .map(|&(_, memory)| memory)
}

/// [`MIG_GPUS`]' names as [`gpu_words`] gives them, with their memory: worked out once.
static MIG_GPU_NAMES: LazyLock<Vec<(String, u32)>> = LazyLock::new(|| {
    MIG_GPUS
        .iter()
        .map(|&(gpu, memory, _)| (gpu_words(gpu), memory))
        .collect()
});

/// The words of a product name that name its GPU: normalized, before any `mig` word, without a
/// leading `nvidia` or a trailing `shared`.
fn gpu_words(product: &str) -> String {
    let name = normalize(product);
    let words: Vec<&str> = name
        .split(' ')
        .take_while(|w| *w != "mig")
        .skip_while(|w| *w == "nvidia")
        .collect();
    match words.split_last() {
        Some((&"shared", rest)) => rest.join(" "),
        _ => words.join(" "),
    }
}

/// NVIDIA cuts a MIG GPU's memory into eighths: a profile has 1, 2, 4 or 8 of them.
const MEMORY_EIGHTHS: [u32; 4] = [1, 2, 4, 8];

/// What a model of the card is, for telling which devices it can be: worked out once, when the
/// card is read.
#[derive(Clone, Debug, Default)]
pub(super) struct ModelKind {
    /// Its name or a match string names an AMD GPU.
    amd: bool,
    /// It is a GPU known to have no MIG, and the card gives it no MIG slices.
    without_mig: bool,
    /// The GPUs of [`MIG_GPUS`] it selects: each one's memory (GB) and compute slices.
    mig_gpus: Vec<(u32, u32)>,
    /// Its name selects it (a pod priced as it is priced by its name).
    self_named: bool,
    /// How it is cut into MIG slices.
    sizing: MigSizing,
}

impl RateCard {
    /// [`ModelKind`] of each model, in the card's order.
    pub(super) fn model_kinds(&self) -> Vec<ModelKind> {
        (0..self.models.len() as u32)
            .map(ModelId)
            .map(|model| {
                let gpu = self.model(model);
                let named = self.model_words(model);
                let stated_mig = gpu.mig_slices.is_some() || !gpu.mig.is_empty();
                let without_mig = WITHOUT_MIG.iter().any(|family| {
                    named
                        .iter()
                        .any(|words| words.contains(&format!(" {family} ")))
                });
                ModelKind {
                    amd: named.iter().any(|words| is_amd(words)),
                    without_mig: without_mig && !stated_mig,
                    mig_gpus: MIG_GPUS
                        .iter()
                        .filter(|(product, memory, _)| {
                            self.mig_gpu_model(product, *memory) == Some(model)
                        })
                        .map(|&(_, memory, slices)| (memory, slices))
                        .collect(),
                    self_named: self.model_for(&gpu.name) == Some(model),
                    sizing: MigSizing {
                        model: Some(model),
                        slices: gpu
                            .mig_slices
                            .unwrap_or_else(|| default_mig_slices(&gpu.name)),
                    },
                }
            })
            .collect()
    }

    /// The price of `model` in `tier` at `at`, where its name selects it (as a pod priced as
    /// the model is priced): `None` outside its periods, or where its name selects another.
    pub fn price_by_name_at(
        &self,
        model: ModelId,
        tier: PriceTier,
        at: UnixSeconds,
    ) -> Option<Decimal> {
        if !self.kinds[model.0 as usize].self_named {
            return None;
        }
        Some(self.model(model).period_at(at)?.price(tier))
    }

    /// The card model a GPU of [`MIG_GPUS`] is: the one its name selects, and where the card's
    /// rules tie, the one whose memory is nearest the `memory` MIG cuts (GFD names a GH200 by
    /// its superchip's 480 GB, and names an H100 NVL's 94 GB not at all).
    fn mig_gpu_model(&self, product: &str, memory: u32) -> Option<ModelId> {
        Some(self.explain_by_memory(product, || Some(memory))?.model)
    }

    /// The part of a GPU of `model` one MIG device of `profile` is ([`RateCard::mig_fraction`]
    /// of its name).
    pub fn model_mig_fraction(&self, model: ModelId, profile: &str) -> Option<GpuUnits> {
        self.kinds[model.0 as usize].sizing.fraction(self, profile)
    }

    /// Whether a GPU of `model` can be the device `hint` describes.
    pub fn may_be(&self, model: ModelId, hint: &DeviceHint<'_>) -> bool {
        let kind = &self.kinds[model.0 as usize];
        match hint.maker {
            Maker::Amd => kind.amd,
            Maker::Nvidia if kind.amd => false,
            Maker::Nvidia => hint
                .mig_profile
                .is_none_or(|profile| self.cut_into(model, kind, profile)),
        }
    }

    /// The model's name and match strings, normalized and padded with spaces (` h100 80gb `),
    /// so that a name is found as whole words.
    fn model_words(&self, model: ModelId) -> Vec<String> {
        let name = &self.model(model).name;
        std::iter::once(normalize(name))
            .chain(
                self.matchers
                    .iter()
                    .filter(|m| m.model == model.0 as usize)
                    .map(|m| m.words.join(" ")),
            )
            .map(|words| format!(" {words} "))
            .collect()
    }

    /// Whether `model` (of `kind`) is cut into MIG devices of `profile`: the card says what
    /// part of it the profile is; else the profile is within its slices, and it is one of
    /// [`MIG_GPUS`] with that profile (where the profile's memory is read), or none of them and
    /// no GPU known to lack MIG.
    fn cut_into(&self, model: ModelId, kind: &ModelKind, profile: &str) -> bool {
        let gpu = self.model(model);
        if gpu.mig.contains_key(profile) {
            return true;
        }
        if kind.sizing.fraction(self, profile).is_none() {
            return false;
        }
        if kind.mig_gpus.is_empty() {
            return !kind.without_mig;
        }
        match mig_profile(profile) {
            Some((g, Some(memory))) => kind
                .mig_gpus
                .iter()
                .any(|&(total, slices)| shaped(total, slices, g, memory)),
            _ => true,
        }
    }
}

/// Whether a GPU of `total` GB and `slices` compute slices has a profile of `g` slices and
/// `memory` GB: the memory is 1, 2, 4 or 8 eighths of the GPU's (within 5 %: NVIDIA rounds the
/// names, 94 GB's eighth is `12gb`), in step with the compute (between half and twice its
/// share: an A100 40 GB has a `3g.20gb`, no `3g.40gb`).
fn shaped(total: u32, slices: u32, g: u32, memory: u32) -> bool {
    MEMORY_EIGHTHS.iter().any(|&eighths| {
        let exact = u64::from(total * eighths);
        let named = u64::from(memory) * 8;
        let share = eighths * slices;
        named.abs_diff(exact) * 20 <= exact && 4 * g <= share && share <= 16 * g
    })
}

/// Whether normalized words (padded with spaces) name an AMD GPU: an Instinct (`mi300x`,
/// `mi250x`: `mi` and a digit), or `amd`, `instinct`, `radeon`.
fn is_amd(words: &str) -> bool {
    words.split(' ').any(|word| {
        matches!(word, "amd" | "instinct" | "radeon")
            || word
                .strip_prefix("mi")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// A MIG profile's compute slices and, where it names it, memory in GB: `1g.10gb` → (1, 10)
/// (`+me` and other suffixes left out); `None` for a text that is no MIG profile.
pub fn mig_profile(profile: &str) -> Option<(u32, Option<u32>)> {
    let profile = profile.split('+').next()?;
    let (g, memory) = match profile.split_once('.') {
        Some((g, memory)) => (g, memory.strip_suffix("gb")?.parse().ok()),
        None => (profile, None),
    };
    Some((g.strip_suffix('g')?.parse().ok()?, memory))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the card's models that can be a device of `maker` (cut into `mig_profile`).
    fn offering(card: &RateCard, maker: Maker, mig_profile: Option<&str>) -> Vec<String> {
        let hint = DeviceHint { maker, mig_profile };
        (0..card.models().len() as u32)
            .map(ModelId)
            .filter(|id| card.may_be(*id, &hint))
            .map(|id| card.model(id).name.clone())
            .collect()
    }

    #[test]
    fn mig_profiles_are_offered_by_the_gpus_cut_into_them() {
        let card = RateCard::builtin();
        let offering = |profile| offering(&card, Maker::Nvidia, Some(profile));
        // NVIDIA's MIG user guide: the profiles of an A100 40 GB (1g.5gb, 1g.10gb, 2g.10gb,
        // 3g.20gb, 4g.20gb, 7g.40gb), of an A100 and H100 80 GB (1g.10gb, 1g.20gb, 2g.20gb,
        // 3g.40gb, 4g.40gb, 7g.80gb), an H200 141 GB (1g.18gb, 1g.35gb, 2g.35gb, 3g.71gb,
        // 4g.71gb, 7g.141gb), a B200 180 GB (1g.23gb, 1g.45gb, 2g.45gb, 3g.90gb, 4g.90gb,
        // 7g.180gb) and an A30 24 GB (1g.6gb, 2g.12gb, 4g.24gb). The L4, L40S, A10G, T4 and
        // RTX 6000 Ada have no MIG; the MI300X and its kin are AMD's.
        let h100_a100 = ["H100-80GB", "A100-80GB", "A100-40GB"];
        assert_eq!(offering("1g.10gb"), h100_a100);
        assert_eq!(offering("1g.10gb+me"), h100_a100);
        assert_eq!(offering("3g.40gb"), ["H100-80GB", "A100-80GB"]);
        assert_eq!(offering("7g.80gb"), ["H100-80GB", "A100-80GB"]);
        assert_eq!(offering("1g.5gb"), ["A100-40GB"]);
        assert_eq!(offering("3g.20gb"), ["H100-80GB", "A100-80GB", "A100-40GB"]);
        assert_eq!(offering("1g.18gb"), ["H200-141GB"]);
        assert_eq!(offering("3g.71gb"), ["H200-141GB"]);
        // The H100 NVL (94 GB) a card prices as H100-80GB has a `1g.24gb` (23.5 GB).
        assert_eq!(offering("1g.23gb"), ["H100-80GB", "B200-180GB"]);
        assert_eq!(offering("1g.12gb"), ["H100-80GB", "A30-24GB"]);
        assert_eq!(offering("7g.180gb"), ["B200-180GB"]);
        assert_eq!(offering("1g.6gb"), ["A30-24GB"]);
        assert_eq!(offering("4g.24gb"), ["A30-24GB"]);
        // Seven slices of an A30 is more than its four.
        assert!(offering("7g.24gb").is_empty());
        // A profile whose memory is not read: every NVIDIA GPU with MIG may be cut into it.
        assert_eq!(
            offering("1g"),
            [
                "H100-80GB",
                "H200-141GB",
                "B200-180GB",
                "A100-80GB",
                "A100-40GB",
                "A30-24GB"
            ]
        );
    }

    #[test]
    fn a_mig_gpu_s_memory_is_known_by_its_name_however_spelled() {
        for name in [
            "NVIDIA-GH200-480GB",
            "NVIDIA GH200 480GB",
            "NVIDIA-GH200-120GB",
            "NVIDIA-GH200-480GB-MIG-1g.12gb",
            "NVIDIA-GH200-480GB-SHARED",
        ] {
            assert_eq!(named_gpu_memory_gb(name), Some(96), "{name}");
        }
        assert_eq!(named_gpu_memory_gb("A100-SXM4-40GB-MIG-1g.5gb"), Some(40));
        assert_eq!(named_gpu_memory_gb("NVIDIA H200"), Some(141));
        assert_eq!(named_gpu_memory_gb("NVIDIA-GH200-144G-HBM3e"), Some(144));
        // Not a name of the table: another GPU, or a memory appended to one.
        assert_eq!(named_gpu_memory_gb("NVIDIA-GH200"), None);
        assert_eq!(named_gpu_memory_gb("NVIDIA-GH200-480GB 96GB"), None);
        assert_eq!(named_gpu_memory_gb("NVIDIA-L4"), None);
    }

    #[test]
    fn the_newer_mig_gpus_are_cut_into_their_own_profiles() {
        let card = RateCard::parse(
            r#"
currency = "USD"
[[gpu]]
model = "B300"
match = ["b300"]
on_demand = "12.00"
[[gpu]]
model = "GB200"
match = ["gb200"]
on_demand = "10.00"
[[gpu]]
model = "GH200"
match = ["gh200"]
on_demand = "5.00"
[[gpu]]
model = "H20"
match = ["h20"]
on_demand = "1.50"
"#,
            "newer.toml",
        )
        .expect("a valid card");
        let offering = |profile| offering(&card, Maker::Nvidia, Some(profile));
        // A B300 (profiles 1g.34gb, 1g.67gb, 2g.67gb, 3g.135gb, 4g.135gb, 7g.269gb), a GB200
        // (186 GB: an eighth is 23.25 GB), the H100 of a GH200 (96 GB: 1g.12gb … 7g.96gb) and
        // its 144 GB kin (1g.18gb … 7g.144gb), an H20 (96 GB). Before they were known, every
        // one of them was cut into any profile of up to 7 slices.
        assert_eq!(offering("1g.34gb"), ["B300"]);
        assert_eq!(offering("3g.135gb"), ["B300"]);
        assert_eq!(offering("7g.269gb"), ["B300"]);
        // 23 GB is within 5 % of a 96 GB GPU's quarter too: erring toward "it can be".
        assert_eq!(offering("1g.23gb"), ["GB200", "GH200", "H20"]);
        assert_eq!(offering("7g.186gb"), ["GB200"]);
        assert_eq!(offering("1g.12gb"), ["GH200", "H20"]);
        assert_eq!(offering("1g.18gb"), ["GH200"]);
        assert_eq!(offering("7g.144gb"), ["GH200"]);
        assert_eq!(offering("4g.48gb"), ["GH200", "H20"]);
        assert!(offering("1g.10gb").is_empty());
    }

    #[test]
    fn a_mig_gpu_is_the_card_model_nearest_its_memory_where_the_card_s_rules_tie() {
        // Two GH200s the card tells apart by memory alone. GFD names the 96 GB one by its
        // superchip's 480 GB, the 144 GB one by no memory: by the name alone the first would
        // be the 144 GB model and the second the model written first, each cut as the other.
        let card = RateCard::parse(
            r#"
currency = "USD"
[[gpu]]
model = "GH200-96GB"
memory_gb = 96
match = ["gh200"]
on_demand = "4.00"
[[gpu]]
model = "GH200-144GB"
memory_gb = 144
match = ["gh200"]
on_demand = "6.00"
"#,
            "gh200.toml",
        )
        .expect("a valid card");
        let offering = |profile| offering(&card, Maker::Nvidia, Some(profile));
        assert_eq!(offering("1g.12gb"), ["GH200-96GB"]);
        assert_eq!(offering("7g.96gb"), ["GH200-96GB"]);
        assert_eq!(offering("1g.18gb"), ["GH200-144GB"]);
        assert_eq!(offering("3g.72gb"), ["GH200-144GB"]);
    }

    #[test]
    fn a_maker_s_devices_are_its_gpus() {
        let card = RateCard::builtin();
        let of = |maker| offering(&card, maker, None);
        assert_eq!(
            of(Maker::Amd),
            ["MI300X-192GB", "MI325X-256GB", "MI250X-128GB"]
        );
        let nvidia = of(Maker::Nvidia);
        assert_eq!(nvidia.len(), card.models().len() - 3);
        assert!(nvidia.iter().all(|m| !m.starts_with("MI")));
        // Words, not letters: `mig` is no Instinct, `amd` and `instinct` are.
        assert!(!is_amd(" nvidia a100 mig 1g 10gb "));
        assert!(is_amd(" amd instinct "));
        assert!(is_amd(" mi210 "));
        assert!(!is_amd(" mi "));
    }
}
