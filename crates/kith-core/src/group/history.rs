//! The causal graph of a control document's changes: one canonical order
//! that every replica computes alike, and which changes happened before
//! which.
//!
//! automerge hands changes out in an order that depends on how they arrived,
//! so replaying in that order would let two members disagree. Here the order
//! is a topological sort that, among the changes whose dependencies are all
//! placed, always places the one with the smallest hash next: a function of
//! the set of changes alone.

use std::collections::{BTreeSet, HashMap};

use automerge::{Change, ChangeHash};

/// A set of change positions, one bit each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn with_len(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn union(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// A control document's changes in canonical order, with their ancestry.
#[derive(Debug)]
pub struct History {
    changes: Vec<Change>,
    /// `ancestors[i]`: every change (by position) that change `i` depends
    /// on, directly or not.
    ancestors: Vec<Bits>,
    position: HashMap<ChangeHash, usize>,
}

impl History {
    /// Orders `changes`. Changes whose dependencies are not all present
    /// (automerge would not have applied them either) are left out, as are
    /// duplicates.
    pub fn new(changes: Vec<Change>) -> History {
        let mut by_hash: HashMap<ChangeHash, Change> = HashMap::new();
        for c in changes {
            by_hash.entry(c.hash()).or_insert(c);
        }
        // Kahn's algorithm with a sorted ready set.
        let mut waiting_on: HashMap<ChangeHash, usize> = HashMap::new();
        let mut dependents: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
        let mut ready: BTreeSet<ChangeHash> = BTreeSet::new();
        for (hash, c) in &by_hash {
            let deps: BTreeSet<ChangeHash> = c.deps().iter().copied().collect();
            waiting_on.insert(*hash, deps.len());
            for d in &deps {
                dependents.entry(*d).or_default().push(*hash);
            }
            if deps.is_empty() {
                ready.insert(*hash);
            }
        }
        let mut changes = Vec::with_capacity(by_hash.len());
        let mut position = HashMap::with_capacity(by_hash.len());
        while let Some(next) = ready.pop_first() {
            position.insert(next, changes.len());
            changes.push(by_hash.remove(&next).expect("each hash is ready once"));
            for d in dependents.remove(&next).unwrap_or_default() {
                let left = waiting_on.get_mut(&d).expect("every change is counted");
                *left -= 1;
                if *left == 0 {
                    ready.insert(d);
                }
            }
        }
        let n = changes.len();
        let mut ancestors: Vec<Bits> = Vec::with_capacity(n);
        for c in &changes {
            let mut bits = Bits::with_len(n);
            for d in c.deps() {
                let p = position[d];
                bits.set(p);
                let parent = ancestors[p].clone();
                bits.union(&parent);
            }
            ancestors.push(bits);
        }
        History {
            changes,
            ancestors,
            position,
        }
    }

    /// The changes in canonical order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether change `a` (a position) happened before change `b`.
    pub fn before(&self, a: usize, b: usize) -> bool {
        self.ancestors[b].has(a)
    }

    /// Whether neither of the two changes knew of the other.
    pub fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.before(a, b) && !self.before(b, a)
    }

    /// The position of the change with `hash`, if it is here.
    pub fn position(&self, hash: &ChangeHash) -> Option<usize> {
        self.position.get(hash).copied()
    }

    /// The positions of `heads` and of everything they depend on: the state
    /// a writer saw when it made a change with these dependencies. `None`
    /// when a head is missing.
    pub fn causal_past(&self, heads: &[ChangeHash]) -> Option<Vec<bool>> {
        let mut past = vec![false; self.changes.len()];
        for h in heads {
            let p = self.position(h)?;
            past[p] = true;
            for (i, seen) in past.iter_mut().enumerate() {
                if self.ancestors[p].has(i) {
                    *seen = true;
                }
            }
        }
        Some(past)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{ActorId, AutoCommit, transaction::Transactable};

    fn change(doc: &mut AutoCommit, key: &str) -> Change {
        doc.put(automerge::ROOT, key, 1).unwrap();
        doc.commit();
        doc.get_last_local_change().unwrap()
    }

    #[test]
    fn the_order_does_not_depend_on_the_arrival_order() {
        let mut a = AutoCommit::new().with_actor(ActorId::from(vec![1u8; 33]));
        let root = change(&mut a, "root");
        let mut b = a.fork().with_actor(ActorId::from(vec![2u8; 33]));
        let a1 = change(&mut a, "a1");
        let a2 = change(&mut a, "a2");
        let b1 = change(&mut b, "b1");
        a.merge(&mut b).unwrap();
        let m = change(&mut a, "merged");
        let all = vec![root, a1, a2, b1, m];
        let order = |cs: Vec<Change>| -> Vec<ChangeHash> {
            History::new(cs)
                .changes()
                .iter()
                .map(|c| c.hash())
                .collect()
        };
        let forward = order(all.clone());
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(order(reversed), forward);
        assert_eq!(forward.len(), 5);

        let h = History::new(all.clone());
        let pos = |c: &Change| h.position(&c.hash()).unwrap();
        assert!(h.before(pos(&all[0]), pos(&all[4])));
        assert!(h.before(pos(&all[1]), pos(&all[2])));
        assert!(h.concurrent(pos(&all[2]), pos(&all[3])));
        assert!(!h.concurrent(pos(&all[3]), pos(&all[4])));
        let past = h.causal_past(&[all[3].hash()]).unwrap();
        assert_eq!(past.iter().filter(|s| **s).count(), 2, "b1 and the root");
    }

    #[test]
    fn changes_with_missing_dependencies_are_left_out() {
        let mut a = AutoCommit::new();
        let first = change(&mut a, "x");
        let second = change(&mut a, "y");
        let h = History::new(vec![second]);
        assert!(h.changes().is_empty());
        assert!(h.causal_past(&[first.hash()]).is_none());
    }
}
