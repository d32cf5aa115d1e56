//! `POST /api/hello`: how a client checks that the program listening on a
//! node's address is that node *before* it sends the bearer token.
//!
//! `node.json` outlives a node that crashed, and another program may listen
//! on its port later. So the CLI sends a fresh random challenge, without the
//! token; the node answers with [`proof`], a MAC of the challenge keyed by
//! the token, which only a holder of the token can compute and which tells
//! nothing about it. The CLI checks it with [`verify`] and sends the token
//! only to a node that passed.
//!
//! The MAC is keyed BLAKE2b-256 with the personalisation
//! [`PERSONAL`] (so it cannot be confused with any other use of the token),
//! keyed with BLAKE2b-256 of the token, over the challenge's bytes.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use blake2::digest::consts::U32;
use blake2::digest::{Digest, FixedOutput, Mac, Update};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, rejected_body};

/// Domain separation of the proof (BLAKE2b's personalisation, 16 bytes).
pub const PERSONAL: &[u8; 16] = b"kith-api-hello-1";
/// Fewest and most characters a challenge may have.
pub const CHALLENGE_CHARS: std::ops::RangeInclusive<usize> = 32..=128;

/// The request of `POST /api/hello`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Fresh random text chosen by the client.
    pub challenge: String,
}

/// The answer to a [`Hello`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloReply {
    /// [`proof`] of the challenge, in hex.
    pub proof: String,
}

fn mac(token: &str) -> blake2::Blake2bMac<U32> {
    let key = blake2::Blake2b::<U32>::digest(token.trim().as_bytes());
    blake2::Blake2bMac::<U32>::new_with_salt_and_personal(&key, &[], PERSONAL)
        .expect("a 32-byte key and a 16-byte personalisation are within BLAKE2b's limits")
}

/// The proof that the node holds `token`, for `challenge`, in hex.
pub fn proof(token: &str, challenge: &str) -> String {
    let mut m = mac(token);
    Update::update(&mut m, challenge.as_bytes());
    data_encoding::HEXLOWER.encode(&m.finalize_fixed())
}

/// Whether `proof` (hex) is the proof for `challenge` under `token`;
/// compares in constant time.
pub fn verify(token: &str, challenge: &str, proof: &str) -> bool {
    let Ok(bytes) = data_encoding::HEXLOWER_PERMISSIVE.decode(proof.as_bytes()) else {
        return false;
    };
    let mut m = mac(token);
    Update::update(&mut m, challenge.as_bytes());
    m.verify_slice(&bytes).is_ok()
}

pub(crate) async fn hello(
    axum::extract::State(state): axum::extract::State<AppState>,
    b: Result<Json<Hello>, JsonRejection>,
) -> Result<Json<HelloReply>, ApiError> {
    let Json(hello) = b.map_err(rejected_body)?;
    if !CHALLENGE_CHARS.contains(&hello.challenge.len()) {
        return Err(ApiError::new(
            "invalid",
            format!(
                "a challenge has {} to {} characters",
                CHALLENGE_CHARS.start(),
                CHALLENGE_CHARS.end()
            ),
        ));
    }
    Ok(Json(HelloReply {
        proof: proof(&state.token, &hello.challenge),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_with_its_token_and_challenge() {
        let challenge = "c".repeat(64);
        let p = proof("alice-token", &challenge);
        assert!(verify("alice-token", &challenge, &p));
        assert!(!verify("mallory-token", &challenge, &p));
        assert!(!verify("alice-token", &"d".repeat(64), &p));
        assert!(!verify("alice-token", &challenge, "not hex"));
        assert!(!verify("alice-token", &challenge, &p[..62]));
        assert!(!p.contains("alice-token"));
    }
}
