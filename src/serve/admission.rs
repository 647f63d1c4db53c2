//! Request bodies of the two quota endpoints: Kyverno's `apiCall` JSON and the Kubernetes
//! `AdmissionReview` (`admission.k8s.io/v1`), read into one [`CheckRequest`].

use k8s_openapi::api::core::v1::Pod;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::quota::{CheckRequest, Subject};
use crate::budget::QuotaDecision;

/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A GPU count written as a number or a decimal string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Count {
    Number(serde_json::Number),
    Text(String),
}

/// The body of `POST /api/v1/quota/check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QuotaBody<P> {
    namespace: Option<String>,
    pod: Option<P>,
    cost_center: Option<String>,
    gpus: Option<Count>,
    gpu_model: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

fn pod_from(mut value: Value, what: &str) -> Result<Pod, String> {
    if !value.is_object() {
        return Err(format!("{what}: expected a Pod object"));
    }
    // Kyverno's request.object carries both; a hand-written body may not.
    for (key, default) in [("apiVersion", "v1"), ("kind", "Pod")] {
        if value.get(key).is_none() {
            value[key] = json!(default);
        }
    }
    serde_json::from_value(value).map_err(|e| format!("{what}: not a valid Pod: {e}"))
}

/// Reads a quota-check body. Errors say what is wrong, for a 400.
pub fn quota_request(body: &[u8]) -> Result<CheckRequest, String> {
    // Kyverno sends the whole Pod, apiVersion and kind included: read it in one pass. A
    // hand-written body may leave those out; it is read again through a JSON value.
    let body: QuotaBody<Pod> = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(_) => {
            let loose: QuotaBody<Value> =
                serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
            QuotaBody {
                namespace: loose.namespace,
                pod: loose.pod.map(|pod| pod_from(pod, "pod")).transpose()?,
                cost_center: loose.cost_center,
                gpus: loose.gpus,
                gpu_model: loose.gpu_model,
                dry_run: loose.dry_run,
            }
        }
    };
    let subject = match (body.pod, body.gpus) {
        (Some(_), Some(_)) => return Err("send either pod or gpus, not both".into()),
        (Some(pod), None) => Subject::Pod(Box::new(pod)),
        (None, Some(count)) => {
            let text = match count {
                Count::Number(n) => n.to_string(),
                Count::Text(t) => t,
            };
            let gpus: Decimal = text
                .trim()
                .parse()
                .map_err(|_| format!("gpus: {text:?} is not a number of GPUs"))?;
            Subject::Gpus {
                gpus,
                gpu_model: body.gpu_model.filter(|m| !m.trim().is_empty()),
            }
        }
        (None, None) => return Err("send pod (the Pod object) or gpus (a number)".into()),
    };
    let namespace = body
        .namespace
        .filter(|n| !n.is_empty())
        .or_else(|| match &subject {
            Subject::Pod(pod) => pod.metadata.namespace.clone(),
            Subject::Gpus { .. } => None,
        })
        .ok_or("namespace: missing")?;
    Ok(CheckRequest {
        namespace,
        subject,
        cost_center: body.cost_center,
        dry_run: body.dry_run,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionReview {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<AdmissionRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest {
    uid: String,
    kind: Option<GroupVersionKind>,
    namespace: Option<String>,
    operation: Option<String>,
    object: Option<Value>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    kind: String,
}

/// What an AdmissionReview asks.
pub enum Review {
    /// A pod being created: decide.
    Check {
        /// The request's UID, echoed in the response.
        uid: String,
        /// The check.
        request: CheckRequest,
    },
    /// Anything else (another kind or operation): allow without a decision.
    Pass {
        /// The request's UID.
        uid: String,
    },
}

/// Reads an `AdmissionReview`. Errors say what is wrong, for a 400.
pub fn admission_review(body: &[u8]) -> Result<Review, String> {
    let review: AdmissionReview = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
    if review.kind.as_deref() != Some("AdmissionReview")
        || review.api_version.as_deref() != Some("admission.k8s.io/v1")
    {
        return Err("expected an AdmissionReview of apiVersion admission.k8s.io/v1".into());
    }
    let request = review.request.ok_or("request: missing")?;
    let is_pod = request
        .kind
        .as_ref()
        .is_some_and(|k| k.group.is_empty() && k.kind == "Pod");
    let creating = request.operation.as_deref().is_none_or(|op| op == "CREATE");
    if !is_pod || !creating {
        return Ok(Review::Pass { uid: request.uid });
    }
    let pod = pod_from(
        request.object.ok_or("request.object: missing")?,
        "request.object",
    )?;
    let namespace = request
        .namespace
        .or_else(|| pod.metadata.namespace.clone())
        .ok_or("request.namespace: missing")?;
    Ok(Review::Check {
        uid: request.uid,
        request: CheckRequest {
            namespace,
            subject: Subject::Pod(Box::new(pod)),
            cost_center: None,
            dry_run: request.dry_run,
        },
    })
}

/// The AdmissionReview answer: `uid` copied, 403 and the message on deny, warnings passed on.
pub fn admission_response(uid: &str, decision: Option<&QuotaDecision>) -> Value {
    let mut response = json!({"uid": uid, "allowed": decision.is_none_or(|d| d.allowed)});
    if let Some(d) = decision {
        if !d.allowed {
            response["status"] = json!({"code": 403, "message": d.message});
        }
        if !d.warnings.is_empty() {
            response["warnings"] = json!(d.warnings);
        }
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}
