//! The local API: HTTP on 127.0.0.1 only, every route behind the bearer
//! token kept in the home directory, requests for any other Host refused
//! (DNS rebinding), no CORS. The CLI sends its [`Call`]s here while a node
//! runs (`/api/call`); programs and the web app use the JSON routes of
//! [`routes`] and the event stream of [`stream`], described in
//! `openapi.json`; the app itself is served by [`app`].

mod app;
mod routes;
mod stream;

pub use app::{Logins, login_url};

/// The OpenAPI description of the routes, kept in the repository.
pub const OPENAPI: &str = include_str!("openapi.json");

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::call::{Call, Reply};
use crate::runtime::ServiceInput;
use crate::service::ActionError;

/// An error as the API reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable and machine-readable.
    pub code: String,
    /// For people.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self.code.as_str() {
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden_host" => StatusCode::FORBIDDEN,
            "not_found" => StatusCode::NOT_FOUND,
            "invalid" | "archive_too_large" | "import_refused" | "file" => StatusCode::BAD_REQUEST,
            "unknown_post" | "unknown_person" => StatusCode::NOT_FOUND,
            "not_yours" => StatusCode::FORBIDDEN,
            "busy" => StatusCode::SERVICE_UNAVAILABLE,
            "disk_full" => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self)).into_response()
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    token: String,
    hosts: [String; 2],
    service: mpsc::Sender<ServiceInput>,
    events: tokio::sync::broadcast::Sender<crate::events::LiveEvent>,
    logins: Logins,
}

/// What the API serves from.
#[derive(Debug)]
pub struct ApiParts {
    pub token: String,
    pub service: mpsc::Sender<ServiceInput>,
    pub events: tokio::sync::broadcast::Sender<crate::events::LiveEvent>,
    pub logins: Logins,
}

/// The routes, as the OpenAPI description lists them: `(method, path)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/call"),
    ("post", "/api/login"),
    ("post", "/api/login-url"),
    ("get", "/api/openapi.json"),
    ("get", "/api/status"),
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
        .route("/api/login", post(app::login))
        .route("/api/login-url", post(app::new_login_url))
        .route("/api/openapi.json", get(r::openapi))
        .route("/api/status", get(r::status))
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
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new("not_found", "no such route (see /api/openapi.json)")
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    parts: ApiParts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let state = AppState {
        token: parts.token,
        hosts: [
            format!("127.0.0.1:{}", addr.port()),
            format!("localhost:{}", addr.port()),
        ],
        service: parts.service,
        events: parts.events,
        logins: parts.logins,
    };
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Refuses foreign hosts, and requests under `/api` without the token
/// (but the login, which takes a one-time code instead). The app's own
/// files carry no data and need no token.
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
    let open = path == "/api/login" || !path.starts_with("/api/");
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
    let (tx, rx) = oneshot::channel();
    state
        .service
        .try_send(ServiceInput::Api(call, tx))
        .map_err(|_| ApiError::new("busy", "the node is busy; try again"))?;
    let reply = rx
        .await
        .map_err(|_| ApiError::new("stopped", "the node is stopping"))?;
    Ok(reply?)
}

async fn call(
    State(state): State<AppState>,
    call: Result<Json<Call>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Reply>, ApiError> {
    let Json(call) =
        call.map_err(|e| ApiError::new("invalid", format!("bad call: {}", e.body_text())))?;
    run(&state, call).await.map(Json)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

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
        // No service thread: handlers that get that far answer "busy".
        let (service, rx) = mpsc::channel(1);
        drop(rx);
        let (events, _) = tokio::sync::broadcast::channel(1);
        let app = router(AppState {
            token: "t".into(),
            hosts: ["h:1".into(), "h:2".into()],
            service,
            events,
            logins: Logins::default(),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
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
