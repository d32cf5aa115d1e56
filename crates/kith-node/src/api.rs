//! The local API: HTTP on 127.0.0.1 only, every route behind the bearer
//! token kept in the home directory, requests for any other Host refused
//! (DNS rebinding), no CORS. The CLI sends its [`Call`]s here while a node
//! runs.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    fn new(code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self.code.as_str() {
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden_host" => StatusCode::FORBIDDEN,
            "invalid" | "archive_too_large" | "import_refused" | "file" => StatusCode::BAD_REQUEST,
            "unknown_post" | "unknown_person" => StatusCode::NOT_FOUND,
            "not_yours" => StatusCode::FORBIDDEN,
            "busy" => StatusCode::SERVICE_UNAVAILABLE,
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
struct AppState {
    token: String,
    hosts: [String; 2],
    service: mpsc::Sender<ServiceInput>,
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    token: String,
    service: mpsc::Sender<ServiceInput>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let state = AppState {
        token,
        hosts: [
            format!("127.0.0.1:{}", addr.port()),
            format!("localhost:{}", addr.port()),
        ],
        service,
    };
    let app = Router::new()
        .route("/api/call", post(call))
        .route("/api/status", get(status))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Refuses foreign hosts and requests without the token.
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
    Json(call): Json<Call>,
) -> Result<Json<Reply>, ApiError> {
    run(&state, call).await.map(Json)
}

async fn status(State(state): State<AppState>) -> Result<Json<Reply>, ApiError> {
    run(&state, Call::Status).await.map(Json)
}
