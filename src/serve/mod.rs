//! `tollgate serve`: reads a feed into the ledger every few seconds and serves chargeback,
//! metrics and health over HTTP from the latest view.

mod activity;
mod admission;
mod archive;
mod auth;
mod background;
mod console;
mod feed;
mod follow;
mod http;
mod metrics;
mod process;
mod quota;
mod reconciler;
mod reply;
mod state;
mod tls;
mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use activity::Activity;
pub use admission::{Review, admission_review, quota_request};
pub use archive::{Archive, Backfill, DailyExport, HistorySource, UnreadHistory};
pub use auth::{Auth, AuthMode, AuthSettings, Refusal, Scope};
pub use feed::{Feed, Recorded};
pub use follow::Following;
pub use http::{ApiDoc, router, webhook_router};
pub use quota::{CheckRequest, QuotaGate, Subject};
pub use reconciler::{Reconciler, read_once};
pub use state::AppState;
pub use tls::{CertReloader, TlsError, client_verifier, serve_tls};
pub use view::{Readiness, View};

use crate::ledger::Ledger;
use crate::pricing::RateCard;

/// How the service runs.
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: String,
    /// Time between reconciles.
    pub reconcile_every: Duration,
    /// Annotation/label key of cost centers.
    pub cost_center_key: String,
    /// HTTPS for the admission webhook, on its own port.
    pub tls: Option<TlsOptions>,
    /// Prometheus and the rollup store.
    pub archive: Arc<Archive>,
    /// Allocations rebuilt from history for the time before the ledger began.
    pub history: Option<Arc<crate::allocation::AllocationSet>>,
    /// The names the FOCUS export gives the platform.
    pub focus: crate::output::FocusSettings,
    /// Who may read chargebacks and ask quota checks.
    pub auth: Arc<Auth>,
    /// Among replicas, when this one writes the ledger (`None`: always).
    pub following: Option<Following>,
    /// Reports computed at once.
    pub reports_at_once: usize,
    /// History before the cut-over to roll up into the store, a day at a time, on start.
    pub backfill: Option<Backfill>,
    /// The part of the day the ledger began that came before it, when Prometheus did not
    /// answer for it at the start (`history` lacks it): read again in the background.
    pub unread_history: Option<UnreadHistory>,
}

/// The HTTPS listener.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// Address to listen on.
    pub listen: String,
    /// The certificate, reloaded when its files change.
    pub certificates: Arc<CertReloader>,
    /// How often the files are checked.
    pub check_every: Duration,
    /// When set, only clients with a certificate it verifies (the API server) are served.
    pub clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address is unusable.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address given.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}

/// The URLs a user opens, for the address the server is bound to.
pub fn urls(bound: SocketAddr) -> Vec<String> {
    let host = if bound.ip().is_unspecified() {
        format!("localhost:{}", bound.port())
    } else {
        bound.to_string()
    };
    [
        "/",
        "/api/v1/chargeback?format=csv",
        "/api/v1/chargeback?format=json&group_by=gpu_model",
        "/metrics",
        "/readyz",
        "/api/v1/openapi.json",
    ]
    .iter()
    .map(|path| format!("http://{host}{path}"))
    .collect()
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn reconcile_once(reconciler: &Arc<Mutex<Reconciler>>) {
    let reconciler = reconciler.clone();
    let done = background::spawn_background(move || {
        reconciler
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .step();
    })
    .await;
    if let Err(e) = done {
        tracing::error!(error = %e, "a reconcile panicked");
    }
}

/// Reads `unread` from Prometheus until it answers (said missing meanwhile, through
/// [`Archive::unread_history`]), then adds it to the views — or, if its day is rolled up
/// already, to the stored day (the leader does; another replica waits until it has).
async fn read_history_later(
    unread: UnreadHistory,
    archive: Arc<Archive>,
    card: Arc<RateCard>,
    reconciler: Arc<Mutex<Reconciler>>,
) {
    let Some(set) = archive.read_unread_history(&unread, &card).await else {
        return;
    };
    let set = Arc::new(set);
    for attempt in 0.. {
        // The reconciler and the store are worked on off the async workers, as for a
        // reconcile or a roll-up.
        let (adding, completing, set, card) = (
            reconciler.clone(),
            archive.clone(),
            set.clone(),
            card.clone(),
        );
        let added = background::spawn_background(move || {
            let added = adding
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add_history(set.clone());
            added || completing.complete_stored_day(unread.window, &set, &card)
        })
        .await;
        if matches!(added, Ok(true)) {
            break;
        }
        if attempt == 0 {
            tracing::warn!(
                "{}: it was read after its day was rolled up; the stored day lacks it until the leader puts it in",
                crate::reporting::unread_history(unread.window)
            );
        }
        tokio::time::sleep(unread.retry_every).await;
    }
    // Published first, then no longer said missing: by reports at once, by the month's spend
    // from the next view on.
    reconcile_once(&reconciler).await;
    archive.set_unread_history(None);
    reconcile_once(&reconciler).await;
    tracing::info!("history before the ledger began read");
}

/// Runs the service until `shutdown` resolves (the CLI passes [`shutdown_signal`]).
/// `announce` receives the URLs once listening.
pub async fn serve(
    feed: Feed,
    ledger: Ledger,
    card: RateCard,
    quota: QuotaGate,
    mut options: ServeOptions,
    announce: impl FnOnce(&[String]),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener =
        TcpListener::bind(&options.listen)
            .await
            .map_err(|source| ServeError::Listen {
                address: options.listen.clone(),
                source,
            })?;
    let bound = listener.local_addr().map_err(ServeError::Http)?;
    let card = Arc::new(card);
    let (views, receiver) = watch::channel(Arc::new(View::default()));
    let reconciler = Arc::new(Mutex::new(
        Reconciler::new(
            feed,
            ledger,
            card.clone(),
            options.cost_center_key.clone(),
            views,
        )
        .with_history(options.history.clone())
        .with_following(options.following.clone())
        .with_archive(options.archive.clone()),
    ));
    let unread = options.unread_history.take().map(|unread| {
        // Said missing from the first view on.
        options.archive.set_unread_history(Some(unread.window));
        let (archive, card) = (options.archive.clone(), card.clone());
        tokio::spawn(read_history_later(
            unread,
            archive,
            card,
            reconciler.clone(),
        ))
    });
    reconcile_once(&reconciler).await;
    let periodic = {
        let reconciler = reconciler.clone();
        let every = options.reconcile_every;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                reconcile_once(&reconciler).await;
            }
        })
    };
    let background = options
        .archive
        .spawn(receiver.clone(), card.clone(), options.backfill.take());
    let quota = Arc::new(quota);
    let global = options.archive.spawn_global(quota.clone());
    let state = AppState {
        card,
        views: receiver,
        quota,
        archive: options.archive.clone(),
        focus: Arc::new(options.focus.clone()),
        auth: options.auth.clone(),
        reports: Arc::new(tokio::sync::Semaphore::new(options.reports_at_once.max(1))),
    };
    let app = router(state.clone());
    // One shutdown for both listeners.
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopping: watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stopped| *stopped).await;
    };
    let mut announced = urls(bound);
    let https = match &options.tls {
        Some(tls) => {
            let listener =
                TcpListener::bind(&tls.listen)
                    .await
                    .map_err(|source| ServeError::Listen {
                        address: tls.listen.clone(),
                        source,
                    })?;
            let port = listener.local_addr().map_err(ServeError::Http)?.port();
            announced.push(format!("https://localhost:{port}/admission/v1/validate"));
            Some(tokio::spawn(serve_tls(
                listener,
                webhook_router(state),
                tls.certificates.clone(),
                tls.clients.clone(),
                tls.check_every,
                until_stopped(stopping.clone()),
            )))
        }
        None => None,
    };
    announce(&announced);
    tracing::info!(address = %bound, "serving");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(until_stopped(stopping))
        .await;
    if let Some(https) = https {
        let _ = https.await;
    }
    periodic.abort();
    background
        .iter()
        .chain(&global)
        .chain(&unread)
        .for_each(tokio::task::JoinHandle::abort);
    // A last reconcile records the latest heartbeat before exiting.
    reconcile_once(&reconciler).await;
    tracing::info!("stopped");
    served.map_err(ServeError::Http)
}
