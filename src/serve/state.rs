//! What every handler of the HTTP API and the console shares, and how each runs a report.

use std::sync::Arc;

use axum::http::StatusCode;
use tokio::sync::{Semaphore, watch};

use super::archive::Archive;
use super::auth::Auth;
use super::quota::QuotaGate;
use super::view::View;
use crate::output::FocusSettings;
use crate::pricing::RateCard;
use crate::reporting::ReportError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The rate card prices are read from.
    pub card: Arc<RateCard>,
    /// The latest view.
    pub views: watch::Receiver<Arc<View>>,
    /// Budgets and reservations.
    pub quota: Arc<QuotaGate>,
    /// Prometheus and the rollup store, when configured.
    pub archive: Arc<Archive>,
    /// The names the FOCUS export gives the platform.
    pub focus: Arc<FocusSettings>,
    /// Who may read chargebacks and ask quota checks.
    pub auth: Arc<Auth>,
    /// Reports computed at once (`server.reports_at_once`); the rest wait.
    pub reports: Arc<Semaphore>,
}

impl AppState {
    pub(super) fn view(&self) -> Arc<View> {
        self.views.borrow().clone()
    }
}

/// What a report that failed is answered: 400 when the asker can mend it (too many lines),
/// else 500.
pub(super) fn status_of(e: &ReportError) -> StatusCode {
    if e.is_the_askers() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Runs `work` on the blocking pool at background priority, under the report limit
/// (`server.reports_at_once`) the API's streamed reports share: how the console's reports are
/// priced. A failure is the status to answer ([`status_of`]) and why, for the caller to answer
/// in its own shape (the console's, a page).
pub(super) async fn report_job<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&tokio::runtime::Handle, &Archive, &RateCard) -> Result<T, ReportError>
    + Send
    + 'static,
) -> Result<T, (StatusCode, String)> {
    let Ok(permit) = state.reports.clone().acquire_owned().await else {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()));
    };
    let (archive, card) = (state.archive.clone(), state.card.clone());
    let runtime = tokio::runtime::Handle::current();
    let done = super::background::spawn_background(move || {
        let _permit = permit;
        work(&runtime, &archive, &card)
    })
    .await;
    match done {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err((status_of(&e), e.to_string())),
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the report failed: {e}"),
        )),
    }
}
