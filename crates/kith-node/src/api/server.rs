//! How the API takes connections, so that nobody who can reach 127.0.0.1
//! can exhaust the node or keep it from stopping:
//!
//! - at most [`MAX_CONNECTIONS`] are served at once; more wait in the
//!   listen backlog (where they cost the node no file descriptor) until one
//!   closes;
//! - a connection that sends no complete request head within
//!   [`HEADER_READ_TIMEOUT`] is closed, whether it is new or kept alive
//!   between requests, so idle sockets hold a slot only briefly;
//! - a request body must arrive within [`BODY_READ_TIMEOUT`] and be at most
//!   [`MAX_BODY_BYTES`] (larger gets 413);
//! - on shutdown the listener closes, event streams end, and connections
//!   still open after [`SHUTDOWN_GRACE`] are dropped.
//!
//! The limits are hyper's and tower-http's own settings; this module only
//! counts connections and owns their tasks.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Most API connections served at once. The web app holds two or three
/// (its event stream among them) and each CLI command one, so this is
/// plenty; it stays well below the usual soft limit of 1024 open files,
/// which the swarm's connections (`kith_net::MAX_CONNECTIONS` and its
/// pending ones) share.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a connection may take to send a whole request head, counted
/// from when the node starts reading it (on a kept-alive connection: from
/// the end of the previous response). Local clients send theirs at once;
/// with [`MAX_CONNECTIONS`] this bounds how long idle sockets can keep a
/// real request waiting: about `HEADER_READ_TIMEOUT` per
/// `MAX_CONNECTIONS` of them queued ahead of it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a request body may take to arrive in full.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body. Bodies are small JSON (a post is at most
/// 10,000 characters; archives are imported by path), so this is generous.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long shutdown waits for open requests to be answered before it
/// drops their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves `app` on `listener` until `shutdown` resolves, then sets
/// `stopping` (which ends the event streams) and stops within
/// [`SHUTDOWN_GRACE`].
pub(super) async fn run(
    listener: TcpListener,
    app: Router,
    stopping: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next() => {}
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((io, _)) => {
                        connections.spawn(connection(io, app.clone(), stopping.subscribe()));
                    }
                    Err(e) => accept_failed(e).await,
                }
            }
        }
    }
    // Connections still in the backlog are refused from here on.
    drop(listener);
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "dropping API connections still open after the grace period"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection until it closes; once `stopping` is set, finishes
/// the request in progress and closes.
async fn connection(io: TcpStream, app: Router, mut stopping: watch::Receiver<bool>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = async { let _ = stopping.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and clients that go away are routine here.
        tracing::debug!(error = %e, "API connection ended");
    }
}

/// Backs off after a failed accept: a connection reset before it was
/// accepted is nothing, but running out of file descriptors would otherwise
/// spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "cannot accept an API connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
