//! Local commits: a change this device makes, signed, journalled, then
//! stored and indexed in one transaction.

use automerge::transaction::CommitOptions;
use kith_core::{DocId, SignedChange, Verified};

use crate::draft::Draft;
use crate::error::{CommitError, StoreError};
use crate::groups::GroupRefusal;
use crate::tx::Writer;

use super::write;
use super::*;

impl Store {
    /// Makes a local change: runs `f` on the document, commits the result as
    /// one automerge change signed by this device, journals it, then stores
    /// and indexes it in one transaction: durable on return unless a session
    /// is open (then through the journal, at [`Store::sync_local`]). Returns
    /// `f`'s value and the signed change (`None` when `f` changed nothing).
    ///
    /// A node publishes the change after this returns and before it syncs
    /// the journal: peers hear only of changes this store holds. A change
    /// whose transaction fails is never returned, and its journal record is
    /// taken back, so its sequence number is free for the next change.
    pub fn commit_local<T, E: std::fmt::Display>(
        &mut self,
        doc_id: DocId,
        signer: LocalSigner<'_>,
        now_ms: u64,
        f: impl FnOnce(&mut Draft<'_>) -> Result<T, E>,
    ) -> Result<(T, Option<Verified<SignedChange>>), CommitError> {
        self.heal()?;
        let result = self.commit_local_inner(doc_id, signer, now_ms, f);
        self.note(result)
    }

    fn commit_local_inner<T, E: std::fmt::Display>(
        &mut self,
        doc_id: DocId,
        signer: LocalSigner<'_>,
        now_ms: u64,
        f: impl FnOnce(&mut Draft<'_>) -> Result<T, E>,
    ) -> Result<(T, Option<Verified<SignedChange>>), CommitError> {
        self.ensure_space()?;
        let actor = self.actor_for(&signer.key.id());
        self.sealing_due = true;
        // Durable through the journal, not through this commit.
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| CommitError::Store(StoreError::Corrupt(e.to_string())))?;
        self.unflushed = true;
        // Set when a change was made but the group's rules refuse it: the
        // cached document holds it and must be dropped.
        let mut tainted = None;
        let mut changed = Vec::new();
        // Where the journal stood before this change's record, once it has one.
        let mut journalled_from = None;
        let result = (|| {
            let mut w = Writer::open(&txn)?;
            let doc_no = w.intern_doc(&doc_id)?;
            let doc = self.docs.get(w.rows()?, doc_no)?;
            doc.set_actor(actor.clone());
            let mut draft = Draft::new(doc);
            let made = f(&mut draft);
            let bodies = draft.into_bodies();
            let value = match made {
                Ok(v) => v,
                Err(e) => {
                    doc.rollback();
                    return Err(CommitError::Invalid(e.to_string()));
                }
            };
            if doc
                .commit_with(CommitOptions::default().with_time(now_ms as i64))
                .is_none()
            {
                return Ok((value, None));
            }
            let change = doc
                .get_last_local_change()
                .expect("a change was just committed")
                .clone();
            // The same gate as changes from elsewhere pass.
            if doc_id.kind == kith_core::DocKind::GroupControl || !doc_id.space.is_public() {
                let fresh = vec![(0, signer.author, (), change.clone())];
                if let Some((_, why)) = self.admit(&mut w, &doc_id, doc_no, fresh)?.refused.pop() {
                    tainted = Some(doc_no);
                    return Err(match why {
                        GroupRefusal::NotMember => CommitError::NotMember(doc_id.space),
                        GroupRefusal::Control(why) => {
                            CommitError::Invalid(format!("the group refuses this: {why}"))
                        }
                    });
                }
                if doc_id.kind == kith_core::DocKind::GroupControl {
                    self.groups.forget(&doc_id.space);
                }
            }
            let mut verified = SignedChange::sign(
                doc_id,
                change.raw_bytes().to_vec(),
                signer.key,
                signer.author,
            )?;
            // The journal record carries the bodies: they are as much part
            // of an acknowledged post as its change.
            verified.attach_bodies(bodies);
            let from = self.journal.bytes();
            self.journal
                .append(verified.signed())
                .map_err(StoreError::from)?;
            journalled_from = Some(from);
            let author_no = w.intern_person(&signer.author)?;
            let actor_no = w.intern_actor(actor.to_bytes())?;
            let doc = self.docs.get(w.rows()?, doc_no)?;
            let target = write::Target {
                doc: doc_id,
                doc_no,
                author_no,
            };
            let row = (actor_no, &change, &verified.signed().signature);
            write::write(&mut w, doc, target, row, &verified.signed().bodies)?;
            changed = std::mem::take(&mut w.changed);
            Ok((value, Some(verified)))
        })();
        match result {
            Ok(v) => match txn.commit() {
                Ok(()) => {
                    let erased = erases(&changed);
                    self.changed.extend(changed);
                    if v.1.is_some() && !self.session {
                        self.sync_local()?;
                    }
                    if erased {
                        self.checkpoint_after_erasure();
                    }
                    Ok(v)
                }
                Err(e) => {
                    self.docs.clear();
                    self.groups.clear();
                    self.take_back(journalled_from);
                    Err(e.into())
                }
            },
            Err(e @ (CommitError::Invalid(_) | CommitError::NotMember(_))) => {
                // Only the document's cached copy holds the refused
                // change; the gate read the group's state, never changed it.
                if let Some(doc_no) = tainted {
                    self.docs.evict(doc_no);
                }
                Err(e)
            }
            Err(e) => {
                self.docs.clear();
                self.groups.clear();
                self.take_back(journalled_from);
                Err(e)
            }
        }
    }

    /// Takes back the journal record of a local change that was not stored:
    /// replaying it would fail the same way, and the next change takes its
    /// sequence number.
    fn take_back(&mut self, journalled_from: Option<u64>) {
        if let Some(len) = journalled_from
            && let Err(e) = self.journal.truncate(len)
        {
            tracing::warn!(error = %e, "could not take back the journal record of a failed change");
        }
    }
}
