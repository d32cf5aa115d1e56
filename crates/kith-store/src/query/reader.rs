//! Reading the indexes inside one read transaction.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use kith_core::schema::feed::PostText;
use kith_core::schema::text_of_op;
use kith_core::{DocId, IdentityId, PostId, SpaceId};
use redb::ReadTransaction;

use crate::changelog::{BlockCache, Rows};
use crate::docs::parse_change;
use crate::error::StoreError;
use crate::records::Post;
use crate::rows::*;
use crate::tables::*;

/// The tables a read needs, from one read transaction, each opened when
/// first used: opening a table is a lookup in redb's table of tables, and
/// most reads need two or three of these (a waiting call's check for a new
/// post needs one).
pub(super) struct Reader<'t> {
    pub(super) txn: &'t ReadTransaction,
    pub(super) posts: OnceCell<PostsRead>,
    pub(super) people: OnceCell<PeopleRead>,
    pub(super) person_nos: OnceCell<PersonNosRead>,
    pub(super) changes: OnceCell<ChangesRead>,
    pub(super) sealed: OnceCell<SealedRead>,
    pub(super) bodies: OnceCell<BodiesRead>,
    pub(super) blocks: RefCell<BlockCache>,
    pub(super) reactions: OnceCell<ReactionsRead>,
    pub(super) replies: OnceCell<RepliesRead>,
    pub(super) spaces: OnceCell<SpacesRead>,
    pub(super) docs: OnceCell<DocsRead>,
    /// Whom the viewer mutes: views mark their posts and leave out their
    /// reactions. Empty for a read without a viewer.
    pub(super) muted: BTreeSet<u32>,
}

/// Accessors `fn name(&self) -> Result<&table, StoreError>` for the
/// reader's tables, each opened on first use.
macro_rules! lazy_tables {
    ($($name:ident: $def:ident => $table:ident;)*) => {$(
        pub(super) fn $name(&self) -> Result<&$table, StoreError> {
            if let Some(t) = self.$name.get() {
                return Ok(t);
            }
            let t = self.txn.open_table($def)?;
            Ok(self.$name.get_or_init(|| t))
        }
    )*};
}

impl<'t> Reader<'t> {
    pub(super) fn new(txn: &'t ReadTransaction) -> Reader<'t> {
        Reader {
            txn,
            posts: OnceCell::new(),
            people: OnceCell::new(),
            person_nos: OnceCell::new(),
            changes: OnceCell::new(),
            sealed: OnceCell::new(),
            bodies: OnceCell::new(),
            blocks: RefCell::default(),
            reactions: OnceCell::new(),
            replies: OnceCell::new(),
            spaces: OnceCell::new(),
            docs: OnceCell::new(),
            muted: BTreeSet::new(),
        }
    }

    /// A reader for what `viewer` sees: see [`Reader::muted`].
    pub(super) fn seen_by(
        txn: &'t ReadTransaction,
        viewer: Option<&IdentityId>,
    ) -> Result<Self, StoreError> {
        let mut r = Reader::new(txn);
        if let Some(no) = viewer.map(|v| r.person_no(v)).transpose()?.flatten() {
            r.muted = pairs_from(txn, MUTES, no)?;
        }
        Ok(r)
    }

    lazy_tables! {
        posts: POSTS => PostsRead;
        people: PEOPLE => PeopleRead;
        person_nos: PERSON_NOS => PersonNosRead;
        changes: CHANGES => ChangesRead;
        sealed: SEALED => SealedRead;
        bodies: BODIES => BodiesRead;
        reactions: REACTIONS => ReactionsRead;
        replies: REPLIES => RepliesRead;
        spaces: SPACES => SpacesRead;
        docs: DOCS => DocsRead;
    }

    pub(super) fn row(&self, id: &PostId) -> Result<Option<PostRow>, StoreError> {
        match self.posts()?.get(&id.0)? {
            None => Ok(None),
            Some(v) => PostRow::decode(v.value())
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("post row {id}"))),
        }
    }

    pub(super) fn person(&self, no: u32) -> Result<PersonRow, StoreError> {
        self.people()?
            .get(no)?
            .and_then(|v| PersonRow::decode(v.value()))
            .ok_or_else(|| StoreError::Corrupt(format!("person {no}")))
    }

    /// The id of the document numbered `no`.
    pub(super) fn doc_id(&self, no: u32) -> Result<DocId, StoreError> {
        self.docs()?
            .get(no)?
            .and_then(|d| DocId::from_bytes(d.value()).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("doc {no}")))
    }

    pub(super) fn person_no(&self, id: &IdentityId) -> Result<Option<u32>, StoreError> {
        Ok(self.person_nos()?.get(&id.0)?.map(|v| v.value()))
    }

    pub(super) fn text(&self, row: &PostRow) -> Result<Option<String>, StoreError> {
        let Some(t) = row.text else { return Ok(None) };
        self.text_at(row, t)
    }

    /// The body of one text of a post, if it is kept.
    pub(super) fn body(&self, doc_no: u32, t: TextRef) -> Result<Option<Vec<u8>>, StoreError> {
        crate::bodies::BodyRows {
            bodies: self.bodies()?,
            rows: Rows {
                changes: self.changes()?,
                sealed: self.sealed()?,
            },
        }
        .get(doc_no, t, &mut self.blocks.borrow_mut())
    }

    /// One text of a post: from its body, or inline in the change for a
    /// post from before bodies. `None` when the body is not here (erased,
    /// or never received).
    pub(super) fn text_at(&self, row: &PostRow, t: TextRef) -> Result<Option<String>, StoreError> {
        if let Some(body) = self.body(row.doc_no, t)? {
            return Ok(kith_core::body::text_of(&body).map(str::to_owned));
        }
        let rows = Rows {
            changes: self.changes()?,
            sealed: self.sealed()?,
        };
        let key = change_key(row.doc_no, t.actor_no, t.seq);
        let Some(stored) = rows.get_cached(&key, &mut self.blocks.borrow_mut())? else {
            return Err(StoreError::Corrupt(format!(
                "missing change for post {}",
                row.key
            )));
        };
        let change = parse_change(&stored[64..]).map_err(StoreError::Corrupt)?;
        Ok(match text_of_op(&change, t.counter) {
            Some(PostText::Inline(text)) => Some(text),
            Some(PostText::Body(_)) | None => None,
        })
    }

    pub(super) fn view(&self, id: PostId, row: &PostRow) -> Result<Post, StoreError> {
        let author = self.person(row.author_no)?;
        let mut reactions: BTreeMap<String, u32> = BTreeMap::new();
        for entry in self.reactions()?.range(&id.0[..]..)? {
            let (k, _) = entry?;
            let k = k.value();
            if !k.starts_with(&id.0) {
                break;
            }
            let reactor = u32::from_be_bytes(k[16..20].try_into().expect("fixed slice"));
            if self.muted.contains(&reactor) {
                continue;
            }
            let emoji = String::from_utf8_lossy(&k[20..]).into_owned();
            *reactions.entry(emoji).or_default() += 1;
        }
        let replies = self
            .replies()?
            .range::<&[u8; 40]>(
                &reply_key(&id, 0, &PostId([0; 16]))
                    ..=&reply_key(&id, u64::MAX, &PostId([0xff; 16])),
            )?
            .count() as u32;
        // Space 0 is the public space; a group's is read only for its posts.
        let space = match row.space_no {
            0 => SpaceId::PUBLIC,
            no => self
                .spaces()?
                .get(no)?
                .map(|v| SpaceId(*v.value()))
                .ok_or_else(|| StoreError::Corrupt(format!("space {no} of post {id}")))?,
        };
        Ok(Post {
            id,
            space,
            author: author.identity,
            author_name: Some(author.name).filter(|n| !n.is_empty()),
            text: if row.deleted { None } else { self.text(row)? },
            created_at_ms: row.at_ms,
            reply_to: row.reply_to,
            edited: row.edited,
            deleted: row.deleted,
            reactions,
            replies,
            author_muted: self.muted.contains(&row.author_no),
        })
    }

    pub(super) fn children(&self, id: &PostId) -> Result<Vec<PostId>, StoreError> {
        self.replies()?
            .range::<&[u8; 40]>(
                &reply_key(id, 0, &PostId([0; 16]))..=&reply_key(id, u64::MAX, &PostId([0xff; 16])),
            )?
            .map(|e| {
                e.map(|(k, _)| PostId(k.value()[24..].try_into().expect("fixed slice")))
                    .map_err(StoreError::from)
            })
            .collect()
    }
}

/// The second person of every pair in `table` (`BLOCKS`, `MUTES`) whose
/// first is `owner`.
pub(super) fn pairs_from(
    txn: &ReadTransaction,
    table: redb::TableDefinition<&[u8; 8], ()>,
    owner: u32,
) -> Result<BTreeSet<u32>, StoreError> {
    txn.open_table(table)?
        .range::<&[u8; 8]>(&pair_key(owner, 0)..=&pair_key(owner, u32::MAX))?
        .map(|e| {
            e.map(|(k, _)| split_pair_key(k.value()).1)
                .map_err(StoreError::from)
        })
        .collect()
}
