//! Calls that wait on the node for something to arrive: a new post by
//! someone, or a network probe. A program learns of an arrival the moment the
//! service thread sees it instead of polling, which is also what makes the
//! latency benchmarks exact. Bounded: a few hundred waiting calls at most,
//! each for at most a minute.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kith_core::{IdentityId, PostId};
use tokio::sync::oneshot;

use crate::call::Reply;
use crate::service::ActionError;

/// Most posts a feed wait may name as already seen.
pub const MAX_SEEN: usize = 16;
/// Most calls waiting at once; more are refused.
pub const MAX_WAITERS: usize = 256;
/// Longest a call may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Probes remembered after arrival, for a wait that comes in late.
const PROBES_KEPT: usize = 1024;

/// What a call waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// A post by `author` that is not in `seen` and no older than any of
    /// them, among their newest `seen.len()` (at least one). `seen` is the
    /// caller's latest few posts (at most [`MAX_SEEN`]): a new post sorts
    /// among them even when it was made in the same millisecond as some,
    /// whose order is arbitrary.
    Feed {
        author: IdentityId,
        seen: Vec<PostId>,
    },
    /// The probe with this nonce to arrive.
    Probe(u64),
}

type ReplyTx = oneshot::Sender<Result<Reply, ActionError>>;

#[derive(Debug)]
struct Waiter {
    what: Awaited,
    deadline: Instant,
    reply: ReplyTx,
}

/// The calls waiting, and the probes that arrived.
#[derive(Debug, Default)]
pub struct Waiters {
    waiting: Vec<Waiter>,
    probes: VecDeque<u64>,
}

/// Reads an author's newest posts (with their creation times), at most the
/// given number, newest first.
pub type Newest<'a> = dyn FnMut(&IdentityId, usize) -> Vec<(PostId, u64)> + 'a;

impl Waiters {
    /// How many calls are waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Answers at once if `what` has happened (`newest` reads an author's
    /// newest post), else parks the call until it does or `timeout` passes.
    pub fn park(
        &mut self,
        what: Awaited,
        timeout: Duration,
        reply: ReplyTx,
        newest: &mut Newest<'_>,
    ) {
        if let Awaited::Feed { seen, .. } = &what
            && seen.len() > MAX_SEEN
        {
            let _ = reply.send(Err(ActionError::Invalid(format!(
                "a wait may name at most {MAX_SEEN} posts as seen"
            ))));
            return;
        }
        if let Some(answer) = self.answer(&what, newest, false) {
            let _ = reply.send(Ok(answer));
        } else if self.waiting.len() >= MAX_WAITERS {
            let _ = reply.send(Err(ActionError::Invalid(format!(
                "{MAX_WAITERS} calls are already waiting; try again later"
            ))));
        } else {
            self.waiting.push(Waiter {
                what,
                deadline: Instant::now() + timeout.min(MAX_WAIT),
                reply,
            });
        }
    }

    /// Records a probe's arrival.
    pub fn probe_arrived(&mut self, nonce: u64) {
        if self.probes.len() >= PROBES_KEPT {
            self.probes.pop_front();
        }
        self.probes.push_back(nonce);
    }

    /// Answers every waiting call whose event has happened.
    pub fn wake(&mut self, news_of: &dyn Fn(&IdentityId) -> bool, newest: &mut Newest<'_>) {
        if self.waiting.is_empty() {
            return;
        }
        // Each author's newest posts are read once, however many wait on
        // them (again only if a wait needs more than were read).
        let mut read: std::collections::HashMap<IdentityId, (usize, Vec<(PostId, u64)>)> =
            Default::default();
        let mut newest = |a: &IdentityId, n: usize| -> Vec<(PostId, u64)> {
            match read.get(a) {
                Some((asked, posts)) if *asked >= n => posts.iter().take(n).copied().collect(),
                _ => {
                    let posts = newest(a, n);
                    read.insert(*a, (n, posts.clone()));
                    posts
                }
            }
        };
        let mut still = Vec::with_capacity(self.waiting.len());
        for w in std::mem::take(&mut self.waiting) {
            // A feed with nothing new is not read again.
            if let Awaited::Feed { author, .. } = &w.what
                && !news_of(author)
            {
                still.push(w);
                continue;
            }
            match self.answer(&w.what, &mut newest, true) {
                Some(answer) => {
                    let _ = w.reply.send(Ok(answer));
                }
                None => still.push(w),
            }
        }
        self.waiting = still;
    }

    /// Fails the calls whose time is up (and forgets those whose caller left).
    pub fn expire(&mut self, now: Instant) {
        let (late, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .filter(|w| !w.reply.is_closed())
            .partition(|w| w.deadline <= now);
        self.waiting = still;
        for w in late {
            let _ = w.reply.send(Err(ActionError::Invalid(format!(
                "timed out waiting for {:?}",
                w.what
            ))));
        }
    }

    /// What answers `what` now, if anything. With `news` (the author's feed
    /// just changed), the newest post usually settles it and is one row to
    /// read: if the caller has not seen it, it is no older than anything they
    /// have. Without (a call arriving), the caller has usually just seen the
    /// newest post, so the one-row look would only come before the full read.
    fn answer(&self, what: &Awaited, newest: &mut Newest<'_>, news: bool) -> Option<Reply> {
        match what {
            Awaited::Feed { author, seen } => {
                if news {
                    match newest(author, 1).first() {
                        None => return None,
                        Some((p, _)) if !seen.contains(p) => return Some(Reply::Post(*p)),
                        Some(_) => {}
                    }
                }
                let posts = newest(author, seen.len().max(1));
                let floor = posts
                    .iter()
                    .filter(|(p, _)| seen.contains(p))
                    .map(|(_, at)| *at)
                    .max()
                    .unwrap_or(0);
                posts
                    .into_iter()
                    .find(|(p, at)| !seen.contains(p) && *at >= floor)
                    .map(|(p, _)| Reply::Post(p))
            }
            Awaited::Probe(nonce) => self.probes.contains(nonce).then_some(Reply::Done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> PostId {
        PostId([b; 16])
    }

    #[test]
    fn a_wait_is_answered_when_its_event_happens_and_not_before() {
        let author = IdentityId([1; 32]);
        let mut w = Waiters::default();
        let (tx, mut rx) = oneshot::channel();
        let what = Awaited::Feed {
            author,
            seen: vec![id(1), id(0)],
        };
        let before = |n: usize| {
            [(id(1), 5), (id(0), 4)]
                .into_iter()
                .take(n)
                .collect::<Vec<_>>()
        };
        w.park(what, MAX_WAIT, tx, &mut |_, n| before(n));
        assert_eq!(w.len(), 1);
        w.wake(&|_| true, &mut |_, n| before(n));
        assert!(rx.try_recv().is_err(), "nothing new yet");
        // No news of this author: the feed is not read at all.
        w.wake(&|a| *a != author, &mut |_, _| {
            panic!("read a feed that has no news")
        });
        assert_eq!(w.len(), 1);
        // Made in the same millisecond as post 1, the new one sorts second.
        w.wake(&|_| true, &mut |_, n| {
            [(id(1), 5), (id(2), 5), (id(0), 4)]
                .into_iter()
                .take(n)
                .collect()
        });
        assert!(matches!(rx.try_recv(), Ok(Ok(Reply::Post(p))) if p == id(2)));
        assert!(w.is_empty());
        // An older post the caller had not listed is not news.
        let (tx, mut rx) = oneshot::channel();
        let what = Awaited::Feed {
            author,
            seen: vec![id(2), id(1)],
        };
        w.park(what, MAX_WAIT, tx, &mut |_, _| vec![(id(2), 5), (id(9), 3)]);
        assert!(rx.try_recv().is_err(), "post 9 is older than what was seen");
    }

    #[test]
    fn a_wait_reads_once_when_parked_and_one_row_when_news_comes() {
        let author = IdentityId([1; 32]);
        let mut w = Waiters::default();
        let (mut receivers, mut asked) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel();
            let what = Awaited::Feed {
                author,
                seen: vec![id(1), id(0)],
            };
            w.park(what, MAX_WAIT, tx, &mut |_, n| {
                asked.push(n);
                [(id(1), 5), (id(0), 4)].into_iter().take(n).collect()
            });
            receivers.push(rx);
        }
        assert_eq!(asked, [2, 2, 2], "one read per call as it arrives");
        asked.clear();
        w.wake(&|_| true, &mut |_, n| {
            asked.push(n);
            [(id(2), 6), (id(1), 5), (id(0), 4)]
                .into_iter()
                .take(n)
                .collect()
        });
        assert_eq!(asked, [1], "one read of one row answers all three waits");
        for mut rx in receivers {
            assert!(matches!(rx.try_recv(), Ok(Ok(Reply::Post(p))) if p == id(2)));
        }
    }

    #[test]
    fn probes_answer_waits_that_come_before_or_after_them() {
        let mut w = Waiters::default();
        let (early, mut early_rx) = oneshot::channel();
        w.park(Awaited::Probe(7), MAX_WAIT, early, &mut |_, _| vec![]);
        w.probe_arrived(7);
        w.wake(&|_| false, &mut |_, _| vec![]);
        assert!(matches!(early_rx.try_recv(), Ok(Ok(Reply::Done))));
        let (late, mut late_rx) = oneshot::channel();
        w.park(Awaited::Probe(7), MAX_WAIT, late, &mut |_, _| vec![]);
        assert!(matches!(late_rx.try_recv(), Ok(Ok(Reply::Done))));
    }

    #[test]
    fn waits_time_out_and_are_bounded() {
        let mut w = Waiters::default();
        let mut receivers = Vec::new();
        for i in 0..MAX_WAITERS as u64 + 1 {
            let (tx, rx) = oneshot::channel();
            w.park(
                Awaited::Probe(i),
                Duration::from_millis(1),
                tx,
                &mut |_, _| vec![],
            );
            receivers.push(rx);
        }
        assert_eq!(w.len(), MAX_WAITERS);
        assert!(matches!(
            receivers.last_mut().unwrap().try_recv(),
            Ok(Err(ActionError::Invalid(_)))
        ));
        w.expire(Instant::now() + Duration::from_secs(1));
        assert!(w.is_empty());
        assert!(matches!(
            receivers[0].try_recv(),
            Ok(Err(ActionError::Invalid(_)))
        ));
    }
}
