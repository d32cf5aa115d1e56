//! `GET /api/events`: live events as Server-Sent Events. Behind the bearer
//! token like every route (the app reads the stream with `fetch`, which can
//! send the header, not `EventSource`, which cannot). A stream that falls
//! behind the node's bounded buffer gets a `resync` event and goes on.
//! Every stream ends when the node stops, so that open tabs never keep it
//! from stopping.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::events::LiveEvent;

pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>> {
    let rx = state.events.subscribe();
    let mut stopping = state.stopping.clone();
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(_)) => LiveEvent::Resync,
            Err(RecvError::Closed) => return None,
        };
        let sse = Event::default()
            .event(event.name())
            .json_data(&event)
            .unwrap_or_else(|_| Event::default().event("resync").data("{}"));
        Some((Ok(sse), rx))
    })
    .take_until(stopped);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
