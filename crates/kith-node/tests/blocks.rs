//! Blocks are private: they live in the private document, which only the
//! identity's own devices receive, never in the public profile. Blocks an
//! earlier version published move there when the home is next opened.

use kith_core::schema::{labels, profile};
use kith_core::{DocId, IdentityId, IdentityKey};
use kith_node::home::{Home, HomeSource};
use kith_node::service::Service;
use kith_store::LocalSigner;

fn home(dir: &tempfile::TempDir) -> Home {
    Home {
        dir: dir.path().join("home"),
        source: HomeSource::Flag,
    }
}

fn mallory() -> IdentityId {
    IdentityKey::from_secret_bytes(&[13; 32]).id()
}

/// The `b/` keys of the public profile and of the private document.
fn blocks_in(service: &mut Service) -> (Vec<IdentityId>, bool) {
    let me = service.identity();
    let store = service.store_mut();
    let public = store
        .read_doc(&DocId::profile(me), profile::legacy_blocks)
        .unwrap();
    let private = store
        .read_doc(&DocId::private(me), |d| {
            labels::contains(d, &labels::block_key(&mallory()))
        })
        .unwrap();
    (public, private)
}

fn blocked(service: &Service) -> bool {
    service
        .people(None)
        .unwrap()
        .iter()
        .any(|p| p.id == mallory() && p.blocked)
}

#[test]
fn a_block_is_written_to_the_private_document_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ada, _) = Service::open(&home(&dir)).unwrap();
    ada.block(&mallory()).unwrap();
    assert_eq!(blocks_in(&mut ada), (vec![], true));
    assert!(blocked(&ada), "the block still counts");
    ada.unblock(&mallory()).unwrap();
    assert_eq!(blocks_in(&mut ada), (vec![], false));
    assert!(!blocked(&ada));
}

#[test]
fn a_block_an_earlier_version_published_moves_to_the_private_document() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ada, _) = Service::open(&home(&dir)).unwrap();
    // What an earlier version wrote: `b/<did>` in the public profile.
    let me = ada.identity();
    let (keys, _) = home(&dir).load_or_init().unwrap();
    let signer = LocalSigner {
        key: &keys.device,
        author: me,
    };
    let legacy = format!("{}{}", profile::LEGACY_BLOCK_PREFIX, mallory());
    ada.store_mut()
        .commit_local(DocId::profile(me), signer, 1, |d| profile::add(d, &legacy))
        .unwrap();
    assert_eq!(blocks_in(&mut ada).0, vec![mallory()]);
    drop(ada);

    let (mut ada, _) = Service::open(&home(&dir)).unwrap();
    assert_eq!(
        blocks_in(&mut ada),
        (vec![], true),
        "the block left the public profile for the private document"
    );
    assert!(blocked(&ada), "and it still counts");
}
