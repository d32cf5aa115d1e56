//! The web app: its files, embedded in the binary and served at `/`, and the
//! one-time login codes that hand a browser the API token.
//!
//! The app's files hold no data and need no token (a browser cannot send a
//! header when it navigates); everything under `/api` does. `kith node`
//! prints, and `kith open` asks for, a URL whose fragment carries a one-time
//! code; the app trades it at `POST /api/login` for the token, keeps the
//! token in the tab's session storage, and sends it as a header on every
//! request: a cookie never authorises anything, so another site cannot make
//! the browser act (CSRF). Codes are random, single use, expire after ten
//! minutes, and at most a few are outstanding.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};

/// How long a login code stays usable.
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(600);
/// Most login codes outstanding; minting more forgets the oldest.
const MAX_CODES: usize = 8;

/// The app's Content-Security-Policy: its own scripts and styles only, no
/// inline script, requests to this node only, images only from itself or
/// `data:` (QR codes), no frames, no forms posting elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Outstanding one-time login codes.
#[derive(Debug, Default, Clone)]
pub struct Logins(Arc<Mutex<VecDeque<(String, Instant)>>>);

impl Logins {
    /// A fresh code.
    pub fn mint(&self) -> Result<String, kith_core::RandomError> {
        let bytes = kith_core::keys::random_bytes::<16>()?;
        let code = data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase();
        let mut codes = self.0.lock().expect("never poisoned");
        if codes.len() >= MAX_CODES {
            codes.pop_front();
        }
        codes.push_back((code.clone(), Instant::now()));
        Ok(code)
    }

    /// Uses up `code` if it is outstanding and fresh.
    fn redeem(&self, code: &str) -> bool {
        let mut codes = self.0.lock().expect("never poisoned");
        codes.retain(|(_, at)| at.elapsed() < LOGIN_CODE_TTL);
        match codes
            .iter()
            .position(|(c, _)| super::constant_time_eq(c.as_bytes(), code.as_bytes()))
        {
            Some(i) => {
                codes.remove(i);
                true
            }
            None => false,
        }
    }
}

/// The URL that logs a browser in with `code`.
pub fn login_url(api: &str, code: &str) -> String {
    format!("http://{api}/#login={code}")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    code: String,
}

/// `POST /api/login`: a one-time code for the API token.
pub async fn login(
    State(s): State<AppState>,
    b: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = b.map_err(|e| match super::rejected_body(e) {
        too_large if too_large.code == "too_large" => too_large,
        _ => ApiError::new("invalid", "send {\"code\": \"…\"}"),
    })?;
    if !s.logins.redeem(b.code.trim()) {
        return Err(ApiError::new(
            "unauthorized",
            "this login link was used already or has expired: run `kith open` for a new one",
        ));
    }
    Ok(Json(json!({ "token": s.token })).into_response())
}

/// `POST /api/login-url`: a fresh login URL, for `kith open`.
pub async fn new_login_url(State(s): State<AppState>) -> Result<Response, ApiError> {
    let code = s
        .logins
        .mint()
        .map_err(|e| ApiError::new("internal", e.to_string()))?;
    Ok(Json(json!({ "url": login_url(&s.hosts[0], &code) })).into_response())
}

const INDEX: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/app.js");
const STYLE: &str = include_str!("../../web/app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
