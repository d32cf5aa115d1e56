//! What an export writes and holds. The service writes an archive only into
//! the home's `exports` directory, readable by its owner only, whatever a
//! call names: a caller of the API is not trusted with the disk. A public
//! export holds only what its identity has published.

use std::os::unix::fs::PermissionsExt as _;

use kith_core::archive::Archive;
use kith_node::home::{Home, HomeSource};
use kith_node::service::{EXPORTS_DIR, Service};
use kith_node::{Call, Reply, execute};

fn ada() -> (tempfile::TempDir, Home, Service) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home {
        dir: dir.path().join("home"),
        source: HomeSource::Flag,
    };
    let (mut service, _) = Service::open(&home).unwrap();
    service.set_profile(Some("Ada"), None).unwrap();
    (dir, home, service)
}

#[test]
fn an_export_call_writes_only_inside_the_home() {
    let (dir, home, mut ada) = ada();
    let elsewhere = dir.path().join("elsewhere.kith");
    // The call as an older CLI sent it, naming a path for the node to write.
    let call: Call = serde_json::from_value(serde_json::json!({
        "call": "export",
        "path": elsewhere,
    }))
    .unwrap();
    let Ok(Reply::Exported { file, changes }) = execute(&mut ada, call) else {
        panic!("an export stages an archive");
    };
    assert!(!elsewhere.exists(), "the node wrote a path a caller named");
    let staged = home.path(EXPORTS_DIR).join(&file);
    let mode = std::fs::metadata(&staged).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a full archive holds private documents");
    let archive = Archive::decode(&std::fs::read(&staged).unwrap()).unwrap();
    assert_eq!(archive.changes.len(), changes);
}

#[test]
fn a_public_export_holds_only_what_its_identity_published() {
    let (_dir, _home, mut ada) = ada();
    let bob = kith_core::IdentityKey::from_secret_bytes(&[2; 32]).id();
    ada.post_to(None, "hello, world", None).unwrap();
    ada.label(&bob, &["friend".into()], &[]).unwrap();
    let club = ada.group_create("club", "").unwrap().id;
    ada.post_to(Some(club), "members only", None).unwrap();

    let full = ada.export(false).unwrap();
    let public = ada.export(true).unwrap();
    assert!(
        full.changes.iter().any(|c| !c.doc.is_public()),
        "the full export holds the label and the group"
    );
    assert!(!public.changes.is_empty());
    assert!(
        public
            .changes
            .iter()
            .all(|c| c.doc.is_public() && c.doc.owner == ada.identity()),
        "{:?}",
        public.changes
    );
    assert_eq!(
        public.changes.len(),
        full.changes.iter().filter(|c| c.doc.is_public()).count(),
        "everything ada published (her profile and public post) is there"
    );
}
