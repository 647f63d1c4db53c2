//! The GPUs a cloud instance type has, for nodes nothing else names a GPU of: an EKS managed node
//! group or a self-managed one on EC2 (`p5.48xlarge`), an AKS node pool
//! (`Standard_ND96isr_H100_v5`), with only a device plugin running — no GPU Feature Discovery,
//! no AMD labeller, no DRA driver, no provisioner label. Kubernetes labels every node with its
//! instance type; the GPU model follows from it, and for the sizes listed here the number of GPUs
//! too (what tells a device plugin sharing each GPU from a node of that many GPUs).

use crate::pricing::with_memory;

/// Where Kubernetes puts a node's instance type (`beta.` before 1.17).
pub(crate) const INSTANCE_TYPE_LABELS: [&str; 2] = [
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
];

/// What an instance type says of its GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InstanceGpus {
    /// The product, as a rate card's match strings read it.
    pub product: &'static str,
    /// One GPU's memory, in MiB.
    pub memory_mib: u64,
    /// How many GPUs the instance has, where its size is known.
    pub count: Option<u32>,
}

/// An EC2 GPU instance family: its name, product, GiB of one GPU, whether its sizes `xlarge` to
/// `16xlarge` hold one GPU each (the G families), and its other sizes' GPUs.
type Family = (
    &'static str,
    &'static str,
    u64,
    bool,
    &'static [(&'static str, u32)],
);

/// Sizes of one GPU in the G families.
const ONE_GPU: [&str; 5] = ["xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge"];

/// The G families' larger sizes (G5, G6, G6e).
const G_LARGE: &[(&str, u32)] = &[("12xlarge", 4), ("24xlarge", 4), ("48xlarge", 8)];

/// EC2's GPU instance families. Families whose instances hold a fraction of a GPU (G6f, Gr6f)
/// are left out: their devices are not GPUs.
const EC2: &[Family] = &[
    (
        "p3",
        "V100",
        16,
        false,
        &[("2xlarge", 1), ("8xlarge", 4), ("16xlarge", 8)],
    ),
    ("p3dn", "V100", 32, false, &[("24xlarge", 8)]),
    ("p4d", "A100-SXM4", 40, false, &[("24xlarge", 8)]),
    ("p4de", "A100-SXM4", 80, false, &[("24xlarge", 8)]),
    ("p5", "H100", 80, false, &[("4xlarge", 1), ("48xlarge", 8)]),
    ("p5e", "H200", 141, false, &[("48xlarge", 8)]),
    ("p5en", "H200", 141, false, &[("48xlarge", 8)]),
    ("p6-b200", "B200", 180, false, &[("48xlarge", 8)]),
    ("g4dn", "T4", 16, true, &[("12xlarge", 4), ("metal", 8)]),
    ("g5", "A10G", 24, true, G_LARGE),
    ("g6", "L4", 24, true, G_LARGE),
    ("g6e", "L40S", 48, true, G_LARGE),
    ("gr6", "L4", 24, false, &[("4xlarge", 1), ("8xlarge", 1)]),
];

/// Azure GPU VM sizes by the GPU their name carries (`Standard_NC24ads_A100_v4`): (the name's
/// word, product, GiB of one GPU). The A10 sizes (NVadsA10 v5) are left out: most hold a
/// fraction of a GPU.
const AZURE: &[(&str, &str, u64)] = &[
    ("A100", "A100", 80),
    ("H100", "H100", 80),
    ("H200", "H200", 141),
    ("T4", "T4", 16),
    ("MI300X", "MI300X", 192),
];

/// The GPU product of instance type `name` with its memory (`H100 80GB`), where it is a GPU
/// instance Tollgate knows.
pub(crate) fn instance_product(name: &str) -> Option<String> {
    let gpus = instance_gpus(name)?;
    Some(with_memory(gpus.product, Some(gpus.memory_mib)))
}

/// The GPUs of instance type `name`, where it is a GPU instance Tollgate knows.
pub(crate) fn instance_gpus(name: &str) -> Option<InstanceGpus> {
    let name = name.trim();
    match name.strip_prefix("Standard_") {
        Some(size) => azure(size),
        None => ec2(name),
    }
}

fn ec2(name: &str) -> Option<InstanceGpus> {
    let (name, size) = name.split_once('.')?;
    let &(_, product, gib, one_up_to_16xlarge, sizes) = EC2.iter().find(|f| f.0 == name)?;
    let one = one_up_to_16xlarge && ONE_GPU.contains(&size);
    let listed = sizes.iter().find(|(s, _)| *s == size);
    Some(InstanceGpus {
        product,
        memory_mib: gib * 1024,
        count: listed.map(|&(_, n)| n).or(one.then_some(1)),
    })
}

/// How many GPUs Azure's GPU sizes have (the ND sizes eight).
const AZURE_COUNTS: &[(&str, u32)] = &[
    ("NC24ads_A100_v4", 1),
    ("NC48ads_A100_v4", 2),
    ("NC96ads_A100_v4", 4),
    ("NC40ads_H100_v5", 1),
    ("NC80adis_H100_v5", 2),
    ("NC4as_T4_v3", 1),
    ("NC8as_T4_v3", 1),
    ("NC16as_T4_v3", 1),
    ("NC64as_T4_v3", 4),
];

fn azure(size: &str) -> Option<InstanceGpus> {
    let count = match AZURE_COUNTS.iter().find(|(s, _)| *s == size) {
        Some(&(_, n)) => Some(n),
        None => size.starts_with("ND96").then_some(8),
    };
    // The A100 40 GB size does not name its GPU.
    if size == "ND96asr_v4" {
        return Some(InstanceGpus {
            product: "A100",
            memory_mib: 40 * 1024,
            count,
        });
    }
    let &(_, product, gib) = size
        .split('_')
        .find_map(|word| AZURE.iter().find(|(w, ..)| *w == word))?;
    // The NC H100 v5 sizes hold H100 NVL cards (94 GB); the ND ones, SXM (80 GB).
    let (product, gib) = match (product, size.starts_with("NC")) {
        ("H100", true) => ("H100 NVL", 94),
        _ => (product, gib),
    };
    Some(InstanceGpus {
        product,
        memory_mib: gib * 1024,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::RateCard;

    #[test]
    fn an_instance_type_names_its_gpu_and_on_ec2_how_many() {
        let card = RateCard::builtin();
        // (instance type, the built-in card's model, GPUs)
        let cases: [(&str, Option<&str>, Option<u32>); 23] = [
            ("p5.48xlarge", Some("H100-80GB"), Some(8)),
            ("p5.4xlarge", Some("H100-80GB"), Some(1)),
            ("p4d.24xlarge", Some("A100-40GB"), Some(8)),
            ("p4de.24xlarge", Some("A100-80GB"), Some(8)),
            ("p5en.48xlarge", Some("H200-141GB"), Some(8)),
            ("p6-b200.48xlarge", Some("B200-180GB"), Some(8)),
            ("g6.12xlarge", Some("L4-24GB"), Some(4)),
            ("g6e.xlarge", Some("L40S-48GB"), Some(1)),
            ("g5.48xlarge", Some("A10G-24GB"), Some(8)),
            ("g4dn.metal", Some("T4-16GB"), Some(8)),
            ("g4dn.12xlarge", Some("T4-16GB"), Some(4)),
            ("g5.2xlarge", Some("A10G-24GB"), Some(1)),
            // A size not listed: the GPU, not how many.
            ("g6.96xlarge", Some("L4-24GB"), None),
            ("Standard_ND96isr_H100_v5", Some("H100-80GB"), Some(8)),
            ("Standard_NC40ads_H100_v5", Some("H100-80GB"), Some(1)),
            ("Standard_NC80adis_H100_v5", Some("H100-80GB"), Some(2)),
            ("Standard_NC24ads_A100_v4", Some("A100-80GB"), Some(1)),
            ("Standard_NC96ads_A100_v4", Some("A100-80GB"), Some(4)),
            ("Standard_ND96asr_v4", Some("A100-40GB"), Some(8)),
            ("Standard_ND96amsr_A100_v4", Some("A100-80GB"), Some(8)),
            ("Standard_NC64as_T4_v3", Some("T4-16GB"), Some(4)),
            ("Standard_ND96isr_MI300X_v5", Some("MI300X-192GB"), Some(8)),
            // An Azure size not listed: the GPU, not how many.
            ("Standard_NC12ads_A100_v9", Some("A100-80GB"), None),
        ];
        for (name, model, count) in cases {
            let gpus = instance_gpus(name).unwrap_or_else(|| panic!("{name}"));
            let product = instance_product(name).unwrap();
            let priced = card.model_for(&product).map(|_| card.model_label(&product));
            assert_eq!(
                (priced.as_deref(), gpus.count),
                (model, count),
                "{name}: {product}"
            );
        }
        // Not GPU instances Tollgate knows: CPU ones, fractions of a GPU, made-up names.
        for name in [
            "m5.large",
            "g6f.large",
            "Standard_NV36ads_A10_v5",
            "Standard_D8s_v3",
            "l4-ts-x4",
            "",
        ] {
            assert_eq!(instance_gpus(name), None, "{name}");
        }
    }
}
