//! Someone who writes: an identity, one device, its certificate, and the
//! documents it has written to.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;

use crate::group::{self, EpochKey, GroupState, Record};
use crate::schema::{feed, profile};
use crate::{DeviceCert, DeviceKey, DocId, IdentityId, IdentityKey, SignedChange, SpaceId};

/// A named person with one device. Keys come from `seed`, so a test run
/// is reproducible from its seed.
pub struct Person {
    pub name: &'static str,
    pub identity: IdentityKey,
    pub device: DeviceKey,
    pub cert: DeviceCert,
    docs: BTreeMap<DocId, AutoCommit>,
    /// Milliseconds of the person's clock, one step per change.
    clock: u64,
    posts: u64,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person").field("name", &self.name).finish()
    }
}

impl Person {
    pub fn new(name: &'static str, seed: u64) -> Person {
        let bytes = |salt: u8| {
            let mut b = [salt; 32];
            b[..8].copy_from_slice(&seed.to_le_bytes());
            b[8..8 + name.len().min(16)].copy_from_slice(&name.as_bytes()[..name.len().min(16)]);
            b
        };
        let identity = IdentityKey::from_secret_bytes(&bytes(1));
        let device = DeviceKey::from_secret_bytes(&bytes(2));
        let cert = DeviceCert::issue(&identity, &device, 1);
        Person {
            name,
            identity,
            device,
            cert,
            docs: BTreeMap::new(),
            clock: 1_700_000_000_000,
            posts: 0,
        }
    }

    pub fn id(&self) -> IdentityId {
        self.identity.id()
    }

    /// A change of `doc` made by `edit`, signed by this person's device.
    pub fn change(&mut self, doc: DocId, edit: impl FnOnce(&mut AutoCommit)) -> SignedChange {
        self.clock += 1;
        let actor = crate::actor_id(&self.device.id(), &[7; 8]);
        let d = self
            .docs
            .entry(doc)
            .or_insert_with(|| AutoCommit::new().with_actor(actor));
        edit(d);
        d.commit_with(CommitOptions::default().with_time(self.clock as i64 / 1000));
        let raw = d
            .get_last_local_change()
            .expect("the edit made a change")
            .raw_bytes()
            .to_vec();
        SignedChange::sign(doc, raw, &self.device, self.id())
            .expect("a test change signs")
            .into_inner()
    }

    /// A new public post.
    pub fn post(&mut self, text: &str) -> SignedChange {
        self.post_in(SpaceId::PUBLIC, text)
    }

    /// A new post in `space` (a group, or the public space).
    pub fn post_in(&mut self, space: SpaceId, text: &str) -> SignedChange {
        self.posts += 1;
        let key = format!("p{}", self.posts);
        let at = self.clock;
        let mut body = None;
        let mut change = self.change(DocId::feed(self.id(), space, 0), |d| {
            body = Some(feed::create_post(d, &key, text, at, None).expect("a test post"));
        });
        change.bodies = vec![body.expect("made above").into_bytes()];
        change
    }

    /// A change of this person's profile: its name.
    pub fn rename(&mut self, name: &str) -> SignedChange {
        self.change(DocId::profile(self.id()), |d| {
            profile::set_name(d, name).expect("a test name")
        })
    }

    /// Creates a group with this person as its only member and admin, its
    /// first epoch key sealed to this device: the group's id and the
    /// control change that made it.
    pub fn create_group(&mut self, name: &str) -> (SpaceId, SignedChange) {
        self.posts += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.posts.to_le_bytes());
        let id = group::group_id(&self.id(), &nonce);
        let mut secret = self.device.secret_bytes();
        secret[..8].copy_from_slice(&self.posts.to_le_bytes());
        let key = EpochKey::from_bytes(*blake3::hash(&secret).as_bytes());
        let seal = key.seal_for(&self.device.id()).expect("a device key seals");
        let me = self.id();
        let device = self.device.id();
        let records = [
            Record::Genesis { creator: me, nonce },
            Record::Info {
                name: name.to_owned(),
                about: String::new(),
            },
            Record::Keys {
                epoch: 0,
                seals: vec![(device, seal)],
            },
        ];
        let change = self.change(group::control_doc(&id), |d| {
            for r in &records {
                r.write(d).expect("a record writes");
            }
        });
        (id, change)
    }

    /// The state of a group this person created, from its control log.
    pub fn group_state(&mut self, group: &SpaceId) -> Arc<GroupState> {
        let doc = self
            .docs
            .get_mut(&group::control_doc(group))
            .expect("a group this person created");
        let changes = doc.get_changes(&[]).into_iter().collect();
        let (me, device) = (self.identity.id(), self.device.id());
        Arc::new(GroupState::replay(*group, changes, |actor| {
            actor.starts_with(&device.0).then_some(me)
        }))
    }
}
