//! The handle async code (the API, the node's own start-up) calls the
//! service thread with: one call in, one answer out.

use tokio::sync::{mpsc, oneshot};

use crate::call::{Call, Reply};
use crate::runtime::ServiceInput;
use crate::service::ActionError;

/// A way into the service thread.
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    inputs: mpsc::Sender<ServiceInput>,
}

/// Why a call got no answer from the service thread, or its answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Its input queue is full: try again.
    #[error("the node is busy; try again")]
    Busy,
    /// It has stopped, or stops before answering.
    #[error("the node is stopping")]
    Stopped,
    #[error(transparent)]
    Action(#[from] ActionError),
}

impl ServiceHandle {
    pub fn new(inputs: mpsc::Sender<ServiceInput>) -> ServiceHandle {
        ServiceHandle { inputs }
    }

    /// Runs `call` on the service thread. A full queue is refused at once
    /// ([`CallError::Busy`]) rather than waited on.
    pub async fn call(&self, call: Call) -> Result<Reply, CallError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .try_send(ServiceInput::Call(call, tx))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => CallError::Busy,
                mpsc::error::TrySendError::Closed(_) => CallError::Stopped,
            })?;
        Ok(rx.await.map_err(|_| CallError::Stopped)??)
    }
}
