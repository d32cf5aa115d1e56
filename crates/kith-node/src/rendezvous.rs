//! Group rendezvous (proto/README.md section 19): this node announces
//! itself in the DHT under the rendezvous key of each group its person
//! belongs to, so that someone joining with an invite key whose inviter is
//! offline can find another member to admit them; and while it joins a
//! group, it looks that group's members up and dials them.
//!
//! A node that is not findable announces nothing, as it publishes no person
//! record: being in the DHT is what the person opted out of.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kith_core::SpaceId;
use kith_core::rendezvous::rendezvous_key;
use kith_net::Command;

/// How often the set of groups to announce is read again.
pub const CHECK: Duration = Duration::from_secs(10);
/// How often a join under way looks the group's members up again (the DHT
/// may not have been reachable yet, or a member came online since).
pub const RETRY: Duration = Duration::from_secs(15);

/// See the module's documentation.
#[derive(Debug)]
pub struct Rendezvous {
    findable: bool,
    announced: Option<BTreeSet<SpaceId>>,
    checked: Option<Instant>,
    looked: Option<Instant>,
}

impl Rendezvous {
    pub fn new(findable: bool) -> Rendezvous {
        Rendezvous {
            findable,
            announced: None,
            checked: None,
            looked: None,
        }
    }

    /// Every tick: the groups to announce, if they changed (read with
    /// `groups` at most every [`CHECK`]), and lookups for the groups being
    /// joined (every [`RETRY`]).
    pub fn tick(
        &mut self,
        now: Instant,
        groups: impl FnOnce() -> Option<BTreeSet<SpaceId>>,
        joining: &[SpaceId],
    ) -> Vec<Command> {
        let mut out = Vec::new();
        if self.findable
            && self
                .checked
                .is_none_or(|at| now.duration_since(at) >= CHECK)
        {
            self.checked = Some(now);
            if let Some(groups) = groups()
                && self.announced.as_ref() != Some(&groups)
            {
                out.push(Command::Provide(
                    groups.iter().map(rendezvous_key).collect(),
                ));
                self.announced = Some(groups);
            }
        }
        if !joining.is_empty() && self.looked.is_none_or(|at| now.duration_since(at) >= RETRY) {
            self.looked = Some(now);
            out.extend(joining.iter().map(|g| self.look_up(g)));
        }
        out
    }

    /// Looks the members of `group` up (a join begins).
    pub fn look_up(&self, group: &SpaceId) -> Command {
        Command::FindProviders(rendezvous_key(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u8]) -> Option<BTreeSet<SpaceId>> {
        Some(ids.iter().map(|i| SpaceId([*i; 32])).collect())
    }

    fn provided(out: &[Command]) -> Vec<Vec<Vec<u8>>> {
        out.iter()
            .filter_map(|c| match c {
                Command::Provide(keys) => Some(keys.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn groups_are_announced_when_they_change_and_not_otherwise() {
        let t = Instant::now();
        let mut r = Rendezvous::new(true);
        let out = r.tick(t, || set(&[1, 2]), &[]);
        assert_eq!(
            provided(&out),
            [vec![
                rendezvous_key(&SpaceId([1; 32])),
                rendezvous_key(&SpaceId([2; 32]))
            ]]
        );
        assert!(
            r.tick(t + CHECK, || set(&[1, 2]), &[]).is_empty(),
            "the same groups: nothing to say"
        );
        assert!(
            r.tick(
                t + CHECK + Duration::from_secs(1),
                || panic!("read too soon"),
                &[]
            )
            .is_empty()
        );
        let out = r.tick(t + CHECK * 2, || set(&[2]), &[]);
        assert_eq!(provided(&out), [vec![rendezvous_key(&SpaceId([2; 32]))]]);
    }

    #[test]
    fn a_node_that_is_not_findable_announces_nothing_but_still_looks_up() {
        let t = Instant::now();
        let mut r = Rendezvous::new(false);
        let joining = [SpaceId([9; 32])];
        let out = r.tick(t, || panic!("not read"), &joining);
        assert!(provided(&out).is_empty());
        assert!(
            matches!(&out[..], [Command::FindProviders(k)] if *k == rendezvous_key(&joining[0]))
        );
        assert!(
            r.tick(t + Duration::from_secs(1), || None, &joining)
                .is_empty()
        );
        assert_eq!(
            r.tick(t + RETRY, || None, &joining).len(),
            1,
            "looked up again"
        );
    }
}
