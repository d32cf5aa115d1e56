//! Why a peer refused a request, as the asker acts on it (proto/README.md
//! §13): by code, never by comparing reason strings.

use crate::group::JoinRefusal;
use crate::proto;

/// Longest reason kept from a peer's refusal, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The asker has not said who it is yet: it asks again after its Hello.
    #[error("say who you are (hello) first")]
    Unidentified,
    /// A join the group's rules refuse.
    #[error("{0}")]
    Join(JoinRefusal),
    /// Any other reason; for logs only.
    #[error("{0}")]
    Other(String),
}

impl Refusal {
    /// A join refusal another member may answer differently: it is no
    /// member itself, or has not heard of the invite yet. Every member
    /// gives any other join refusal alike.
    pub fn may_differ_elsewhere(&self) -> bool {
        matches!(
            self,
            Refusal::Join(JoinRefusal::UnknownGroup | JoinRefusal::UnknownInvite)
        )
    }

    /// The wire form: a code where there is one, else the bare reason
    /// (`refused`, which every version reads).
    pub(crate) fn to_proto(&self) -> proto::sync_response::Response {
        use proto::RefusalCode as C;
        use proto::sync_response::Response as R;
        let code = match self {
            Refusal::Other(reason) => return R::Refused(reason.clone()),
            Refusal::Unidentified => C::RefusalUnidentified,
            Refusal::Join(j) => match j {
                JoinRefusal::UnknownGroup => C::RefusalUnknownGroup,
                JoinRefusal::UnknownInvite => C::RefusalUnknownInvite,
                JoinRefusal::Revoked => C::RefusalRevoked,
                JoinRefusal::Expired => C::RefusalExpired,
                JoinRefusal::UsedUp => C::RefusalUsedUp,
                JoinRefusal::BadProof => C::RefusalBadProof,
                JoinRefusal::AlreadyMember => C::RefusalAlreadyMember,
                JoinRefusal::RemovedSince => C::RefusalRemovedSince,
            },
        };
        R::Refusal(proto::Refusal {
            code: code as i32,
            reason: self.to_string(),
        })
    }

    /// Reads a coded refusal; a code this version does not know reads as
    /// [`Refusal::Other`] with its reason.
    pub(crate) fn from_proto(p: proto::Refusal) -> Refusal {
        use proto::RefusalCode as C;
        let join = |j| Refusal::Join(j);
        match C::try_from(p.code).unwrap_or(C::RefusalOther) {
            C::RefusalUnidentified => Refusal::Unidentified,
            C::RefusalUnknownGroup => join(JoinRefusal::UnknownGroup),
            C::RefusalUnknownInvite => join(JoinRefusal::UnknownInvite),
            C::RefusalRevoked => join(JoinRefusal::Revoked),
            C::RefusalExpired => join(JoinRefusal::Expired),
            C::RefusalUsedUp => join(JoinRefusal::UsedUp),
            C::RefusalBadProof => join(JoinRefusal::BadProof),
            C::RefusalAlreadyMember => join(JoinRefusal::AlreadyMember),
            C::RefusalRemovedSince => join(JoinRefusal::RemovedSince),
            C::RefusalOther => Refusal::other(&p.reason),
        }
    }

    /// A reason from a peer, cut to [`MAX_REASON_CHARS`].
    pub fn other(reason: &str) -> Refusal {
        Refusal::Other(reason.chars().take(MAX_REASON_CHARS).collect())
    }
}
