//! Who may read the finance API and ask quota checks (`[auth]`).
//!
//! With `mode = "token"`, chargeback and FOCUS requests need a bearer token listed in
//! `tokens_file` (a mounted Secret, one token per line; read again when it changes), compared
//! by SHA-256 digest in constant time. With `mode = "token_review"`, the token is sent to the
//! Kubernetes API in a TokenReview instead, and `finance_users`/`finance_groups` (when set) say
//! who may read. Whenever auth is on, the quota check also accepts a projected service-account
//! token issued for `quota_audience` (what Kyverno ≥ 1.18 sends), verified by TokenReview.
//! Answers of the API server are reused for `review_cache_seconds`. `/metrics`, `/healthz`,
//! `/readyz` and the OpenAPI document stay open.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::config::{AuthMode, AuthSettings};

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Chargeback and FOCUS.
    Finance,
    /// The quota check.
    Quota,
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No acceptable credentials: 401.
    Unauthenticated(String),
    /// Known, but not allowed: 403.
    Forbidden(String),
}

/// SHA-256 of a token: what is kept and compared.
type TokenDigest = [u8; 32];

fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// A file's modification time and size: when either changes, it is read again.
type Stamp = (SystemTime, u64);

/// The tokens of a file, read again when it changes.
struct TokenFile {
    path: PathBuf,
    read: Mutex<(Option<Stamp>, Vec<TokenDigest>)>,
}

impl TokenFile {
    fn open(path: PathBuf) -> Result<Self, String> {
        let file = TokenFile {
            path,
            read: Mutex::new((None, Vec::new())),
        };
        if file.refresh()?.is_empty() {
            return Err(format!(
                "auth.tokens_file {}: holds no token (one per line)",
                file.path.display()
            ));
        }
        Ok(file)
    }

    /// The current digests; on a read error after a good read, the last good ones.
    fn refresh(&self) -> Result<Vec<TokenDigest>, String> {
        let fail = |e: std::io::Error| format!("auth.tokens_file {}: {e}", self.path.display());
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = std::fs::metadata(&self.path)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .map_err(fail);
        match stamp {
            Ok(stamp) if read.0 == Some(stamp) => {}
            Ok(stamp) => {
                let text = std::fs::read_to_string(&self.path).map_err(fail)?;
                let tokens = text
                    .lines()
                    .map(|line| line.split('#').next().unwrap_or_default().trim())
                    .filter(|token| !token.is_empty())
                    .map(digest)
                    .collect();
                *read = (Some(stamp), tokens);
            }
            Err(e) if read.0.is_some() => {
                tracing::warn!(error = %e, "keeping the tokens read before");
            }
            Err(e) => return Err(e),
        }
        Ok(read.1.clone())
    }

    /// Whether `token` is listed, comparing every digest in constant time.
    fn accepts(&self, token: &str) -> bool {
        let wanted = digest(token);
        self.refresh()
            .unwrap_or_default()
            .iter()
            .fold(subtle::Choice::from(0), |found, listed| {
                found | listed.ct_eq(&wanted)
            })
            .into()
    }
}

/// An authenticated Kubernetes user.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reviewed {
    user: String,
    groups: Vec<String>,
}

/// A token and the audience it was reviewed for.
type ReviewKey = (TokenDigest, Option<String>);
/// When a review was answered, and its answer.
type Answer = (Instant, Result<Reviewed, String>);

/// TokenReviews through the API server, with answers cached by token digest and audience.
struct Reviewer {
    client: kube::Client,
    ttl: Duration,
    cache: Mutex<HashMap<ReviewKey, Answer>>,
}

/// Entries kept at most; the cache is emptied when it grows past this.
const CACHE_LIMIT: usize = 10_000;

impl Reviewer {
    async fn review(&self, token: &str, audience: Option<&str>) -> Result<Reviewed, String> {
        let key = (digest(token), audience.map(String::from));
        if let Some((at, answer)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            let ttl = if answer.is_ok() {
                self.ttl
            } else {
                self.ttl.min(Duration::from_secs(10))
            };
            if at.elapsed() < ttl {
                return answer.clone();
            }
        }
        let answer = self.ask(token, audience).await;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), answer.clone()));
        answer
    }

    async fn ask(&self, token: &str, audience: Option<&str>) -> Result<Reviewed, String> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: audience.map(|a| vec![a.to_string()]),
            },
            ..TokenReview::default()
        };
        let api: kube::Api<TokenReview> = kube::Api::all(self.client.clone());
        let answer = api
            .create(&kube::api::PostParams::default(), &review)
            .await
            .map_err(|e| format!("the Kubernetes API could not review the token: {e}"))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(status
                .error
                .unwrap_or_else(|| "the token was not accepted".into()));
        }
        if let Some(audience) = audience
            && !status
                .audiences
                .unwrap_or_default()
                .iter()
                .any(|a| a == audience)
        {
            return Err(format!("the token is not issued for audience {audience}"));
        }
        let UserInfo {
            username, groups, ..
        } = status.user.unwrap_or_default();
        Ok(Reviewed {
            user: username.unwrap_or_default(),
            groups: groups.unwrap_or_default(),
        })
    }
}

/// The authentication of a running service.
pub struct Auth {
    settings: AuthSettings,
    tokens: Option<TokenFile>,
    reviewer: Option<Reviewer>,
}

impl Default for Auth {
    /// Everything open.
    fn default() -> Self {
        Auth {
            settings: AuthSettings::default(),
            tokens: None,
            reviewer: None,
        }
    }
}

impl Auth {
    /// Authentication as `settings` say, without TokenReviews yet (see [`Auth::with_reviews`]).
    pub fn new(settings: AuthSettings) -> Result<Self, String> {
        let tokens = match (settings.mode, &settings.tokens_file) {
            (AuthMode::Token, Some(path)) => Some(TokenFile::open(path.clone())?),
            (AuthMode::Token, None) => {
                return Err("auth.mode token needs auth.tokens_file".into());
            }
            _ => None,
        };
        Ok(Auth {
            settings,
            tokens,
            reviewer: None,
        })
    }

    /// Whether this configuration reviews tokens, and so wants a Kubernetes client.
    pub fn wants_reviews(&self) -> bool {
        self.settings.mode != AuthMode::None
    }

    /// Adds TokenReviews through `client`. `token_review` cannot do without one; `token`
    /// without one accepts only the listed tokens for quota checks too.
    pub fn with_reviews(mut self, client: Option<kube::Client>) -> Result<Self, String> {
        if self.settings.mode == AuthMode::TokenReview && client.is_none() {
            return Err(
                "auth.mode token_review needs the Kubernetes API: run in a cluster or set KUBECONFIG"
                    .into(),
            );
        }
        self.reviewer = client
            .filter(|_| self.wants_reviews())
            .map(|client| Reviewer {
                client,
                ttl: Duration::from_secs(self.settings.review_cache_seconds),
                cache: Mutex::default(),
            });
        Ok(self)
    }

    /// Whether a request with `authorization` (the header's value) may reach a `scope` route.
    pub async fn check(&self, scope: Scope, authorization: Option<&str>) -> Result<(), Refusal> {
        if self.settings.mode == AuthMode::None {
            return Ok(());
        }
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Refusal::Unauthenticated(
                    "a bearer token is required: send Authorization: Bearer <token>".into(),
                )
            })?;
        if self.tokens.as_ref().is_some_and(|t| t.accepts(token)) {
            return Ok(());
        }
        let (audience, users, groups, what): (_, &[String], &[String], _) = match scope {
            Scope::Finance if self.settings.mode == AuthMode::Token => {
                return Err(Refusal::Unauthenticated(
                    "the bearer token is not one of auth.tokens_file's".into(),
                ));
            }
            Scope::Finance => (
                None,
                &self.settings.finance_users,
                &self.settings.finance_groups,
                "read chargebacks (auth.finance_users, auth.finance_groups)",
            ),
            Scope::Quota => (
                Some(self.settings.quota_audience.as_str()),
                &self.settings.quota_users,
                &[],
                "ask quota checks (auth.quota_users)",
            ),
        };
        let Some(reviewer) = &self.reviewer else {
            return Err(Refusal::Unauthenticated(
                "the bearer token is not one of auth.tokens_file's".into(),
            ));
        };
        let who = reviewer
            .review(token, audience)
            .await
            .map_err(Refusal::Unauthenticated)?;
        let open = users.is_empty() && groups.is_empty();
        if open || users.contains(&who.user) || who.groups.iter().any(|g| groups.contains(g)) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!("{} may not {what}", who.user)))
        }
    }
}

/// The cookie the console keeps a reader's token in (HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "tollgate_token";

/// The credentials of a request: its `Authorization` header, else — for a GET, which reads —
/// the console's session cookie, as a bearer token. A cookie never authorizes a POST (a quota
/// check holds budget).
pub fn credentials(request: &axum::http::request::Parts) -> Option<String> {
    if let Some(value) = request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return Some(value.to_string());
    }
    if request.method != axum::http::Method::GET {
        return None;
    }
    request
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            let token = (name == SESSION_COOKIE).then(|| from_hex(value))??;
            Some(format!("Bearer {token}"))
        })
}

/// A token as a cookie value: hex, so that any token fits in a cookie.
pub fn session_value(token: &str) -> String {
    token.bytes().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(value: &str) -> Option<String> {
    if value.is_empty() || !value.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..value.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(value.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Middleware: refuses requests `auth` does not let into `scope`, with a JSON 401 or 403.
pub async fn require(
    State((auth, scope)): State<(Arc<Auth>, Scope)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let authorization = credentials(&parts);
    let request = Request::from_parts(parts, body);
    match auth.check(scope, authorization.as_deref()).await {
        Ok(()) => next.run(request).await,
        Err(Refusal::Unauthenticated(message)) => {
            let mut response = super::reply::error(StatusCode::UNAUTHORIZED, message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tollgate\""),
            );
            response
        }
        Err(Refusal::Forbidden(message)) => super::reply::error(StatusCode::FORBIDDEN, message),
    }
}
