//! Turning a GPU product name into a rate-card model.
//!
//! Product names come in many spellings (`NVIDIA-H100-80GB-HBM3` from GPU Feature Discovery,
//! `NVIDIA H100 80GB HBM3` from DCGM and DRA). Both sides are normalized to lowercase words, and a
//! match string matches when its words appear as a contiguous run of whole words of the name, so
//! `l4` matches `nvidia l4` but never `nvidia l40s`.

/// Lowercases and turns every run of non-alphanumeric characters into one space.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// One normalized match string, pointing at the model it selects.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    pub(crate) words: Vec<String>,
    pub(crate) model: usize,
}

/// The matchers that match `product` with the most words, in the order the rate card wrote
/// them. More than one model among them means the card's rules alone do not decide.
pub(crate) fn best_matches<'m>(matchers: &'m [Matcher], product: &str) -> Vec<&'m Matcher> {
    let name = normalize(product);
    let words: Vec<&str> = name.split(' ').filter(|w| !w.is_empty()).collect();
    let mut best: Vec<&Matcher> = Vec::new();
    for matcher in matchers {
        let n = matcher.words.len();
        if n == 0 || n > words.len() {
            continue;
        }
        let found = words
            .windows(n)
            .any(|run| run.iter().zip(&matcher.words).all(|(a, b)| *a == b));
        if !found {
            continue;
        }
        match best.first().map(|b| b.words.len()) {
            Some(most) if n < most => {}
            Some(most) if n == most => best.push(matcher),
            _ => best = vec![matcher],
        }
    }
    best
}

/// The GPU memory a product name states, in GB: its last `<n>gb` word before any `mig` word
/// (`NVIDIA-A100-SXM-80GB` → 80; `A100-SXM4-40GB-MIG-1g.5gb` → 40, the slice's 5 GB is not the
/// GPU's; `NVIDIA-GH200-480GB 96GB` → 96, the memory [`with_memory`] appended).
pub fn stated_memory_gb(product: &str) -> Option<u32> {
    normalize(product)
        .split(' ')
        .take_while(|w| *w != "mig")
        .filter_map(|w| w.strip_suffix("gb")?.parse::<u32>().ok())
        .last()
}

/// The memory (GB) of the GPU a product name names: NVIDIA's where its table of MIG GPUs knows
/// the name ([`super::named_gpu_memory_gb`]: GFD's `NVIDIA-GH200-480GB` is a 96 GB GPU), else
/// the memory the name states.
pub fn gpu_memory_gb(product: &str) -> Option<u32> {
    super::named_gpu_memory_gb(product).or_else(|| stated_memory_gb(product))
}

/// The product name with the memory of the whole GPU Tollgate knows from elsewhere (GFD's
/// `nvidia.com/gpu.memory`, a DRA device's `memory` capacity, AMD's `amd.com/gpu.vram`) appended
/// as `<n>GB`: `NVIDIA-A100-SXM4` with 81,920 MiB → `NVIDIA-A100-SXM4 80GB`. A name that states
/// its GPU's memory (within an eighth: 81,559 MiB is the 80 GB of `NVIDIA-H100-80GB-HBM3`,
/// 22,945 MiB the 24 GB of `Tesla-M40-24GB`) is left alone; one that states other memory gets
/// the GPU's after it: GFD names the 96 GB GH200 `NVIDIA-GH200-480GB` (or `-120GB`), its
/// superchip's memory, so with 97,871 MiB it is `NVIDIA-GH200-480GB 96GB`. Unknown sizes leave
/// the name as it is.
pub fn with_memory(product: &str, memory_mib: Option<u64>) -> String {
    let Some(mib) = memory_mib.filter(|mib| *mib >= 512 && !product.is_empty()) else {
        return product.to_string();
    };
    let gb = (mib + 512) / 1024;
    match stated_memory_gb(product) {
        Some(stated) if u64::from(stated).abs_diff(gb) * 8 <= u64::from(stated) => {
            product.to_string()
        }
        _ => format!("{product} {gb}GB"),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn matchers(specs: &[(&str, usize)]) -> Vec<Matcher> {
        specs
            .iter()
            .map(|(text, model)| Matcher {
                words: normalize(text).split(' ').map(str::to_string).collect(),
                model: *model,
            })
            .collect()
    }

    #[test]
    fn normalizes_like_the_spec() {
        assert_eq!(normalize("NVIDIA-H100-80GB-HBM3"), "nvidia h100 80gb hbm3");
        assert_eq!(normalize("  Tesla  T4 "), "tesla t4");
        assert_eq!(
            normalize("A100-SXM4-40GB-MIG-1g.5gb"),
            "a100 sxm4 40gb mig 1g 5gb"
        );
    }

    fn models(m: &[Matcher], product: &str) -> Vec<usize> {
        best_matches(m, product).iter().map(|m| m.model).collect()
    }

    #[test]
    fn whole_words_only_and_most_words_win() {
        let m = matchers(&[("l4", 0), ("l40s", 1), ("h100", 2), ("h100 nvl", 3)]);
        assert_eq!(models(&m, "NVIDIA-L4"), [0]);
        assert_eq!(models(&m, "NVIDIA-L40S"), [1]);
        assert_eq!(models(&m, "NVIDIA L40"), [] as [usize; 0]);
        assert_eq!(models(&m, "NVIDIA H100 NVL"), [3]);
        assert_eq!(models(&m, "NVIDIA-H100-80GB-HBM3"), [2]);
        assert_eq!(models(&m, "NVIDIA-GH100"), [] as [usize; 0]);
    }

    #[test]
    fn ties_keep_every_model_in_card_order() {
        let m = matchers(&[("a100 80gb", 0), ("a100", 0), ("a100 40gb", 1), ("a100", 1)]);
        assert_eq!(models(&m, "NVIDIA-A100-SXM-80GB"), [0, 1]);
        assert_eq!(models(&m, "NVIDIA A100 80GB PCIe"), [0]);
    }

    #[test]
    fn memory_is_read_from_the_name_or_added_to_it() {
        assert_eq!(stated_memory_gb("NVIDIA-A100-SXM-80GB"), Some(80));
        assert_eq!(stated_memory_gb("A100-SXM4-40GB-MIG-1g.5gb"), Some(40));
        assert_eq!(stated_memory_gb("A100-SXM4-MIG-1g.5gb"), None);
        assert_eq!(stated_memory_gb("NVIDIA H200"), None);
        assert_eq!(
            with_memory("NVIDIA-A100-SXM4", Some(81920)),
            "NVIDIA-A100-SXM4 80GB"
        );
        assert_eq!(
            with_memory("NVIDIA-H100-80GB-HBM3", Some(81559)),
            "NVIDIA-H100-80GB-HBM3"
        );
        assert_eq!(with_memory("NVIDIA-L4", Some(23034)), "NVIDIA-L4 22GB");
        assert_eq!(with_memory("NVIDIA-L4", None), "NVIDIA-L4");
        assert_eq!(with_memory("", Some(81920)), "");
    }

    #[test]
    fn a_name_stating_memory_the_gpu_does_not_have_gets_the_gpu_s() {
        // GFD's names: the 96 GB GH200 by its superchip's 480 GB or 120 GB (97,871 MiB reported:
        // 95.6 GiB, 96 GB rounded); a 16 GB V100 reporting 16,160 MiB (15.8 GiB) and a 24 GB M40
        // reporting 22,945 MiB (22 GB: 2 GB off, within an eighth of 24) state their own.
        assert_eq!(
            with_memory("NVIDIA-GH200-480GB", Some(97_871)),
            "NVIDIA-GH200-480GB 96GB"
        );
        assert_eq!(
            with_memory("NVIDIA-GH200-120GB", Some(97_871)),
            "NVIDIA-GH200-120GB 96GB"
        );
        assert_eq!(stated_memory_gb("NVIDIA-GH200-480GB 96GB"), Some(96));
        assert_eq!(stated_memory_gb("NVIDIA-GH200-480GB"), Some(480));
        assert_eq!(
            with_memory("Tesla-V100-SXM2-16GB", Some(16_160)),
            "Tesla-V100-SXM2-16GB"
        );
        assert_eq!(
            with_memory("Tesla-M40-24GB", Some(22_945)),
            "Tesla-M40-24GB"
        );
        // 69 GB is more than an eighth (10 GB) from 80, 70 GB is not.
        assert_eq!(
            with_memory("NVIDIA-A100-SXM4-80GB", Some(69 * 1024)),
            "NVIDIA-A100-SXM4-80GB 69GB"
        );
        assert_eq!(
            with_memory("NVIDIA-A100-SXM4-80GB", Some(70 * 1024)),
            "NVIDIA-A100-SXM4-80GB"
        );
    }
}
