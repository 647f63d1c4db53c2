//! Shared test support: the fake API server and helpers to talk to a running service.

#![allow(dead_code)] // each test binary uses part of this module

pub mod apiserver;

use std::collections::BTreeMap;

/// `tollgate_gpu_allocated_units` (or any metric) as `{labels → value}` from the text format.
pub fn metric(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            Some((labels.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The value of one label in a label string `a="1",b="2"`.
pub fn label<'a>(labels: &'a str, key: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or("")
}

/// Units held per `pod/kind`.
pub fn units_by_pod(text: &str) -> BTreeMap<String, f64> {
    metric(text, "tollgate_gpu_allocated_units")
        .into_iter()
        .map(|(labels, v)| {
            (
                format!("{}/{}", label(&labels, "pod"), label(&labels, "kind")),
                v,
            )
        })
        .collect()
}
