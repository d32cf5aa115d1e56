//! Invites as a member answers them: every way a join can be wrong is
//! refused with its reason, and a good one admits the joiner and hands its
//! device the group's key.

use kith_core::group::JoinRefusal;
use kith_core::sync::Replica;
use kith_core::{InviteKey, Role};
use kith_node::home::{Home, HomeSource};
use kith_node::service::{ActionError, Service};

struct Person {
    _dir: tempfile::TempDir,
    service: Service,
}

fn person() -> Person {
    let dir = tempfile::tempdir().unwrap();
    let home = Home {
        dir: dir.path().join("home"),
        source: HomeSource::Flag,
    };
    let (service, _) = Service::open(&home).unwrap();
    Person { _dir: dir, service }
}

/// Copies everything `from` holds of the group into `to`, as sync would.
fn sync_group(from: &Person, to: &mut Person, group: &kith_core::SpaceId) {
    let asker = Some(to.service.identity());
    let groups = std::collections::BTreeSet::from([*group]);
    let none = std::collections::BTreeSet::new();
    for (doc, _) in from
        .service
        .store()
        .versions(&none, &none, &groups, asker)
        .unwrap()
    {
        let have = to.service.store().version(&doc).unwrap();
        let batch = from
            .service
            .store()
            .changes_since(&doc, &have, asker, 1 << 24)
            .unwrap();
        let refused = to
            .service
            .ingest(batch.certificates, batch.changes)
            .unwrap()
            .relay_faults();
        assert_eq!(refused, 0);
    }
}

fn invite(alice: &mut Person, group: &kith_core::SpaceId, ttl_ms: u64, uses: u32) -> InviteKey {
    let made = alice
        .service
        .group_invite(group, ttl_ms, uses, Role::Member)
        .unwrap();
    InviteKey::decode(&made.key).unwrap()
}

fn ask(alice: &mut Person, who: &Person, key: &InviteKey) -> Result<(), JoinRefusal> {
    let me = who.service.identity();
    alice.service.admit(
        &key.group,
        &key.public_key(),
        &key.prove(&me),
        me,
        who.service.keys().device.id(),
    )
}

/// A member who is no admin may not invite, nor remove anyone.
#[test]
fn a_member_is_refused_admin_acts_as_not_an_admin() {
    let (mut alice, mut bob) = (person(), person());
    let g = alice.service.group_create("climbing", "").unwrap().id;
    let key = invite(&mut alice, &g, 3_600_000, 1);
    assert_eq!(ask(&mut alice, &bob, &key), Ok(()));
    sync_group(&alice, &mut bob, &g);
    assert!(bob.service.group_show(&g).unwrap().role.is_some());
    let e = bob
        .service
        .group_invite(&g, 3_600_000, 1, Role::Member)
        .unwrap_err();
    assert!(
        matches!(e, ActionError::NotAdmin(ref name) if name == "climbing"),
        "{e:?}"
    );
    assert_eq!(e.code(), "not_admin");
    let e = bob
        .service
        .group_remove(&g, &alice.service.identity().to_string())
        .unwrap_err();
    assert!(matches!(e, ActionError::NotAdmin(_)), "{e:?}");
}

#[test]
fn every_bad_join_is_refused_with_its_reason() {
    let (mut alice, mut bob, dave, mut erin) = (person(), person(), person(), person());
    let g = alice.service.group_create("climbing", "").unwrap().id;
    let hour = 3_600_000;

    // Single use: bob gets in, dave with the same key does not.
    let once = invite(&mut alice, &g, hour, 1);
    assert_eq!(ask(&mut alice, &bob, &once), Ok(()));
    assert_eq!(ask(&mut alice, &dave, &once), Err(JoinRefusal::UsedUp));
    let again = invite(&mut alice, &g, hour, 1);
    assert_eq!(
        ask(&mut alice, &bob, &again),
        Err(JoinRefusal::AlreadyMember)
    );

    // A proof made for bob, replayed for dave.
    let two = invite(&mut alice, &g, hour, 2);
    let replayed = alice.service.admit(
        &g,
        &two.public_key(),
        &two.prove(&bob.service.identity()),
        dave.service.identity(),
        dave.service.keys().device.id(),
    );
    assert_eq!(replayed, Err(JoinRefusal::BadProof));

    // Revoked.
    let revoked = invite(&mut alice, &g, hour, 1);
    let id: String = revoked.public_key()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    alice.service.group_revoke(&g, &id).unwrap();
    assert_eq!(ask(&mut alice, &dave, &revoked), Err(JoinRefusal::Revoked));

    // Expired: made to last a millisecond; wait until that millisecond is over.
    let brief = invite(&mut alice, &g, 1, 1);
    let made_at = std::time::Instant::now();
    while made_at.elapsed() < std::time::Duration::from_millis(2) {
        std::hint::spin_loop();
    }
    assert_eq!(ask(&mut alice, &dave, &brief), Err(JoinRefusal::Expired));

    // An invite of another group.
    let other = alice.service.group_create("other", "").unwrap().id;
    let elsewhere = invite(&mut alice, &other, hour, 1);
    let misdirected = InviteKey {
        group: g,
        ..elsewhere
    };
    assert_eq!(
        ask(&mut alice, &dave, &misdirected),
        Err(JoinRefusal::UnknownInvite)
    );

    // Someone who is not a member cannot admit anyone.
    let good = invite(&mut alice, &g, hour, 3);
    assert_eq!(
        ask(&mut erin, &dave, &good),
        Err(JoinRefusal::UnknownGroup),
        "erin holds nothing of the group"
    );

    // bob, admitted, got the group's key sealed to his device, and a
    // member (not only an admin) can admit.
    sync_group(&alice, &mut bob, &g);
    let view = bob.service.group_show(&g).unwrap();
    assert_eq!(view.role, Some(Role::Member));
    assert!(view.invites.is_empty(), "invites are shown to admins only");
    let alices_key = alice.service.current_key(&g).unwrap();
    let bobs_key = bob.service.current_key(&g).unwrap();
    assert_eq!(alices_key.1.id(), bobs_key.1.id());
    assert_eq!(ask(&mut bob, &dave, &good), Ok(()));
    assert_eq!(bob.service.groups().unwrap().len(), 1);
}

#[test]
fn removing_a_member_starts_an_epoch_the_member_cannot_open() {
    let (mut alice, mut bob, mut dave) = (person(), person(), person());
    let g = alice.service.group_create("suppliers", "").unwrap().id;
    let key = invite(&mut alice, &g, 3_600_000, 2);
    ask(&mut alice, &bob, &key).unwrap();
    ask(&mut alice, &dave, &key).unwrap();
    for p in [&mut bob, &mut dave] {
        sync_group(&alice, p, &g);
    }
    let before = alice.service.current_key(&g).unwrap();
    assert_eq!(before.0, 0);
    // The members' devices are known to alice through the certificates
    // that came with their changes; here, hand them over as a hello would.
    for p in [&bob, &dave] {
        alice
            .service
            .store_mut()
            .add_certificate(&p.service.keys().cert)
            .unwrap();
    }
    let bob_id = bob.service.identity().to_string();
    alice.service.group_remove(&g, &bob_id).unwrap();
    sync_group(&alice, &mut dave, &g);
    let after = alice.service.current_key(&g).unwrap();
    assert_eq!(after.0, 1);
    assert_eq!(dave.service.current_key(&g).unwrap().1.id(), after.1.id());
    // bob can no longer even fetch the log; what he had holds only the old key.
    let groups = std::collections::BTreeSet::from([g]);
    let none = std::collections::BTreeSet::new();
    assert!(
        alice
            .service
            .store()
            .versions(&none, &none, &groups, Some(bob.service.identity()))
            .unwrap()
            .is_empty()
    );
    assert_eq!(bob.service.current_key(&g).unwrap().1.id(), before.1.id());
}

#[test]
fn a_member_who_leaves_is_shut_out_by_a_new_epoch_from_the_first_admin() {
    // alice and erin are admins, bob and dave members; dave leaves.
    let (mut alice, mut bob, mut dave, mut erin) = (person(), person(), person(), person());
    let g = alice.service.group_create("neighbours", "").unwrap().id;
    let members = invite(&mut alice, &g, 3_600_000, 2);
    ask(&mut alice, &bob, &members).unwrap();
    ask(&mut alice, &dave, &members).unwrap();
    let admins = alice
        .service
        .group_invite(&g, 3_600_000, 1, Role::Admin)
        .unwrap();
    ask(&mut alice, &erin, &InviteKey::decode(&admins.key).unwrap()).unwrap();
    for p in [&mut bob, &mut dave, &mut erin] {
        sync_group(&alice, p, &g);
    }
    // Every admin knows every member's device, as hellos would have told them.
    let certs: Vec<_> = [&alice, &bob, &dave, &erin]
        .iter()
        .map(|p| p.service.keys().cert.clone())
        .collect();
    for admin in [&mut alice, &mut erin] {
        for cert in &certs {
            admin.service.store_mut().add_certificate(cert).unwrap();
        }
    }
    let before = alice.service.current_key(&g).unwrap();
    // Nothing is due while everyone holding the key is a member.
    for admin in [&mut alice, &mut erin] {
        assert!(!admin.service.rekey_if_due(&g).unwrap());
    }

    dave.service.group_leave(&g).unwrap();
    for admin in [&mut alice, &mut erin] {
        sync_group(&dave, admin, &g);
    }
    // Only the admin with the smaller identity starts the epoch, once.
    let (first, second) = if alice.service.identity() < erin.service.identity() {
        (&mut alice, &mut erin)
    } else {
        (&mut erin, &mut alice)
    };
    assert!(!second.service.rekey_if_due(&g).unwrap());
    assert!(first.service.rekey_if_due(&g).unwrap());
    assert!(!first.service.rekey_if_due(&g).unwrap(), "started once");
    let after = first.service.current_key(&g).unwrap();
    assert_eq!(after.0, before.0 + 1);
    assert_ne!(after.1.id(), before.1.id());
    sync_group(first, second, &g);
    assert!(!second.service.rekey_if_due(&g).unwrap());
    let first: &Person = first;
    sync_group(first, &mut bob, &g);
    assert_eq!(bob.service.current_key(&g).unwrap().1.id(), after.1.id());
    // The new key is sealed to every member's device and not to dave's.
    let state = first.service.store().group(&g).unwrap().unwrap();
    let sealed: Vec<_> = state
        .keys
        .iter()
        .filter(|k| k.epoch == after.0)
        .flat_map(|k| k.seals.keys().copied())
        .collect();
    for p in [&alice, &bob, &erin] {
        assert!(sealed.contains(&p.service.keys().device.id()));
    }
    assert!(!sealed.contains(&dave.service.keys().device.id()));
    assert_eq!(dave.service.current_key(&g).unwrap().1.id(), before.1.id());
}

/// Hands engine `to` the request `(id, request)` of peer `from`, and
/// returns its answer.
fn answer(
    to: &mut (kith_core::sync::Engine, &mut Service),
    from: kith_core::DeviceId,
    (id, request): (u64, kith_core::sync::Request),
    now: u64,
) -> kith_core::sync::Response {
    use kith_core::sync::{Input, Output};
    let out = to.0.handle(
        Input::RequestReceived {
            peer: from,
            id,
            request,
        },
        now,
        to.1,
    );
    match out.into_iter().next() {
        Some(Output::Respond { response, .. }) => response,
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// Hands engine `to` peer `from`'s answer to request `id`.
fn deliver(
    to: &mut (kith_core::sync::Engine, &mut Service),
    from: kith_core::DeviceId,
    id: u64,
    response: kith_core::sync::Response,
    now: u64,
) -> Vec<kith_core::sync::Output> {
    let input = kith_core::sync::Input::ResponseReceived {
        peer: from,
        id,
        response,
    };
    to.0.handle(input, now, to.1)
}

/// The last request among `out` that `wanted` picks.
fn sent(
    out: &[kith_core::sync::Output],
    wanted: impl Fn(&kith_core::sync::Request) -> bool,
) -> Option<(u64, kith_core::sync::Request)> {
    out.iter().rev().find_map(|o| match o {
        kith_core::sync::Output::Send(kith_core::sync::Sent { id, request, .. })
            if wanted(request) =>
        {
            Some((*id, request.clone()))
        }
        _ => None,
    })
}

/// A joiner that asks before the member has its certificate (the member's
/// hello is still on its way back) is told so, and asks again once the
/// member knows it: the race is not a refusal. Topology: `alice -- bob`,
/// driven by hand, bob's answer to alice's hello held back.
#[test]
fn a_join_asked_before_the_member_knows_the_joiner_is_asked_again() {
    use kith_core::sync::{Engine, EngineConfig, Input, JOIN_RETRY_MS, Output, Request};

    let (mut alice, mut bob) = (person(), person());
    let g = alice.service.group_create("climbing", "").unwrap().id;
    let key = invite(&mut alice, &g, 3_600_000, 1);
    let (a_dev, b_dev) = (
        alice.service.keys().device.id(),
        bob.service.keys().device.id(),
    );
    let me = bob.service.identity();
    let mut a = (Engine::new(EngineConfig::default()), &mut alice.service);
    let mut b = (Engine::new(EngineConfig::default()), &mut bob.service);
    let mut now = 1_000;
    let join = Input::Join {
        group: g,
        invite: key.public_key(),
        proof: key.prove(&me),
    };
    let mut b_out = b.0.handle(join, now, b.1);
    b_out.extend(b.0.handle(Input::PeerConnected { peer: a_dev }, now, b.1));
    let a_out = a.0.handle(Input::PeerConnected { peer: b_dev }, now, a.1);
    let is_hello = |r: &Request| *r == Request::Hello;
    let is_join = |r: &Request| matches!(r, Request::Join { .. });

    // Each side's hello request reaches the other; bob answers alice's, but
    // that answer is held back.
    let a_hello = sent(&a_out, is_hello).expect("alice says hello");
    let b_hello = sent(&b_out, is_hello).expect("bob says hello");
    let held = answer(&mut b, a_dev, a_hello.clone(), now);
    let alice_cert = answer(&mut a, b_dev, b_hello.clone(), now);
    // Bob now knows alice and asks her to admit him, before she knows him.
    let asked = deliver(&mut b, a_dev, b_hello.0, alice_cert, now);
    let request = sent(&asked, is_join).expect("bob asks alice to admit him");
    let (id, refusal) = (request.0, answer(&mut a, b_dev, request, now));
    let after = deliver(&mut b, a_dev, id, refusal, now);
    assert!(
        !after.iter().any(|o| matches!(o, Output::JoinAnswer { .. })),
        "a join refused because alice did not know bob yet is no answer: {after:?}"
    );

    // Bob's held answer arrives; once the retry is due, bob asks again and
    // alice admits him.
    deliver(&mut a, b_dev, a_hello.0, held, now);
    now += JOIN_RETRY_MS;
    let again = b.0.handle(Input::Tick, now, b.1);
    let request = sent(&again, is_join).expect("bob asks again");
    let (id, admitted) = (request.0, answer(&mut a, b_dev, request, now));
    let done = deliver(&mut b, a_dev, id, admitted, now);
    assert!(
        done.iter()
            .any(|o| matches!(o, Output::JoinAnswer { answer: Ok(()), .. })),
        "{done:?}"
    );
}
