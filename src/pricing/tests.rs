use rust_decimal_macros::dec;

use super::*;
use crate::time::parse_time;

fn card(text: &str) -> RateCard {
    RateCard::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    RateCard::parse(text, "pricing/bad.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn builtin_card_is_valid_and_covers_the_inference_gpus() {
    let card = RateCard::builtin();
    assert_eq!(card.currency().code(), "USD");
    for product in [
        "NVIDIA-H100-80GB-HBM3",
        "NVIDIA H200",
        "NVIDIA-B200",
        "NVIDIA-A100-SXM4-80GB",
        "NVIDIA-A100-SXM4-40GB",
        "NVIDIA-A10G",
        "NVIDIA-L4",
        "NVIDIA-L40S",
        "Tesla-T4",
        "NVIDIA-RTX-6000-Ada-Generation",
        "AMD-Instinct-MI300X",
    ] {
        assert!(card.model_for(product).is_some(), "{product} has no price");
    }
    let l4 = card.model_for("NVIDIA-L4").unwrap();
    let l40s = card.model_for("NVIDIA-L40S").unwrap();
    assert_eq!(card.model(l4).name, "L4-24GB");
    assert_eq!(card.model(l40s).name, "L40S-48GB");
    let a100_80 = card.model_for("NVIDIA-A100-SXM4-80GB").unwrap();
    assert_eq!(card.model(a100_80).name, "A100-80GB");
}

#[test]
fn tiers_fall_back_to_on_demand_and_timelines_split() {
    let card = card(
        r#"
currency = "EUR"
rounding = "half-up"
[[gpu]]
model = "H100-80GB"
match = ["h100"]
on_demand = "7.00"
spot = "3.00"
until = "2026-11-15T00:00:00Z"
[[gpu]]
model = "H100-80GB"
match = ["h100"]
on_demand = "6.00"
from = "2026-11-15T00:00:00Z"
"#,
    );
    assert_eq!(card.rounding(), Rounding::HalfUp);
    let h100 = card.model_for("NVIDIA-H100-80GB-HBM3").unwrap();
    let spot = card.schedule(h100, PriceTier::Spot);
    let change = parse_time("2026-11-15").unwrap();
    let prices: Vec<_> = spot.segments().iter().map(|s| s.price).collect();
    // The second period has no spot price: it falls back to its own on-demand price.
    assert_eq!(prices, vec![Some(dec!(3.00)), Some(dec!(6.00))]);
    assert_eq!(spot.segments()[1].during.start, change);
    let reserved = card.schedule(h100, PriceTier::Reserved);
    assert_eq!(reserved.segments()[0].price, Some(dec!(7.00)));
}

#[test]
fn mig_fractions_default_per_model_and_can_be_overridden() {
    let card = card(
        r#"
currency = "USD"
[[gpu]]
model = "A100-40GB"
match = ["a100"]
on_demand = "3.20"
[gpu.mig]
"1g.5gb" = "0.125"
[[gpu]]
model = "A30"
match = ["a30"]
mig_slices = 4
on_demand = "1.10"
"#,
    );
    let rtx_6000 = "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition";
    let sized = [
        // The card's own fraction, and the card's slice count.
        ("NVIDIA-A100-SXM4-40GB", "1g.5gb", (1, 8)),
        ("NVIDIA-A100-SXM4-40GB", "3g.20gb", (3, 7)),
        ("NVIDIA-A30", "2g.12gb", (2, 4)),
        // Not in the card at all: still sized by the family's slice count.
        ("NVIDIA A30 PCIe", "1g.6gb", (1, 4)),
        ("NVIDIA-H200", "1g.18gb", (1, 7)),
        // The RTX PRO 6000 Blackwell has four compute slices (1g.24gb ×4, 2g.48gb ×2,
        // 4g.96gb), the RTX PRO 5000 two: as GFD names them, not in the card.
        (rtx_6000, "1g.24gb", (1, 4)),
        (rtx_6000, "2g.48gb", (1, 2)),
        (rtx_6000, "4g.96gb", (1, 1)),
        ("NVIDIA RTX PRO 5000 Blackwell", "1g.24gb", (1, 2)),
        // A name merely containing those words is not that GPU.
        ("NVIDIA-RTX-PRO-60000", "1g.24gb", (1, 7)),
        // The whole GPU is its last profile.
        ("NVIDIA-A30", "4g.24gb", (1, 1)),
    ];
    for (product, profile, (numer, denom)) in sized {
        assert_eq!(
            card.mig_fraction(product, profile),
            GpuUnits::ratio(numer, denom),
            "{product} {profile}"
        );
    }
    assert_eq!(card.mig_fraction("NVIDIA-H200", "weird"), None);
    // None has no slices or more slices than the GPU.
    for (product, profile) in [
        ("NVIDIA-A30", "7g.80gb"),
        ("NVIDIA-H200", "9g.999gb"),
        ("NVIDIA-H200", "0g.1gb"),
    ] {
        assert_eq!(
            card.mig_fraction(product, profile),
            None,
            "{product} {profile}"
        );
    }
}

#[test]
fn match_defaults_to_the_model_name_and_most_words_win() {
    let card = card(
        r#"
currency = "USD"
[[gpu]]
model = "H100 NVL"
on_demand = "7"
[[gpu]]
model = "H100"
on_demand = "6"
"#,
    );
    let nvl = card.model_for("NVIDIA H100 NVL").unwrap();
    assert_eq!(card.model(nvl).name, "H100 NVL");
    let plain = card.model_for("NVIDIA-H100-80GB-HBM3").unwrap();
    assert_eq!(card.model(plain).name, "H100");
}

#[test]
fn errors_name_file_line_and_field() {
    assert_eq!(
        error("currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"6.8x\"\n"),
        "pricing/bad.toml:4: on_demand: \"6.8x\" is not a decimal price (write e.g. \"6.88\")"
    );
    assert_eq!(
        error("currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = 6.88\n"),
        "pricing/bad.toml:4: on_demand: write prices as decimal strings (on_demand = \"6.88\") so they stay exact"
    );
    assert_eq!(
        error("currency = \"dollars\"\n"),
        "pricing/bad.toml:1: currency: \"dollars\" is not a three-letter ISO 4217 code like \"USD\""
    );
    assert_eq!(
        error("currency = \"USD\"\nrounding = \"down\"\n"),
        "pricing/bad.toml:2: rounding: \"down\" is not \"half-even\" or \"half-up\""
    );
    let unknown =
        error("currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"1\"\nprice = \"2\"\n");
    assert!(
        unknown.starts_with("pricing/bad.toml:5: unknown field `price`"),
        "{unknown}"
    );
    let missing = error("currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\n");
    assert!(
        missing.starts_with("pricing/bad.toml:2: missing field `on_demand`"),
        "{missing}"
    );
    let syntax = error("currency = \"USD\"\n[[gpu]\n");
    assert!(syntax.starts_with("pricing/bad.toml:2: "), "{syntax}");
    assert_eq!(
        error("currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"1\"\nfrom = \"soon\"\n"),
        "pricing/bad.toml:5: from: \"soon\" is not an RFC 3339 time (write e.g. \"2026-01-01T00:00:00Z\")"
    );
    assert_eq!(
        error("currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"-1\"\n"),
        "pricing/bad.toml:4: on_demand: a price cannot be negative"
    );
    // A trillion an hour is the most a price can be: a cent more is refused where it is
    // written, not by a report that later finds the costs too large to add up exactly.
    assert!(
        RateCard::parse(
            "currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"1000000000000\"\n",
            "t"
        )
        .is_ok()
    );
    assert_eq!(
        error(
            "currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"1\"\nspot = \"1000000000000.01\"\n"
        ),
        "pricing/bad.toml:5: spot: 1000000000000.01 an hour is above the highest price Tollgate takes (1000000000000 an hour)"
    );
    assert_eq!(
        error(
            "currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"1\"\n[gpu.mig]\n\"1g.5gb\" = \"1.5\"\n"
        ),
        "pricing/bad.toml:6: mig.\"1g.5gb\": a MIG fraction must be above 0 and at most 1"
    );
}

#[test]
fn overlapping_periods_and_shared_match_strings_are_refused() {
    let overlap = error(
        r#"currency = "USD"
[[gpu]]
model = "H100"
on_demand = "7"
until = "2026-12-01T00:00:00Z"
[[gpu]]
model = "H100"
on_demand = "6"
from = "2026-11-01T00:00:00Z"
"#,
    );
    assert_eq!(
        overlap,
        "pricing/bad.toml:6: model \"H100\": this price period overlaps the one on line 2"
    );
    let shared = error(
        r#"currency = "USD"
[[gpu]]
model = "L4"
match = ["l4"]
on_demand = "0.8"
[[gpu]]
model = "L4 Ada"
match = ["L4"]
on_demand = "0.9"
"#,
    );
    assert_eq!(
        shared,
        "pricing/bad.toml:8: match: \"L4\" is also a match string of model \"L4\" (line 4); models may share a match string only when each sets a different memory_gb"
    );
    let backwards = error(
        "currency = \"USD\"\n[[gpu]]\nmodel = \"X\"\non_demand = \"1\"\nfrom = \"2026-02-01T00:00:00Z\"\nuntil = \"2026-01-01T00:00:00Z\"\n",
    );
    assert_eq!(
        backwards,
        "pricing/bad.toml:2: model \"X\": `from` must be before `until`"
    );
}

#[test]
fn a_missing_file_says_so() {
    let err = RateCard::load(std::path::Path::new("/nonexistent/rates.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/rates.toml: cannot read the rate card"),
        "{err}"
    );
}

#[test]
fn memory_decides_between_models_sharing_a_match_string() {
    let card = card(
        r#"
currency = "USD"
[[gpu]]
model = "A100-80GB"
memory_gb = 80
match = ["a100"]
on_demand = "4.10"
[[gpu]]
model = "A100-40GB"
memory_gb = 40
match = ["a100 40gb", "a100"]
on_demand = "3.20"
"#,
    );
    let name = |product: &str| card.model(card.model_for(product).unwrap()).name.clone();
    assert_eq!(name("NVIDIA-A100-SXM-80GB"), "A100-80GB");
    assert_eq!(
        name(&with_memory("NVIDIA-A100-PCIe", Some(40960))),
        "A100-40GB"
    );
    assert_eq!(name("NVIDIA A100-PCIE-40GB"), "A100-40GB");
    // 79.6 GiB (an H100-style odd size) is still nearest 80.
    assert_eq!(name(&with_memory("NVIDIA A100", Some(81_559))), "A100-80GB");
    let bare = card.explain("NVIDIA A100").unwrap();
    assert!(bare.ambiguous());
    assert_eq!(card.model(bare.model).name, "A100-80GB");
    let decided = card.explain("NVIDIA-A100-SXM-80GB").unwrap();
    assert!(decided.by_memory && !decided.ambiguous());
    assert_eq!(card.shared_matches().len(), 1);
}

#[test]
fn a_gpu_named_by_its_superchip_s_memory_is_the_model_of_its_own() {
    let card = card(
        r#"
currency = "USD"
[[gpu]]
model = "GH200-144GB"
memory_gb = 144
match = ["gh200"]
on_demand = "6.00"
[[gpu]]
model = "GH200-96GB"
memory_gb = 96
match = ["gh200"]
on_demand = "4.00"
"#,
    );
    let name = |product: &str| card.model(card.model_for(product).unwrap()).name.clone();
    // The 96 GB GH200 as GFD, NVML (DCGM's modelName, a DRA productName), a MIG single node
    // and a time-sliced one name it: by the superchip's 480 GB (or 120 GB), NVIDIA's table says
    // 96. Written second, it used to lose to the 144 GB model, the nearer to 480.
    for product in [
        "NVIDIA-GH200-480GB",
        "NVIDIA GH200 480GB",
        "NVIDIA-GH200-120GB",
        "NVIDIA-GH200-480GB-MIG-1g.12gb",
        "NVIDIA-GH200-480GB-SHARED",
        "NVIDIA GH200 96GB HBM3",
    ] {
        assert_eq!(name(product), "GH200-96GB", "{product}");
    }
    assert_eq!(name("NVIDIA-GH200-144G-HBM3e"), "GH200-144GB");
    // What the device reports, appended, is the memory read.
    assert_eq!(
        name(&with_memory("NVIDIA-GH200-480GB", Some(143 * 1024))),
        "GH200-144GB"
    );
    assert!(card.explain("NVIDIA-GH200-480GB").unwrap().by_memory);
}

#[test]
fn a_shared_match_string_needs_a_different_memory_on_each_model() {
    let same_memory = error(
        "currency = \"USD\"\n[[gpu]]\nmodel = \"A\"\nmemory_gb = 80\nmatch = [\"a100\"]\non_demand = \"1\"\n[[gpu]]\nmodel = \"B\"\nmemory_gb = 80\nmatch = [\"a100\"]\non_demand = \"2\"\n",
    );
    assert_eq!(
        same_memory,
        "pricing/bad.toml:10: match: \"a100\" is also a match string of model \"A\" (line 5); models may share a match string only when each sets a different memory_gb"
    );
    let no_memory = error(
        "currency = \"USD\"\n[[gpu]]\nmodel = \"A\"\nmemory_gb = 80\nmatch = [\"a100\"]\non_demand = \"1\"\n[[gpu]]\nmodel = \"B\"\nmatch = [\"a100\"]\non_demand = \"2\"\n",
    );
    assert!(
        no_memory.starts_with("pricing/bad.toml:9: match: \"a100\" is also"),
        "{no_memory}"
    );
    let bad =
        error("currency = \"USD\"\n[[gpu]]\nmodel = \"A\"\nmemory_gb = 0\non_demand = \"1\"\n");
    assert_eq!(
        bad,
        "pricing/bad.toml:4: memory_gb: must be a whole number of GB from 1 to 100000"
    );
}
