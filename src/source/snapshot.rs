//! Reading a snapshot directory: the JSON `kubectl get <kind> -A -o json` prints (a `List`),
//! one file per kind, each optional.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::allocation::ClusterObjects;

/// A snapshot file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct SnapshotError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong, with the item or line where known.
    pub message: String,
}

/// The files a snapshot directory may hold.
pub const SNAPSHOT_FILES: [&str; 6] = [
    "pods.json",
    "nodes.json",
    "namespaces.json",
    "resourceclaims.json",
    "resourceslices.json",
    "resourceclaimtemplates.json",
];

/// Reads every snapshot file present in `dir`. A directory with none of them is an error, since
/// it is almost certainly the wrong directory.
pub fn read_snapshot(dir: &Path) -> Result<ClusterObjects, SnapshotError> {
    if !dir.is_dir() {
        return Err(SnapshotError {
            file: dir.to_path_buf(),
            message: "is not a directory (pass --snapshot DIR holding pods.json, nodes.json, …)"
                .into(),
        });
    }
    if SNAPSHOT_FILES.iter().all(|f| !dir.join(f).exists()) {
        return Err(SnapshotError {
            file: dir.to_path_buf(),
            message: format!("holds none of {}", SNAPSHOT_FILES.join(", ")),
        });
    }
    Ok(ClusterObjects {
        pods: read_list(&dir.join("pods.json"))?,
        nodes: read_list(&dir.join("nodes.json"))?,
        namespaces: read_list(&dir.join("namespaces.json"))?,
        claims: read_list(&dir.join("resourceclaims.json"))?,
        slices: read_list(&dir.join("resourceslices.json"))?,
        templates: read_list(&dir.join("resourceclaimtemplates.json"))?,
    })
}

/// Reads a `List` file (or a bare JSON array) of one kind; a missing file is an empty list.
fn read_list<T: DeserializeOwned>(file: &Path) -> Result<Vec<T>, SnapshotError> {
    let fail = |message: String| SnapshotError {
        file: file.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fail(format!("cannot read: {e}"))),
    };
    let document: Value =
        serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let items = match document {
        Value::Array(items) => items,
        Value::Object(mut list) => match list.remove("items") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(fail(
                    "expected a List with `items` (the output of `kubectl get … -o json`)".into(),
                ));
            }
        },
        _ => {
            return Err(fail(
                "expected a List with `items` (the output of `kubectl get … -o json`)".into(),
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            let name = object_name(&item);
            upgrade_dra_version(&mut item).map_err(|m| fail(format!("item {i} ({name}): {m}")))?;
            serde_json::from_value(item).map_err(|e| fail(format!("item {i} ({name}): {e}")))
        })
        .collect()
}

fn object_name(item: &Value) -> String {
    let meta = &item["metadata"];
    match (meta["namespace"].as_str(), meta["name"].as_str()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => "unnamed".to_string(),
    }
}

/// `resource.k8s.io/v1beta2` objects have the same shape as `v1`, so they are read as `v1`.
/// `v1beta1` differs (devices wrap their data in `basic`) and is refused with a hint.
fn upgrade_dra_version(item: &mut Value) -> Result<(), String> {
    match item["apiVersion"].as_str() {
        Some("resource.k8s.io/v1beta2") => {
            item["apiVersion"] = Value::String("resource.k8s.io/v1".into());
            Ok(())
        }
        Some("resource.k8s.io/v1beta1") => {
            // The hint names the kind at hand: slices are cluster-scoped, claims namespaced.
            let export = match item["kind"].as_str() {
                Some("ResourceSlice") => "resourceslices.v1.resource.k8s.io -o json",
                _ => "resourceclaims.v1.resource.k8s.io -A -o json",
            };
            Err(format!(
                "resource.k8s.io/v1beta1 is not read; export the v1 objects (kubectl get {export})"
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::upgrade_dra_version;

    #[test]
    fn v1beta2_reads_as_v1_and_v1beta1_is_refused_naming_its_own_kind() {
        let mut slice = json!({"apiVersion": "resource.k8s.io/v1beta2", "kind": "ResourceSlice"});
        assert_eq!(upgrade_dra_version(&mut slice), Ok(()));
        assert_eq!(slice["apiVersion"], "resource.k8s.io/v1");
        let mut slice = json!({"apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceSlice"});
        assert_eq!(
            upgrade_dra_version(&mut slice),
            Err("resource.k8s.io/v1beta1 is not read; export the v1 objects (kubectl get resourceslices.v1.resource.k8s.io -o json)".to_string())
        );
        let mut claim = json!({"apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceClaim"});
        assert_eq!(
            upgrade_dra_version(&mut claim),
            Err("resource.k8s.io/v1beta1 is not read; export the v1 objects (kubectl get resourceclaims.v1.resource.k8s.io -A -o json)".to_string())
        );
    }
}
