//! The one shape of an error answer of the HTTP API's routes (the console, a page for people,
//! answers its own: `console::refused`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer: `{"error": "…"}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong and what to send instead.
    pub error: String,
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}
