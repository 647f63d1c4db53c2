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

/// The model whose match string matches `product` with the most words; on a tie, the match
/// string written first in the rate card.
pub(crate) fn best_match(matchers: &[Matcher], product: &str) -> Option<usize> {
    let name = normalize(product);
    let words: Vec<&str> = name.split(' ').filter(|w| !w.is_empty()).collect();
    let mut best: Option<&Matcher> = None;
    for matcher in matchers {
        let n = matcher.words.len();
        if n == 0 || n > words.len() {
            continue;
        }
        let found = words
            .windows(n)
            .any(|run| run.iter().zip(&matcher.words).all(|(a, b)| *a == b));
        if found && best.is_none_or(|b| n > b.words.len()) {
            best = Some(matcher);
        }
    }
    best.map(|m| m.model)
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

    #[test]
    fn whole_words_only_and_most_words_win() {
        let m = matchers(&[("l4", 0), ("l40s", 1), ("h100", 2), ("h100 nvl", 3)]);
        assert_eq!(best_match(&m, "NVIDIA-L4"), Some(0));
        assert_eq!(best_match(&m, "NVIDIA-L40S"), Some(1));
        assert_eq!(best_match(&m, "NVIDIA L40"), None);
        assert_eq!(best_match(&m, "NVIDIA H100 NVL"), Some(3));
        assert_eq!(best_match(&m, "NVIDIA-H100-80GB-HBM3"), Some(2));
        assert_eq!(best_match(&m, "NVIDIA-GH100"), None);
    }
}
