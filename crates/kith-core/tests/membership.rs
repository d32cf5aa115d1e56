//! Property tests of the group membership rules (kith_core::group), with
//! many seeds. Six people act on their own copies of one group's control
//! document, each only as its own copy allows (invite, admit, revoke,
//! remove, promote, leave, rename), and copies merge at random. However the
//! merges fell out, every copy must end with the same members, and the rules
//! must hold: every member was admitted by a valid join, no invite admits
//! more than its uses, nobody who was removed and never re-admitted remains.
//!
//! `KITH_TEST_CASES` sets the number of seeds (default 200) and
//! `KITH_TEST_SEED` the first one; each case prints its seed.

use std::collections::{BTreeMap, HashMap};

use automerge::{ActorId, AutoCommit, Change};
use kith_core::group::{self, GroupState, Record, Role, may_write_control};
use kith_core::{IdentityId, InviteKey, SpaceId};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

const PEOPLE: usize = 6;

struct Person {
    id: IdentityId,
    /// `None` until the person holds a copy of the control document.
    doc: Option<AutoCommit>,
}

struct World {
    group: SpaceId,
    people: Vec<Person>,
    /// Every invite secret ever made (the sim hands keys around freely).
    secrets: Vec<[u8; 32]>,
    /// Device key prefix of each actor → identity.
    devices: HashMap<[u8; 32], IdentityId>,
    now_ms: u64,
}

impl World {
    fn author_of(&self) -> impl Fn(&[u8]) -> Option<IdentityId> + '_ {
        |actor: &[u8]| {
            let device: [u8; 32] = actor.get(..32)?.try_into().ok()?;
            self.devices.get(&device).copied()
        }
    }

    fn state_of(&mut self, p: usize) -> Option<GroupState> {
        let doc = self.people[p].doc.as_mut()?;
        let changes: Vec<Change> = doc.get_changes(&[]).into_iter().collect();
        Some(GroupState::replay(self.group, changes, self.author_of()))
    }

    /// Writes `records` as one change of person `p`, checking first that the
    /// rules let everyone store it.
    fn write(&mut self, p: usize, records: &[Record]) {
        let now = self.now_ms;
        let doc = self.people[p].doc.as_mut().expect("acts only with a copy");
        for r in records {
            r.write(doc).unwrap();
        }
        let options = automerge::transaction::CommitOptions::default().with_time(now as i64);
        if doc.commit_with(options).is_none() {
            // Putting the value a key already holds (a rename to the same
            // name) is no change at all.
            return;
        }
        let change = doc.get_last_local_change().unwrap();
        let existing: Vec<Change> = doc
            .get_changes(&[])
            .into_iter()
            .filter(|c| c.hash() != change.hash())
            .collect();
        let id = self.people[p].id;
        assert_eq!(
            may_write_control(self.group, &existing, &change, &id, self.author_of()),
            Ok(()),
            "a change its author's own copy allowed is accepted"
        );
    }
}

fn actor_for(i: usize, device: [u8; 32]) -> ActorId {
    let mut bytes = device.to_vec();
    bytes.extend_from_slice(&[i as u8; 8]);
    ActorId::from(bytes)
}

fn new_world(rng: &mut StdRng) -> World {
    let mut people = Vec::new();
    let mut devices = HashMap::new();
    for i in 0..PEOPLE {
        let id = IdentityId([i as u8 + 1; 32]);
        devices.insert([i as u8 + 100; 32], id);
        people.push(Person { id, doc: None });
    }
    let nonce: [u8; 16] = rng.random();
    let creator = people[0].id;
    let group = group::group_id(&creator, &nonce);
    let mut w = World {
        group,
        people,
        secrets: Vec::new(),
        devices,
        now_ms: 1_000,
    };
    w.people[0].doc = Some(AutoCommit::new().with_actor(actor_for(0, [100; 32])));
    let doc = w.people[0].doc.as_mut().unwrap();
    Record::Genesis { creator, nonce }.write(doc).unwrap();
    Record::Info {
        name: "climbers".into(),
        about: String::new(),
    }
    .write(doc)
    .unwrap();
    doc.commit_with(automerge::transaction::CommitOptions::default().with_time(1_000));
    w
}

fn merge_into(w: &mut World, from: usize, to: usize) {
    let Some(mut src) = w.people[from].doc.clone() else {
        return;
    };
    match w.people[to].doc.as_mut() {
        Some(dst) => {
            dst.merge(&mut src).unwrap();
        }
        None => {
            let actor = actor_for(to, [to as u8 + 100; 32]);
            w.people[to].doc = Some(src.fork().with_actor(actor));
        }
    }
}

/// One random act by a random person, as its own copy allows.
fn step(w: &mut World, rng: &mut StdRng) {
    w.now_ms += rng.random_range(1..2_000);
    // Mostly someone who holds a copy: people without one can only be merged into.
    let holders: Vec<usize> = (0..PEOPLE).filter(|&p| w.people[p].doc.is_some()).collect();
    let p = if rng.random_bool(0.8) {
        *holders.choose(rng).expect("the creator holds a copy")
    } else {
        rng.random_range(0..PEOPLE)
    };
    if rng.random_bool(0.3) {
        let q = rng.random_range(0..PEOPLE);
        if q != p {
            merge_into(w, q, p);
        }
        return;
    }
    let Some(s) = w.state_of(p) else { return };
    let me = w.people[p].id;
    let Some(role) = s.role(&me) else { return };
    let others: Vec<usize> = (0..PEOPLE).filter(|&q| q != p).collect();
    let q = *others.choose(rng).unwrap();
    let them = w.people[q].id;
    match rng.random_range(0..10) {
        0 | 1 if role == Role::Admin => {
            let secret: [u8; 32] = rng.random();
            w.secrets.push(secret);
            let key = InviteKey {
                group: w.group,
                secret,
                addresses: vec![],
            };
            let record = Record::Invite {
                public_key: key.public_key(),
                expires_at_ms: w.now_ms + rng.random_range(0..60_000),
                uses: rng.random_range(1..3),
                role: if rng.random_bool(0.3) {
                    Role::Admin
                } else {
                    Role::Member
                },
            };
            w.write(p, &[record]);
        }
        2..=4 => {
            // Admit `them` with some invite this copy still thinks is open.
            let open: Vec<[u8; 32]> = w
                .secrets
                .iter()
                .filter(|secret| {
                    let key = InviteKey {
                        group: w.group,
                        secret: **secret,
                        addresses: vec![],
                    };
                    s.check_join(&key.public_key(), &them, &key.prove(&them), w.now_ms)
                        .is_ok()
                })
                .copied()
                .collect();
            if let Some(secret) = open.choose(rng) {
                let key = InviteKey {
                    group: w.group,
                    secret: *secret,
                    addresses: vec![],
                };
                let record = Record::Join {
                    identity: them,
                    invite: key.public_key(),
                    proof: key.prove(&them),
                };
                w.write(p, &[record]);
                // The joiner gets the admitting member's copy.
                merge_into(w, p, q);
            }
        }
        5 if role == Role::Admin && s.is_member(&them) => {
            w.write(
                p,
                &[Record::Remove {
                    identity: them,
                    cutoff: vec![],
                }],
            );
        }
        6 if role == Role::Admin && s.is_member(&them) => {
            w.write(p, &[Record::Promote { identity: them }]);
        }
        7 if role == Role::Admin => {
            let open: Vec<[u8; 32]> = s
                .invites
                .iter()
                .filter(|(_, i)| !i.revoked)
                .map(|(k, _)| *k)
                .collect();
            if let Some(k) = open.choose(rng) {
                w.write(p, &[Record::Revoke { public_key: *k }]);
            }
        }
        8 if rng.random_bool(0.2) && p != 0 => {
            w.write(
                p,
                &[Record::Remove {
                    identity: me,
                    cutoff: vec![],
                }],
            );
        }
        9 if role == Role::Admin => {
            let name = format!("climbers {}", rng.random_range(0..100));
            w.write(
                p,
                &[Record::Info {
                    name,
                    about: String::new(),
                }],
            );
        }
        _ => {}
    }
}

/// The rules, checked against the whole log independently of the replay's
/// bookkeeping.
fn check_rules(w: &World, s: &GroupState, changes: &[Change], seed: u64) {
    let creator = w.people[0].id;
    assert_eq!(s.creator, Some(creator), "seed {seed}: creator");
    let mut joins: BTreeMap<IdentityId, Vec<[u8; 32]>> = BTreeMap::new();
    for c in changes {
        for r in group::records::records_of(c) {
            if let Record::Join {
                identity, invite, ..
            } = r
            {
                joins.entry(identity).or_default().push(invite);
            }
        }
    }
    for (who, m) in &s.members {
        if *who == creator {
            continue;
        }
        let invite = joins.get(who);
        assert!(
            invite.is_some(),
            "seed {seed}: member {who:?} has a join record"
        );
        assert!(
            m.admitted_by.is_some() && m.invited_by.is_some(),
            "seed {seed}: member {who:?} was admitted through an invite"
        );
        assert!(
            !s.removed.contains_key(who),
            "seed {seed}: {who:?} is both a member and removed"
        );
    }
    for (k, inv) in &s.invites {
        assert!(
            inv.used <= inv.uses,
            "seed {seed}: invite {k:?} admitted {} of {}",
            inv.used,
            inv.uses
        );
    }
}

#[test]
fn every_copy_agrees_on_the_members_and_the_rules_hold() {
    let cases: u64 = std::env::var("KITH_TEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let first_seed: u64 = std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("membership: {cases} cases from KITH_TEST_SEED={first_seed}");
    let mut interesting = 0;
    for case in 0..cases {
        let seed = first_seed.wrapping_add(case);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = new_world(&mut rng);
        for _ in 0..rng.random_range(40..160) {
            step(&mut w, &mut rng);
        }
        // Heal: everyone who ever held a copy exchanges with everyone.
        for _ in 0..2 {
            for a in 0..PEOPLE {
                for b in 0..PEOPLE {
                    if a != b && w.people[a].doc.is_some() && w.people[b].doc.is_some() {
                        merge_into(&mut w, a, b);
                    }
                }
            }
        }
        let holders: Vec<usize> = (0..PEOPLE).filter(|&p| w.people[p].doc.is_some()).collect();
        let first = w.state_of(holders[0]).unwrap();
        for &p in &holders[1..] {
            assert_eq!(
                w.state_of(p).unwrap(),
                first,
                "seed {seed}: copies 0 and {p} disagree"
            );
        }
        // The replay does not depend on the order changes are handed over.
        let mut changes: Vec<Change> = w.people[0]
            .doc
            .as_mut()
            .unwrap()
            .get_changes(&[])
            .into_iter()
            .collect();
        rand::seq::SliceRandom::shuffle(changes.as_mut_slice(), &mut rng);
        let shuffled = GroupState::replay(w.group, changes.clone(), w.author_of());
        assert_eq!(shuffled, first, "seed {seed}: replay depends on the order");
        check_rules(&w, &first, &changes, seed);
        if first.members.len() > 1 && !first.removed.is_empty() {
            interesting += 1;
        }
    }
    // The generator must reach the cases the rules are about.
    assert!(
        interesting * 4 >= cases,
        "only {interesting} of {cases} cases had both joins and removals"
    );
}

#[test]
fn a_single_use_invite_admits_exactly_one_of_two_concurrent_joiners() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut w = new_world(&mut rng);
    let alice = w.people[0].id;
    // alice promotes nobody; she invites once, single use, and two members
    // admit two joiners with it while apart.
    let secret = [42; 32];
    let key = InviteKey {
        group: w.group,
        secret,
        addresses: vec![],
    };
    w.write(
        0,
        &[Record::Invite {
            public_key: key.public_key(),
            expires_at_ms: u64::MAX,
            uses: 1,
            role: Role::Member,
        }],
    );
    merge_into(&mut w, 0, 1);
    let (bob, carol) = (w.people[1].id, w.people[2].id);
    // alice admits bob; a copy of alice's pre-join state (held by person 1,
    // not yet a member) cannot write, so alice's other device does it: use
    // person 0 twice, from two forks.
    let mut fork = w.people[0].doc.as_mut().unwrap().fork();
    fork.set_actor(actor_for(7, [100; 32]));
    w.write(
        0,
        &[Record::Join {
            identity: bob,
            invite: key.public_key(),
            proof: key.prove(&bob),
        }],
    );
    Record::Join {
        identity: carol,
        invite: key.public_key(),
        proof: key.prove(&carol),
    }
    .write(&mut fork)
    .unwrap();
    fork.commit();
    w.people[0].doc.as_mut().unwrap().merge(&mut fork).unwrap();
    let s = w.state_of(0).unwrap();
    let admitted: Vec<bool> = [bob, carol].iter().map(|p| s.is_member(p)).collect();
    assert_eq!(
        admitted.iter().filter(|a| **a).count(),
        1,
        "exactly one joiner is admitted: {admitted:?}"
    );
    assert!(s.is_admin(&alice));
    assert_eq!(s.invites[&key.public_key()].used, 1);
}

#[test]
fn removal_wins_over_the_removed_members_concurrent_acts() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut w = new_world(&mut rng);
    let (bob, carol) = (w.people[1].id, w.people[2].id);
    let key = InviteKey {
        group: w.group,
        secret: [1; 32],
        addresses: vec![],
    };
    w.write(
        0,
        &[Record::Invite {
            public_key: key.public_key(),
            expires_at_ms: u64::MAX,
            uses: 5,
            role: Role::Admin,
        }],
    );
    w.write(
        0,
        &[Record::Join {
            identity: bob,
            invite: key.public_key(),
            proof: key.prove(&bob),
        }],
    );
    merge_into(&mut w, 0, 1);
    assert!(w.state_of(1).unwrap().is_admin(&bob));
    // Apart: alice removes bob; bob, an admin, admits carol.
    w.write(
        0,
        &[Record::Remove {
            identity: bob,
            cutoff: vec![],
        }],
    );
    w.write(
        1,
        &[Record::Join {
            identity: carol,
            invite: key.public_key(),
            proof: key.prove(&carol),
        }],
    );
    merge_into(&mut w, 1, 0);
    merge_into(&mut w, 0, 1);
    let s0 = w.state_of(0).unwrap();
    assert_eq!(s0, w.state_of(1).unwrap());
    assert!(!s0.is_member(&bob));
    assert!(
        !s0.is_member(&carol),
        "bob's admission, concurrent with his removal, counts for nothing"
    );
    // And bob can no longer write: a change made after he saw his removal
    // is refused.
    let doc = w.people[1].doc.as_mut().unwrap();
    Record::Info {
        name: "bob's group now".into(),
        about: String::new(),
    }
    .write(doc)
    .unwrap();
    doc.commit();
    let change = doc.get_last_local_change().unwrap();
    let existing: Vec<Change> = doc
        .get_changes(&[])
        .into_iter()
        .filter(|c| c.hash() != change.hash())
        .collect();
    assert_eq!(
        may_write_control(w.group, &existing, &change, &bob, w.author_of()),
        Err(group::WriteRefusal::NotMember)
    );
}

#[test]
fn a_forged_genesis_does_not_make_a_creator() {
    let mallory = IdentityId([66; 32]);
    let alice = IdentityId([1; 32]);
    let nonce = [5; 16];
    let group = group::group_id(&alice, &nonce);
    let mut doc = AutoCommit::new().with_actor(actor_for(9, [166; 32]));
    // mallory claims alice's genesis under her own device.
    Record::Genesis {
        creator: alice,
        nonce,
    }
    .write(&mut doc)
    .unwrap();
    doc.commit();
    let change = doc.get_last_local_change().unwrap();
    assert_eq!(
        may_write_control(group, &[], &change, &mallory, |_| Some(mallory)),
        Err(group::WriteRefusal::NotMember)
    );
    let s = GroupState::replay(group, vec![change], |_| Some(mallory));
    assert_eq!(s.creator, None);
    assert!(s.members.is_empty());
}

#[test]
fn a_removed_members_device_cannot_open_the_next_epochs_key() {
    use kith_core::DeviceKey;
    use kith_core::group::EpochKey;
    let mut rng = StdRng::seed_from_u64(9);
    let mut w = new_world(&mut rng);
    // The devices behind persons 0 (alice), 1 (bob) and 2 (dave).
    let device = |i: u8| DeviceKey::from_secret_bytes(&[i + 50; 32]);
    for i in 0..3u8 {
        w.devices.insert(device(i).id().0, w.people[i as usize].id);
    }
    let doc = w.people[0].doc.as_mut().unwrap();
    doc.set_actor(actor_for(0, device(0).id().0));
    let first = EpochKey::generate().unwrap();
    let seal = |k: &EpochKey, i: u8| (device(i).id(), k.seal_for(&device(i).id()).unwrap());
    w.write(
        0,
        &[Record::Keys {
            epoch: 0,
            seals: vec![seal(&first, 0)],
        }],
    );
    let key = InviteKey {
        group: w.group,
        secret: [4; 32],
        addresses: vec![],
    };
    w.write(
        0,
        &[Record::Invite {
            public_key: key.public_key(),
            expires_at_ms: u64::MAX,
            uses: 2,
            role: Role::Member,
        }],
    );
    for i in [1u8, 2] {
        let who = w.people[i as usize].id;
        w.write(
            0,
            &[
                Record::Join {
                    identity: who,
                    invite: key.public_key(),
                    proof: key.prove(&who),
                },
                Record::Keys {
                    epoch: 0,
                    seals: vec![seal(&first, i)],
                },
            ],
        );
    }
    let bob = w.people[1].id;
    let second = EpochKey::generate().unwrap();
    w.write(
        0,
        &[
            Record::Remove {
                identity: bob,
                cutoff: vec![],
            },
            Record::Keys {
                epoch: 1,
                seals: vec![seal(&second, 0), seal(&second, 2)],
            },
        ],
    );
    let s = w.state_of(0).unwrap();
    assert_eq!(s.epoch(), Some(1));
    let ids = |d: u8| -> Vec<(u32, [u8; 8])> {
        s.keys_for(&device(d))
            .into_iter()
            .map(|(e, k)| (e, k.id()))
            .collect()
    };
    assert_eq!(ids(2), vec![(1, second.id()), (0, first.id())]);
    assert_eq!(ids(1), vec![(0, first.id())], "bob keeps only what he had");
    // A member (not an admin) cannot start an epoch.
    let dave = 2;
    merge_into(&mut w, 0, dave);
    let third = EpochKey::generate().unwrap();
    let d = w.people[dave].doc.as_mut().unwrap();
    Record::Keys {
        epoch: 2,
        seals: vec![seal(&third, 2)],
    }
    .write(d)
    .unwrap();
    d.commit();
    assert_eq!(w.state_of(dave).unwrap().epoch(), Some(1));
}

/// An invite is handed around freely once made: a member an admin removed
/// may hold one (or have made one, as an admin). Whatever invites existed
/// at the removal are closed to them; one made since brings them back, and
/// a member who left on their own may rejoin with any open invite.
#[test]
fn a_removed_member_comes_back_only_with_an_invite_made_after_the_removal() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut w = new_world(&mut rng);
    let (bob, carol) = (w.people[1].id, w.people[2].id);
    let invite = |secret: u8, w: &World| InviteKey {
        group: w.group,
        secret: [secret; 32],
        addresses: vec![],
    };
    let open = |key: &InviteKey| Record::Invite {
        public_key: key.public_key(),
        expires_at_ms: u64::MAX,
        uses: 10,
        role: Role::Member,
    };
    let join = |key: &InviteKey, who: IdentityId| Record::Join {
        identity: who,
        invite: key.public_key(),
        proof: key.prove(&who),
    };
    let old = invite(1, &w);
    w.write(0, &[open(&old)]);
    w.write(0, &[join(&old, bob), join(&old, carol)]);
    merge_into(&mut w, 0, 2);
    let s = w.state_of(0).unwrap();
    assert!(s.is_member(&bob) && s.is_member(&carol));

    // alice removes bob; carol leaves on her own.
    w.write(
        0,
        &[Record::Remove {
            identity: bob,
            cutoff: vec![],
        }],
    );
    w.write(
        2,
        &[Record::Remove {
            identity: carol,
            cutoff: vec![],
        }],
    );
    merge_into(&mut w, 2, 0);
    let s = w.state_of(0).unwrap();
    assert!(!s.is_member(&bob) && !s.is_member(&carol));
    assert_eq!(
        s.check_join(&old.public_key(), &bob, &old.prove(&bob), w.now_ms),
        Err(group::JoinRefusal::RemovedSince),
        "the invite bob could hold is closed to him"
    );
    assert_eq!(
        s.check_join(&old.public_key(), &carol, &old.prove(&carol), w.now_ms),
        Ok(Role::Member),
        "carol left on her own and may come back"
    );
    // A join record with the old invite counts for nothing, everywhere.
    w.write(0, &[join(&old, bob)]);
    assert!(!w.state_of(0).unwrap().is_member(&bob));

    // An invite made after the removal brings him back.
    let new = invite(2, &w);
    w.write(0, &[open(&new)]);
    w.write(0, &[join(&new, bob)]);
    assert!(w.state_of(0).unwrap().is_member(&bob));
}
