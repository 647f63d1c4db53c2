//! An in-process fake Kubernetes API server that speaks the real list/watch protocol for the
//! kinds Tollgate reads: lists carry `metadata.resourceVersion`; `?watch=true` streams
//! newline-delimited `{"type": ADDED|MODIFIED|DELETED, "object": …}` events after the requested
//! resourceVersion; `expire_watches` ends every watch with a `410 Gone` ERROR event and refuses
//! older resourceVersions, forcing clients to relist. `without_dra` answers 404 for
//! `resource.k8s.io`, like a cluster older than 1.34. `POST …/tokenreviews` answers a
//! TokenReview for the tokens `accept_token` registered, with the audience rules of the real
//! authenticator (no audiences asked: the API server's own; else at least one in common).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Kinds served: (plural, API prefix, kind, apiVersion).
const KINDS: [(&str, &str, &str, &str); 6] = [
    ("pods", "/api/v1", "Pod", "v1"),
    ("nodes", "/api/v1", "Node", "v1"),
    ("namespaces", "/api/v1", "Namespace", "v1"),
    (
        "resourceclaims",
        "/apis/resource.k8s.io/v1",
        "ResourceClaim",
        "resource.k8s.io/v1",
    ),
    (
        "resourceslices",
        "/apis/resource.k8s.io/v1",
        "ResourceSlice",
        "resource.k8s.io/v1",
    ),
    (
        "resourceclaimtemplates",
        "/apis/resource.k8s.io/v1",
        "ResourceClaimTemplate",
        "resource.k8s.io/v1",
    ),
];

#[derive(Clone, Debug)]
enum Change {
    Event {
        plural: String,
        rv: u64,
        event: Value,
    },
    Gone,
}

#[derive(Default)]
struct Objects {
    rv: u64,
    /// Watches asking for an older resourceVersion get 410.
    oldest_rv: u64,
    by_kind: BTreeMap<String, BTreeMap<String, Value>>,
    history: Vec<(String, u64, Value)>,
    without_dra: bool,
    /// Token → (user, groups, audiences it was issued for).
    tokens: BTreeMap<String, (String, Vec<String>, Vec<String>)>,
    /// TokenReviews answered.
    reviews: usize,
    /// Leases by `namespace/name`, and their resourceVersion counter.
    leases: BTreeMap<String, Value>,
    lease_rv: u64,
}

/// The audience of tokens issued for the API server itself.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Clone)]
struct Shared {
    objects: Arc<Mutex<Objects>>,
    changes: broadcast::Sender<Change>,
}

/// A running fake API server.
pub struct FakeApiServer {
    shared: Shared,
    /// Where it listens.
    pub addr: SocketAddr,
}

fn key(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("")
    )
}

fn kind_of(plural: &str) -> (&'static str, &'static str) {
    let (_, _, kind, api_version) = KINDS.iter().find(|k| k.0 == plural).expect("a served kind");
    (kind, api_version)
}

impl FakeApiServer {
    /// Starts a server on a free loopback port.
    pub async fn start() -> Self {
        let (changes, _) = broadcast::channel(4096);
        let shared = Shared {
            objects: Arc::default(),
            changes,
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeApiServer { shared, addr }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig for this server into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: tester\n  user:\n    token: not-checked\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\ncurrent-context: fake\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Answers 404 for DRA kinds from now on.
    pub fn without_dra(&self) {
        self.shared.objects.lock().unwrap().without_dra = true;
    }

    fn record(&self, plural: &str, kind: &str, mut object: Value) {
        let mut objects = self.shared.objects.lock().unwrap();
        objects.rv += 1;
        let rv = objects.rv;
        let (kind_name, api_version) = kind_of(plural);
        object["kind"] = json!(kind_name);
        object["apiVersion"] = json!(api_version);
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let k = key(&object);
        let store = objects.by_kind.entry(plural.to_string()).or_default();
        let event_type = match kind {
            "DELETED" => {
                store.remove(&k);
                "DELETED"
            }
            _ if store.contains_key(&k) => "MODIFIED",
            _ => "ADDED",
        };
        if event_type != "DELETED" {
            store.insert(k, object.clone());
        }
        let event = json!({"type": event_type, "object": object});
        objects
            .history
            .push((plural.to_string(), rv, event.clone()));
        let _ = self.shared.changes.send(Change::Event {
            plural: plural.to_string(),
            rv,
            event,
        });
    }

    /// Creates or replaces an object (ADDED or MODIFIED).
    pub fn apply(&self, plural: &str, object: Value) {
        self.record(plural, "APPLY", object);
    }

    /// Deletes an object (DELETED).
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let object = {
            let objects = self.shared.objects.lock().unwrap();
            objects.by_kind[plural][&format!("{namespace}/{name}")].clone()
        };
        self.record(plural, "DELETED", object);
    }

    /// The object as stored.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Value {
        self.shared.objects.lock().unwrap().by_kind[plural][&format!("{namespace}/{name}")].clone()
    }

    /// Loads every item of the snapshot files in `dir` (kubectl `List` JSON).
    pub fn load_snapshot(&self, dir: &std::path::Path) {
        for (plural, ..) in KINDS {
            let Ok(text) = std::fs::read_to_string(dir.join(format!("{plural}.json"))) else {
                continue;
            };
            let list: Value = serde_json::from_str(&text).unwrap();
            for item in list["items"].as_array().unwrap() {
                self.apply(plural, item.clone());
            }
        }
    }

    /// Makes TokenReviews of `token` authenticate `user` in `groups`, for `audiences`.
    pub fn accept_token(&self, token: &str, user: &str, groups: &[&str], audiences: &[&str]) {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        self.shared.objects.lock().unwrap().tokens.insert(
            token.to_string(),
            (user.to_string(), owned(groups), owned(audiences)),
        );
    }

    /// The Lease `namespace/name`, if it exists.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        let objects = self.shared.objects.lock().unwrap();
        objects.leases.get(&format!("{namespace}/{name}")).cloned()
    }

    /// Writes the Lease `namespace/name` as another replica would: held by `holder` (`None`:
    /// released), renewed now, for `seconds`.
    pub fn set_lease(&self, namespace: &str, name: &str, holder: Option<&str>, seconds: u32) {
        let mut objects = self.shared.objects.lock().unwrap();
        objects.lease_rv += 1;
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": objects.lease_rv.to_string(),
            },
            "spec": {
                "holderIdentity": holder,
                "acquireTime": now,
                "renewTime": now,
                "leaseDurationSeconds": seconds,
                "leaseTransitions": 0,
            },
        });
        objects.leases.insert(format!("{namespace}/{name}"), lease);
    }

    /// How many TokenReviews were answered.
    pub fn reviews(&self) -> usize {
        self.shared.objects.lock().unwrap().reviews
    }

    /// Ends every open watch with `410 Gone` and refuses the resourceVersions seen so far.
    pub fn expire_watches(&self) {
        let mut objects = self.shared.objects.lock().unwrap();
        objects.oldest_rv = objects.rv + 1;
        objects.history.clear();
        let _ = self.shared.changes.send(Change::Gone);
    }
}

fn gone() -> Value {
    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version", "reason": "Expired", "code": 410}})
}

fn line(value: &Value) -> Bytes {
    let mut text = serde_json::to_vec(value).unwrap();
    text.push(b'\n');
    Bytes::from(text)
}

/// A TokenReview's answer.
fn review(objects: &mut Objects, body: &Value) -> Value {
    objects.reviews += 1;
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let asked: Vec<&str> = body["spec"]["audiences"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let status = match objects.tokens.get(token) {
        Some((user, groups, audiences)) => {
            let wanted = if asked.is_empty() {
                vec![API_AUDIENCE]
            } else {
                asked.clone()
            };
            let common: Vec<&str> = wanted
                .into_iter()
                .filter(|a| audiences.iter().any(|t| t == a))
                .collect();
            if common.is_empty() {
                json!({"authenticated": false, "error": "token audiences is invalid for the target audience"})
            } else if asked.is_empty() {
                json!({"authenticated": true, "user": {"username": user, "groups": groups}})
            } else {
                json!({"authenticated": true, "user": {"username": user, "groups": groups}, "audiences": common})
            }
        }
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null}, "spec": body["spec"], "status": status})
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "reason": reason, "message": message, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

/// GET, POST (create) and PUT (replace) of Leases, with resourceVersion checks.
async fn leases(shared: &Shared, path: &str, request: Request) -> Response {
    let rest = path
        .strip_prefix("/apis/coordination.k8s.io/v1/namespaces/")
        .unwrap_or_default();
    let (namespace, name) = match rest.split('/').collect::<Vec<_>>()[..] {
        [namespace, "leases"] => (namespace.to_string(), None),
        [namespace, "leases", name] => (namespace.to_string(), Some(name.to_string())),
        _ => return status(StatusCode::NOT_FOUND, "NotFound", "not found"),
    };
    let method = request.method().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let mut objects = shared.objects.lock().unwrap();
    let key = |name: &str| format!("{namespace}/{name}");
    match (method.as_str(), name) {
        ("GET", Some(name)) => match objects.leases.get(&key(&name)) {
            Some(lease) => axum::Json(lease.clone()).into_response(),
            None => status(StatusCode::NOT_FOUND, "NotFound", "leases not found"),
        },
        ("POST", None) => {
            let mut lease: Value = serde_json::from_slice(&body).unwrap();
            let name = lease["metadata"]["name"].as_str().unwrap().to_string();
            if objects.leases.contains_key(&key(&name)) {
                return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
            }
            objects.lease_rv += 1;
            lease["metadata"]["namespace"] = json!(namespace);
            lease["metadata"]["resourceVersion"] = json!(objects.lease_rv.to_string());
            objects.leases.insert(key(&name), lease.clone());
            (StatusCode::CREATED, axum::Json(lease)).into_response()
        }
        ("PUT", Some(name)) => {
            let mut lease: Value = serde_json::from_slice(&body).unwrap();
            let Some(stored) = objects.leases.get(&key(&name)) else {
                return status(StatusCode::NOT_FOUND, "NotFound", "leases not found");
            };
            if lease["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "the object has been modified; please apply your changes to the latest version and try again",
                );
            }
            objects.lease_rv += 1;
            lease["metadata"]["resourceVersion"] = json!(objects.lease_rv.to_string());
            objects.leases.insert(key(&name), lease.clone());
            axum::Json(lease).into_response()
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not allowed",
        ),
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/apis/coordination.k8s.io/v1/") {
        return leases(&shared, &path, request).await;
    }
    if path == "/apis/authentication.k8s.io/v1/tokenreviews" {
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        let answer = review(&mut shared.objects.lock().unwrap(), &body);
        return (StatusCode::CREATED, axum::Json(answer)).into_response();
    }
    let query: BTreeMap<String, String> = request.uri().query().map(url_pairs).unwrap_or_default();
    let Some((plural, prefix)) = KINDS
        .iter()
        .find(|(plural, prefix, ..)| path == format!("{prefix}/{plural}"))
        .map(|(plural, prefix, ..)| (*plural, *prefix))
    else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if prefix.starts_with("/apis/resource.k8s.io") && shared.objects.lock().unwrap().without_dra {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
            "message": "the server could not find the requested resource", "code": 404});
        return (StatusCode::NOT_FOUND, axum::Json(status)).into_response();
    }
    let (kind, api_version) = kind_of(plural);
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if !watching {
        let objects = shared.objects.lock().unwrap();
        let items: Vec<Value> = objects
            .by_kind
            .get(plural)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        let list = json!({"kind": format!("{kind}List"), "apiVersion": api_version,
            "metadata": {"resourceVersion": objects.rv.to_string()}, "items": items});
        return axum::Json(list).into_response();
    }
    let from_rv: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (backlog, receiver, expired) = {
        let objects = shared.objects.lock().unwrap();
        let backlog: Vec<(u64, Value)> = objects
            .history
            .iter()
            .filter(|(p, rv, _)| p == plural && *rv > from_rv)
            .map(|(_, rv, e)| (*rv, e.clone()))
            .collect();
        (
            backlog,
            shared.changes.subscribe(),
            from_rv < objects.oldest_rv,
        )
    };
    let plural = plural.to_string();
    let stream = async_stream(backlog, receiver, expired, plural, from_rv);
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(
    backlog: Vec<(u64, Value)>,
    receiver: broadcast::Receiver<Change>,
    expired: bool,
    plural: String,
    from_rv: u64,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let last = backlog.last().map_or(from_rv, |(rv, _)| *rv);
    let first: Vec<Result<Bytes, std::io::Error>> = if expired {
        vec![Ok(line(&gone()))]
    } else {
        backlog.iter().map(|(_, e)| Ok(line(e))).collect()
    };
    let live = futures::stream::unfold(
        (receiver, last, expired),
        move |(mut receiver, last, done)| {
            let plural = plural.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    match receiver.recv().await {
                        Ok(Change::Event {
                            plural: p,
                            rv,
                            event,
                        }) if p == plural && rv > last => {
                            return Some((Ok(line(&event)), (receiver, rv, false)));
                        }
                        Ok(Change::Event { .. }) => continue,
                        Ok(Change::Gone) => {
                            return Some((Ok(line(&gone())), (receiver, last, true)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    futures::StreamExt::chain(futures::stream::iter(first), live)
}

fn url_pairs(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}
