//! Answering a peer's requests from the replica.

use super::Engine;
use crate::DeviceId;
use crate::sync::{Refusal, Replica, Request, Response};

impl Engine {
    /// Answers a peer's request from the replica.
    pub(super) fn answer(
        &mut self,
        peer: DeviceId,
        request: Request,
        replica: &mut impl Replica,
    ) -> Response {
        let asker = replica.identity_of(&peer).ok().flatten();
        let result = match request {
            Request::Hello => return Response::Hello(replica.certificate()),
            Request::Join {
                group,
                invite,
                proof,
            } => {
                let Some(joiner) = asker else {
                    return Response::Refused(Refusal::Unidentified);
                };
                return match replica.admit(&group, &invite, &proof, joiner, peer) {
                    Ok(()) => Response::Joined,
                    Err(why) => Response::Refused(why),
                };
            }
            Request::Versions {
                owners,
                profiles,
                groups,
            } => replica
                .versions(
                    &owners.into_iter().collect(),
                    &profiles.into_iter().collect(),
                    &groups.into_iter().collect(),
                    asker,
                )
                .map(Response::Versions),
            Request::Changes {
                doc,
                have,
                max_bytes,
            } => {
                let max = (max_bytes as usize)
                    .min(self.config.batch_bytes as usize)
                    .max(1);
                replica
                    .changes_since(&doc, &have, asker, max)
                    .map(Response::Changes)
            }
        };
        result.unwrap_or_else(|e| Response::Refused(Refusal::other(&e.0)))
    }
}
