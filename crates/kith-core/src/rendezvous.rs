//! Where a group's reachable members can be found in the DHT (proto/README.md
//! section 19): a joiner whose inviter is offline asks the DHT for the
//! members that announced themselves under the group's rendezvous key, and
//! any of them can admit it.

use crate::SpaceId;

/// Prefix of a group's rendezvous key.
pub const RENDEZVOUS_DOMAIN: &[u8] = b"kith/group-rendezvous/v1";

/// The DHT key under which members of `group` announce themselves.
pub fn rendezvous_key(group: &SpaceId) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(RENDEZVOUS_DOMAIN);
    h.update(group.0);
    h.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_has_its_own_key_apart_from_person_keys() {
        let a = rendezvous_key(&SpaceId([1; 32]));
        assert_eq!(a.len(), 32);
        assert_ne!(a, rendezvous_key(&SpaceId([2; 32])));
        let person = crate::person::dht_key(&crate::IdentityId([1; 32]));
        assert_ne!(a, person, "a group and a person with the same bytes");
    }
}
