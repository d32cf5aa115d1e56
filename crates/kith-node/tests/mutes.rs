//! Mutes are private, as blocks are: they live in the private document,
//! never in the public profile. A mute only hides: the muted person's posts
//! and reactions leave the home and public timelines, while their own
//! timeline and threads still show their posts, marked, and they may still
//! be followed.
//!
//! ada and mallory, no network: each reads the other's public archive.

use kith_core::schema::labels;
use kith_core::{DocId, PostId};
use kith_node::home::{Home, HomeSource};
use kith_node::service::Service;

fn open(dir: &tempfile::TempDir, name: &str) -> Service {
    let home = Home {
        dir: dir.path().join(name),
        source: HomeSource::Flag,
    };
    let (mut service, _) = Service::open(&home).unwrap();
    service.set_profile(Some(name), None).unwrap();
    service
}

/// `to` applies everything `from` has published.
fn hear(dir: &tempfile::TempDir, from: &Service, to: &mut Service) {
    let path = dir.path().join("public.kith");
    std::fs::write(&path, from.export(true).unwrap().encode()).unwrap();
    to.import(&path).unwrap();
}

/// Whether the mute key is in ada's public profile, and in her private document.
fn mute_in(ada: &mut Service, mallory: &Service) -> (bool, bool) {
    let me = ada.identity();
    let key = labels::mute_key(&mallory.identity());
    let store = ada.store_mut();
    let public = store
        .read_doc(&DocId::profile(me), |d| labels::contains(d, &key))
        .unwrap();
    let private = store
        .read_doc(&DocId::private(me), |d| labels::contains(d, &key))
        .unwrap();
    (public, private)
}

fn home_ids(ada: &Service) -> Vec<PostId> {
    ada.home_page(50, None)
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect()
}

#[test]
fn a_mute_is_written_to_the_private_document_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut ada = open(&dir, "ada");
    let mallory = open(&dir, "mallory");
    hear(&dir, &mallory, &mut ada);

    ada.mute(&mallory.identity()).unwrap();
    assert_eq!(mute_in(&mut ada, &mallory), (false, true));
    let seen = ada.person(Some(mallory.identity())).unwrap();
    assert!(seen.muted && !seen.blocked, "a mute is not a block");

    ada.unmute(&mallory.identity()).unwrap();
    assert_eq!(mute_in(&mut ada, &mallory), (false, false));
    assert!(!ada.person(Some(mallory.identity())).unwrap().muted);
}

#[test]
fn a_muted_persons_posts_leave_the_home_timeline_but_stay_on_their_profile() {
    let dir = tempfile::tempdir().unwrap();
    let mut ada = open(&dir, "ada");
    let mut mallory = open(&dir, "mallory");
    let hello = ada.post("hello", None).unwrap();
    hear(&dir, &ada, &mut mallory);
    let spam = mallory.post("buy my stuff", None).unwrap();
    let reply = mallory.post("buy it here too", Some(hello)).unwrap();
    mallory.react(&hello, "🤑").unwrap();
    hear(&dir, &mallory, &mut ada);
    // A muted person can still be followed.
    ada.follow(&mallory.identity(), &[]).unwrap();
    assert!(home_ids(&ada).contains(&spam));

    ada.mute(&mallory.identity()).unwrap();
    let seen = ada.person(Some(mallory.identity())).unwrap();
    assert!(seen.following && seen.muted);

    let home = home_ids(&ada);
    assert!(home.contains(&hello), "ada's own post stays");
    assert!(!home.contains(&spam) && !home.contains(&reply), "{home:?}");
    let public = ada.feed(None, 50).unwrap();
    assert!(public.iter().all(|p| p.author != mallory.identity()));
    let mine = public.iter().find(|p| p.id == hello).unwrap();
    assert!(mine.reactions.is_empty(), "their reaction is hidden too");

    let profile = ada.feed(Some(mallory.identity()), 50).unwrap();
    assert!(
        profile.iter().any(|p| p.id == spam),
        "their profile shows it"
    );
    assert!(profile.iter().all(|p| p.author_muted), "marked as muted");

    let thread = ada.thread(&hello).unwrap();
    let shown = thread.iter().find(|e| e.post.id == reply).unwrap();
    assert!(shown.post.author_muted, "a thread shows the reply, marked");
    assert!(!thread[0].post.author_muted);

    ada.unmute(&mallory.identity()).unwrap();
    assert!(home_ids(&ada).contains(&spam));
    let public = ada.feed(None, 50).unwrap();
    let mine = public.iter().find(|p| p.id == hello).unwrap();
    assert_eq!(mine.reactions.get("🤑"), Some(&1));
}
