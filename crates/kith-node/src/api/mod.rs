//! The local API: HTTP on 127.0.0.1 only, every route behind the bearer
//! token kept in the home directory, requests for any other Host refused
//! (DNS rebinding), no CORS. The CLI sends its [`Call`]s here while a node
//! runs (`/api/call`); programs and the web app use the JSON routes of
//! [`routes`] and the event stream of [`stream`], described in
//! `openapi.json`; the app itself is served by [`app`]. [`hello`] lets a
//! client check it reached the node before it sends the token; [`server`]
//! bounds connections, timeouts and bodies.

mod app;
pub mod hello;
mod routes;
pub mod server;
mod stream;

pub use app::{Logins, login_url};

/// The OpenAPI description of the routes, kept in the repository.
pub const OPENAPI: &str = include_str!("openapi.json");

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyDeadlineLayer;

use crate::call::{Call, Reply};
use crate::handle::{CallError, ServiceHandle};
use crate::service::ActionError;

/// An error as the API reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable and machine-readable.
    pub code: String,
    /// For people.
    pub message: String,
    /// The HTTP status it is sent with: from the error's type.
    #[serde(skip, default = "internal")]
    status: StatusCode,
}

fn internal() -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

impl ApiError {
    /// An error of the API itself (a request it cannot serve), by code.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> ApiError {
        let status = match code {
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden_host" => StatusCode::FORBIDDEN,
            "not_found" => StatusCode::NOT_FOUND,
            "invalid" => StatusCode::BAD_REQUEST,
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
            "busy" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            code: code.into(),
            message: message.into(),
            status,
        }
    }
}

/// The HTTP status of an action's failure.
fn action_status(e: &ActionError) -> StatusCode {
    match e {
        ActionError::Invalid(_)
        | ActionError::ArchiveTooLarge { .. }
        | ActionError::Import(_)
        | ActionError::File { .. }
        | ActionError::Ambiguous { .. } => StatusCode::BAD_REQUEST,
        ActionError::UnknownPost(_)
        | ActionError::UnknownPerson(_)
        | ActionError::UnknownGroup(_) => StatusCode::NOT_FOUND,
        ActionError::NotYours(_) | ActionError::NotMember { .. } | ActionError::NotAdmin(_) => {
            StatusCode::FORBIDDEN
        }
        ActionError::DeletedPost(_) => StatusCode::GONE,
        ActionError::NotAdmitted(_) => StatusCode::CONFLICT,
        _ if e.code() == "disk_full" => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        ApiError {
            code: e.code().into(),
            message: e.to_string(),
            status: action_status(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    token: String,
    hosts: [String; 2],
    service: ServiceHandle,
    events: tokio::sync::broadcast::Sender<crate::events::LiveEvent>,
    logins: Logins,
    /// Set when the node stops: event streams end.
    stopping: watch::Receiver<bool>,
    metrics: crate::metrics::NodeMetrics,
    registry: crate::metrics::SharedRegistry,
}

/// What the API serves from.
#[derive(Debug)]
pub struct ApiParts {
    pub token: String,
    pub service: ServiceHandle,
    pub events: tokio::sync::broadcast::Sender<crate::events::LiveEvent>,
    pub logins: Logins,
    pub metrics: crate::metrics::NodeMetrics,
    pub registry: crate::metrics::SharedRegistry,
}

/// The routes, as the OpenAPI description lists them: `(method, path)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/call"),
    ("post", "/api/hello"),
    ("post", "/api/login"),
    ("post", "/api/login-url"),
    ("get", "/api/openapi.json"),
    ("get", "/api/status"),
    ("get", "/api/metrics"),
    ("get", "/api/whoami"),
    ("get", "/api/events"),
    ("get", "/api/feed"),
    ("post", "/api/posts"),
    ("get", "/api/posts/{id}"),
    ("put", "/api/posts/{id}"),
    ("delete", "/api/posts/{id}"),
    ("get", "/api/posts/{id}/history"),
    ("put", "/api/posts/{id}/reactions/{emoji}"),
    ("delete", "/api/posts/{id}/reactions/{emoji}"),
    ("get", "/api/profile"),
    ("put", "/api/profile"),
    ("get", "/api/people"),
    ("get", "/api/people/{id}"),
    ("put", "/api/people/{id}/follow"),
    ("delete", "/api/people/{id}/follow"),
    ("put", "/api/people/{id}/block"),
    ("delete", "/api/people/{id}/block"),
    ("put", "/api/people/{id}/mute"),
    ("delete", "/api/people/{id}/mute"),
    ("post", "/api/people/{id}/labels"),
    ("get", "/api/groups"),
    ("post", "/api/groups"),
    ("post", "/api/groups/join"),
    ("get", "/api/groups/{group}"),
    ("put", "/api/groups/{group}"),
    ("get", "/api/groups/{group}/invites"),
    ("post", "/api/groups/{group}/invites"),
    ("delete", "/api/groups/{group}/invites/{invite}"),
    ("delete", "/api/groups/{group}/members/{member}"),
    ("post", "/api/groups/{group}/members/{member}/promote"),
    ("post", "/api/groups/{group}/leave"),
    ("get", "/api/peers"),
    ("post", "/api/peers"),
    ("get", "/api/export"),
];

fn router(state: AppState) -> Router {
    use routes as r;
    Router::new()
        .route("/api/call", post(call))
        .route("/api/hello", post(hello::hello))
        .route("/api/login", post(app::login))
        .route("/api/login-url", post(app::new_login_url))
        .route("/api/openapi.json", get(r::openapi))
        .route("/api/status", get(r::status))
        .route("/api/metrics", get(r::metrics))
        .route("/api/whoami", get(r::whoami))
        .route("/api/events", get(stream::events))
        .route("/api/feed", get(r::feed))
        .route("/api/posts", post(r::create_post))
        .route(
            "/api/posts/{id}",
            get(r::thread).put(r::edit).delete(r::delete),
        )
        .route("/api/posts/{id}/history", get(r::history))
        .route(
            "/api/posts/{id}/reactions/{emoji}",
            put(r::react).delete(r::unreact),
        )
        .route("/api/profile", get(r::my_profile).put(r::set_profile))
        .route("/api/people", get(r::people))
        .route("/api/people/{id}", get(r::person))
        .route(
            "/api/people/{id}/follow",
            put(r::follow).delete(r::unfollow),
        )
        .route("/api/people/{id}/block", put(r::block).delete(r::unblock))
        .route("/api/people/{id}/mute", put(r::mute).delete(r::unmute))
        .route("/api/people/{id}/labels", post(r::labels))
        .route("/api/groups", get(r::groups).post(r::create_group))
        .route("/api/groups/join", post(r::join))
        .route("/api/groups/{group}", get(r::group).put(r::rename_group))
        .route(
            "/api/groups/{group}/invites",
            get(r::invites).post(r::create_invite),
        )
        .route("/api/groups/{group}/invites/{invite}", delete(r::revoke))
        .route(
            "/api/groups/{group}/members/{member}",
            delete(r::remove_member),
        )
        .route(
            "/api/groups/{group}/members/{member}/promote",
            post(r::promote),
        )
        .route("/api/groups/{group}/leave", post(r::leave))
        .route("/api/peers", get(r::peers).post(r::add_peer))
        .route("/api/export", get(r::export))
        .route("/", get(app::index))
        .route("/app.js", get(app::script))
        .route("/app.css", get(app::style))
        .fallback(not_found)
        .layer(RequestBodyDeadlineLayer::new(server::BODY_READ_TIMEOUT))
        // tower-http's limit replaces axum's default, as axum advises, so
        // that a body over it is recognised as such (413) when read.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(server::MAX_BODY_BYTES))
        .layer(middleware::map_response(errors_as_json))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new("not_found", "no such route (see /api/openapi.json)")
}

fn too_large() -> ApiError {
    ApiError::new(
        "too_large",
        format!(
            "the request body is larger than {} bytes",
            server::MAX_BODY_BYTES
        ),
    )
}

/// A request body that could not be read as JSON: too large (413), or
/// malformed or cut off (400).
pub(crate) fn rejected_body(e: JsonRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    ApiError::new("invalid", format!("bad request body: {}", e.body_text()))
}

/// Longest plain-text rejection [`errors_as_json`] quotes.
const MAX_REJECTION_TEXT: usize = 4096;

/// Every error the API answers is JSON (`{code, message}`) with a status
/// its description lists. Some are made before a handler runs, in plain
/// text: tower-http's refusal of a body declared too large (413), and
/// axum's refusals of a body, query or path it cannot read (400, 415, 422).
/// These are said again in JSON: too large stays 413, the rest are 400
/// `invalid` with axum's reason.
async fn errors_as_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error()) {
        return response;
    }
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => too_large().into_response(),
        StatusCode::BAD_REQUEST
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => {
            let text = axum::body::to_bytes(response.into_body(), MAX_REJECTION_TEXT)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            ApiError::new("invalid", format!("bad request: {text}")).into_response()
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new("method_not_allowed", "this route does not take that method")
                .into_response()
        }
        _ => response,
    }
}

/// Serves the API on `listener` until `shutdown` resolves; then ends the
/// event streams and stops within [`server::SHUTDOWN_GRACE`], whatever
/// clients hold open.
pub async fn serve(
    listener: tokio::net::TcpListener,
    parts: ApiParts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let (stopping, stopping_rx) = watch::channel(false);
    let state = AppState {
        token: parts.token,
        hosts: [
            format!("127.0.0.1:{}", addr.port()),
            format!("localhost:{}", addr.port()),
        ],
        service: parts.service,
        events: parts.events,
        logins: parts.logins,
        stopping: stopping_rx,
        metrics: parts.metrics,
        registry: parts.registry,
    };
    server::run(listener, router(state), stopping, shutdown).await;
    Ok(())
}

/// Refuses foreign hosts, and requests under `/api` without the token
/// (but the login, which takes a one-time code instead, and the hello,
/// which proves the token without revealing it). The app's own files carry
/// no data and need no token.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !state.hosts.iter().any(|h| h == host) {
        return ApiError::new(
            "forbidden_host",
            format!("requests for host `{host}` are refused"),
        )
        .into_response();
    }
    let path = request.uri().path();
    let open = path == "/api/login" || path == "/api/hello" || !path.starts_with("/api/");
    if open {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), state.token.as_bytes()) {
        return ApiError::new(
            "unauthorized",
            "missing or wrong bearer token (see api-token in the home directory)",
        )
        .into_response();
    }
    next.run(request).await
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn run(state: &AppState, call: Call) -> Result<Reply, ApiError> {
    state.service.call(call).await.map_err(|e| match e {
        CallError::Busy => ApiError::new("busy", e.to_string()),
        CallError::Stopped => ApiError::new("stopped", e.to_string()),
        CallError::Action(e) => e.into(),
    })
}

async fn call(
    State(state): State<AppState>,
    call: Result<Json<Call>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Reply>, ApiError> {
    let Json(call) = call.map_err(rejected_body)?;
    run(&state, call).await.map(Json)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The router with token `t` for host `h:1`, and no service thread:
    /// handlers that get as far as running a call answer "busy".
    fn app_without_service() -> Router {
        // A queue that is full and that nobody reads.
        let (inputs, rx) = tokio::sync::mpsc::channel(1);
        inputs
            .try_send(crate::runtime::ServiceInput::Tick)
            .expect("room for one");
        std::mem::forget(rx);
        let service = ServiceHandle::new(inputs);
        let (events, _) = tokio::sync::broadcast::channel(1);
        router(AppState {
            token: "t".into(),
            hosts: ["h:1".into(), "h:2".into()],
            service,
            events,
            logins: Logins::default(),
            metrics: Default::default(),
            registry: Default::default(),
            stopping: watch::channel(false).1,
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn an_oversized_body_is_refused_with_413_declared_or_streamed() {
        use tower::ServiceExt;
        let app = app_without_service();
        let request = |len: Option<usize>, body: axum::body::Body| {
            let mut r = axum::http::Request::builder()
                .method("POST")
                .uri("/api/posts")
                .header("host", "h:1")
                .header("authorization", "Bearer t")
                .header("content-type", "application/json");
            if let Some(len) = len {
                r = r.header("content-length", len);
            }
            r.body(body).unwrap()
        };
        let declared = request(Some(server::MAX_BODY_BYTES + 1), axum::body::Body::empty());
        // A chunked body, whose size nobody declared, over the limit.
        let chunk = axum::body::Bytes::from(vec![b' '; 64 << 10]);
        let chunks = (0..=server::MAX_BODY_BYTES / chunk.len())
            .map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
        let streamed = request(
            None,
            axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
        );
        runtime().block_on(async {
            for r in [declared, streamed] {
                let response = app.clone().oneshot(r).await.unwrap();
                assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
                let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                    .await
                    .unwrap();
                let err: ApiError = serde_json::from_slice(&body).expect("a JSON error");
                assert_eq!(err.code, "too_large");
            }
        });
    }

    #[test]
    fn an_actions_http_status_comes_from_its_type() {
        let post = kith_core::PostId([1; 16]);
        let group = kith_core::SpaceId([2; 32]);
        let cases = [
            (ActionError::Invalid("no".into()), 400),
            (ActionError::UnknownGroup("ops".into()), 404),
            (ActionError::UnknownPost(post), 404),
            (
                ActionError::Ambiguous {
                    among: "your groups".into(),
                    name: "ops".into(),
                    instead: "the group's id",
                },
                400,
            ),
            (
                ActionError::NotMember {
                    name: None,
                    id: group,
                },
                403,
            ),
            (ActionError::NotAdmin("ops".into()), 403),
            (ActionError::NotYours(post), 403),
            (ActionError::DeletedPost(post), 410),
            (
                ActionError::NotAdmitted("the invite has expired".into()),
                409,
            ),
            (ActionError::NodeOnly, 500),
        ];
        for (error, status) in cases {
            let what = format!("{error:?}");
            assert_eq!(ApiError::from(error).status.as_u16(), status, "{what}");
        }
    }

    #[test]
    fn the_openapi_description_lists_exactly_the_routes() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let described: BTreeSet<(String, String)> = spec["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .expect("operations")
                    .keys()
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(described, served);
        // And the router serves each of them: none falls to the 404 fallback.
        let app = app_without_service();
        runtime().block_on(async {
            use tower::ServiceExt;
            for (method, path) in ROUTES {
                let concrete = path
                    .replace("{id}", "x")
                    .replace("{emoji}", "x")
                    .replace("{group}", "x")
                    .replace("{invite}", "x")
                    .replace("{member}", "x");
                let request = axum::http::Request::builder()
                    .method(method.to_ascii_uppercase().as_str())
                    .uri(&concrete)
                    .header("host", "h:1")
                    .header("authorization", "Bearer t")
                    .body(axum::body::Body::empty())
                    .unwrap();
                let response = app.clone().oneshot(request).await.unwrap();
                // Routed requests reach a handler (which finds no service
                // thread here); others fall to the 404 or get a 405.
                assert!(
                    ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]
                        .contains(&response.status()),
                    "{method} {path} is not routed: {}",
                    response.status()
                );
            }
        });
    }
}
