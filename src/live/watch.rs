//! Watching the cluster: one kube-runtime watcher per kind, feeding [`ClusterStores`].
//!
//! Watchers reconnect with backoff and relist after a `410 Gone` (kube-runtime's watcher does
//! both). A kind the API server does not serve (DRA on a cluster older than 1.34) is logged once
//! and counted as synced, so the rest keeps working.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate, ResourceSlice};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::cluster::ClusterStores;
use super::stores::{KindStore, Strip};

/// Whether the last read from the API server worked (`tollgate_source_up{source="kubernetes"}`).
#[derive(Debug)]
pub struct SourceHealth(AtomicBool);

impl Default for SourceHealth {
    fn default() -> Self {
        SourceHealth(AtomicBool::new(false))
    }
}

impl SourceHealth {
    /// True when the last read worked.
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, up: bool) {
        self.0.store(up, Ordering::Relaxed);
    }
}

fn not_served(error: &watcher::Error) -> bool {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status,
        _ => return false,
    };
    status.code == 404
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn watch_kind<K>(
    api: Api<K>,
    stores: Arc<Mutex<ClusterStores>>,
    store: fn(&mut ClusterStores) -> &mut KindStore<K>,
    health: Arc<SourceHealth>,
    optional: bool,
) where
    K: kube::Resource + Strip + Serialize + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    tracing::debug!(kind, "watching");
    let mut warned_absent = false;
    let events = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                health.set(true);
                let mut stores = stores
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                store(&mut stores).handle(event, now());
            }
            Err(e) if optional && not_served(&e) => {
                if !warned_absent {
                    tracing::warn!(
                        kind,
                        "the API server does not serve {kind} (resource.k8s.io/v1); DRA claims are not read"
                    );
                    warned_absent = true;
                }
                let mut stores = stores
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                store(&mut stores).mark_absent();
            }
            Err(e) => {
                health.set(false);
                tracing::warn!(kind, error = %e, "watch failed; retrying with backoff");
            }
        }
    }
}

/// Starts a watcher per kind. They run until aborted.
pub fn spawn_watchers(
    client: Client,
    stores: Arc<Mutex<ClusterStores>>,
    health: Arc<SourceHealth>,
) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(watch_kind(
            Api::<Pod>::all(client.clone()),
            stores.clone(),
            |s| &mut s.pods,
            health.clone(),
            false,
        )),
        tokio::spawn(watch_kind(
            Api::<Node>::all(client.clone()),
            stores.clone(),
            |s| &mut s.nodes,
            health.clone(),
            false,
        )),
        tokio::spawn(watch_kind(
            Api::<Namespace>::all(client.clone()),
            stores.clone(),
            |s| &mut s.namespaces,
            health.clone(),
            false,
        )),
        tokio::spawn(watch_kind(
            Api::<ResourceClaim>::all(client.clone()),
            stores.clone(),
            |s| &mut s.claims,
            health.clone(),
            true,
        )),
        tokio::spawn(watch_kind(
            Api::<ResourceSlice>::all(client.clone()),
            stores.clone(),
            |s| &mut s.slices,
            health.clone(),
            true,
        )),
        tokio::spawn(watch_kind(
            Api::<ResourceClaimTemplate>::all(client),
            stores,
            |s| &mut s.templates,
            health,
            true,
        )),
    ]
}
