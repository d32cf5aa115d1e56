//! The failures a program branches on come as their own variants, each with
//! its API code: an unknown or ambiguous group, not a member, a deleted
//! post (not an admin: in groups.rs, which admits a member). Nothing here
//! compares a message.

use kith_core::SpaceId;
use kith_node::home::{Home, HomeSource};
use kith_node::service::{ActionError, Service};

fn service(dir: &tempfile::TempDir, name: &str) -> Service {
    let home = Home {
        dir: dir.path().join(name),
        source: HomeSource::Flag,
    };
    Service::open(&home).unwrap().0
}

#[test]
fn an_unknown_group_by_name_or_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut ada = service(&dir, "ada");
    let e = ada.resolve_group("book club").unwrap_err();
    assert!(
        matches!(&e, ActionError::UnknownGroup(r) if r == "book club"),
        "{e:?}"
    );
    assert_eq!(e.code(), "unknown_group");
    let stranger = SpaceId([9; 32]);
    let e = ada.group_show(&stranger).unwrap_err();
    assert!(matches!(e, ActionError::UnknownGroup(_)), "{e:?}");
    // Posting into a group this identity is not in, by its id.
    let e = ada.post_to(Some(stranger), "let me in", None).unwrap_err();
    assert!(
        matches!(e, ActionError::NotMember { id, .. } if id == stranger),
        "{e:?}"
    );
    assert_eq!(e.code(), "not_member");
}

#[test]
fn two_groups_of_one_name_are_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let mut ada = service(&dir, "ada");
    ada.group_create("ops", "").unwrap();
    ada.group_create("ops", "").unwrap();
    let e = ada.resolve_group("ops").unwrap_err();
    assert!(
        matches!(&e, ActionError::Ambiguous { name, .. } if name == "ops"),
        "{e:?}"
    );
    assert_eq!(e.code(), "ambiguous");
}

#[test]
fn a_deleted_post_takes_no_reply_nor_reaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut ada = service(&dir, "ada");
    let post = ada.post_to(None, "soon gone", None).unwrap();
    ada.delete(&post).unwrap();
    let e = ada.post_to(None, "a reply", Some(post)).unwrap_err();
    assert!(
        matches!(e, ActionError::DeletedPost(p) if p == post),
        "{e:?}"
    );
    assert_eq!(e.code(), "deleted_post");
    let e = ada.react(&post, "🎉").unwrap_err();
    assert!(matches!(e, ActionError::DeletedPost(_)), "{e:?}");
}

#[test]
fn a_post_refused_by_the_group_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut ada = service(&dir, "ada");
    let group = ada.group_create("ops", "").unwrap().id;
    ada.post_to(Some(group), "while a member", None).unwrap();
    ada.group_leave(&group).unwrap();
    let held = ada.export(false).unwrap().changes.len();
    // The group's feed is cached with ada's post in it; the refused change
    // must leave neither the cache nor the store holding it.
    for _ in 0..2 {
        let e = ada.post_to(Some(group), "after leaving", None).unwrap_err();
        assert!(
            matches!(e, ActionError::NotMember { id, .. } if id == group),
            "{e:?}"
        );
    }
    assert_eq!(ada.export(false).unwrap().changes.len(), held);
    ada.post_to(None, "elsewhere, still fine", None).unwrap();
    assert_eq!(ada.export(false).unwrap().changes.len(), held + 1);
}
