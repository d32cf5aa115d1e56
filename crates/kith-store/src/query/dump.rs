//! The indexes as text, for comparing two stores (`kith check`, tests).

use kith_core::PostId;
use redb::{ReadableDatabase, ReadableTable};

use super::*;
use crate::error::StoreError;
use crate::rows::*;
use crate::store::Store;
use crate::tables::*;

impl Store {
    /// The logical content of every index, with local numbers resolved to
    /// global ids: two replicas that hold the same changes return the same
    /// lines, whatever order the changes arrived in.
    pub fn index_dump(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let r = Reader::new(&txn);
        let actors = txn.open_table(ACTORS)?;
        let actor = |no: u32| -> Result<String, StoreError> {
            Ok(actors
                .get(no)?
                .map(|a| a.value().iter().map(|b| format!("{b:02x}")).collect())
                .unwrap_or_default())
        };
        let person =
            |no: u32| -> Result<String, StoreError> { Ok(r.person(no)?.identity.to_string()) };
        let mut lines = Vec::new();
        for entry in r.posts()?.iter()? {
            let (k, v) = entry?;
            let id = PostId(*k.value());
            let row =
                PostRow::decode(v.value()).ok_or_else(|| StoreError::Corrupt("post row".into()))?;
            let view = r.view(id, &row)?;
            lines.push(format!(
                "post {id} {} {:?}",
                person(row.author_no)?,
                (
                    row.at_ms,
                    row.deleted,
                    row.edited,
                    row.reply_to,
                    row.key.as_str(),
                    &view.text,
                    &view.reactions,
                    view.replies
                )
            ));
        }
        for (name, table) in [
            ("feed", txn.open_table(FEED)?),
            ("by_author", txn.open_table(BY_AUTHOR)?),
        ] {
            for entry in table.iter()? {
                let (k, _) = entry?;
                let k = k.value();
                let prefix = u32::from_be_bytes(k[..4].try_into().expect("fixed slice"));
                let who = if name == "feed" {
                    prefix.to_string()
                } else {
                    person(prefix)?
                };
                lines.push(format!("{name} {who} {:?} {}", &k[4..12], timeline_post(k)));
            }
        }
        for entry in r.replies()?.iter()? {
            let (k, _) = entry?;
            lines.push(format!("reply {:?}", k.value()));
        }
        for entry in txn.open_table(VERSIONS)?.iter()? {
            let (k, v) = entry?;
            let (time, actor_no, seq) = split_version_key(k.value());
            lines.push(format!(
                "version {} {time} {} {seq} {}",
                PostId(k.value()[..16].try_into().expect("fixed")),
                actor(actor_no)?,
                v.value()
            ));
        }
        for entry in r.reactions()?.iter()? {
            let (k, _) = entry?;
            let k = k.value();
            let who = u32::from_be_bytes(k[16..20].try_into().expect("fixed slice"));
            lines.push(format!(
                "reaction {} {} {}",
                PostId(k[..16].try_into().expect("fixed")),
                person(who)?,
                String::from_utf8_lossy(&k[20..])
            ));
        }
        for (name, table) in [
            ("follow", txn.open_table(FOLLOWS)?),
            ("block", txn.open_table(BLOCKS)?),
            ("mute", txn.open_table(MUTES)?),
        ] {
            for entry in table.iter()? {
                let (k, _) = entry?;
                let (a, b) = split_pair_key(k.value());
                lines.push(format!("{name} {} {}", person(a)?, person(b)?));
            }
        }
        for entry in txn.open_table(LABELS)?.iter()? {
            let (k, _) = entry?;
            let k = k.value();
            let (a, b) = split_pair_key(k[..8].try_into().expect("fixed slice"));
            lines.push(format!(
                "label {} {} {}",
                person(a)?,
                person(b)?,
                String::from_utf8_lossy(&k[8..])
            ));
        }
        for entry in r.people()?.iter()? {
            let (_, v) = entry?;
            let p = PersonRow::decode(v.value())
                .ok_or_else(|| StoreError::Corrupt("person row".into()))?;
            lines.push(format!("person {} {:?} {:?}", p.identity, p.name, p.bio));
        }
        lines.sort();
        Ok(lines)
    }
}
