//! Which submissions of one transaction may settle side by side: those that read nothing
//! another of them writes, and write nothing another reads or writes. Each names what it
//! reads and writes (a lead, a match key, an account key, an idempotency key, ...) as it
//! learns it; one that touches what an earlier one claimed waits for the next round of
//! the transaction, where it sees the earlier one's writes. What a waiting submission
//! named stays claimed for the round, so a later submission touching it waits too: two
//! submissions of one person settle in the order they came.

use std::collections::HashSet;

/// What one submission reads and writes, as tokens. Two different things may share a
/// token (a hash): then two submissions wait for each other needlessly, never wrongly.
#[derive(Clone, Debug, Default)]
pub(super) struct Claim {
    reads: Vec<u64>,
    writes: Vec<u64>,
}

impl Claim {
    pub(super) fn read(&mut self, kind: &str, value: impl AsRef<[u8]>) {
        self.reads.push(token(kind, value.as_ref()));
    }

    pub(super) fn write(&mut self, kind: &str, value: impl AsRef<[u8]>) {
        self.writes.push(token(kind, value.as_ref()));
    }
}

/// FNV-1a over the kind and the value: stable and cheap; collisions only make a
/// submission wait.
fn token(kind: &str, value: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([0]).chain(value.iter().copied()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The claims of one round, checked in the submissions' order.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    reads: HashSet<u64>,
    writes: HashSet<u64>,
}

impl Ledger {
    /// Admits a claim that touches nothing admitted or blocked before it. A refused one
    /// blocks all it names, for reading and writing.
    pub(super) fn admit(&mut self, claim: &Claim) -> bool {
        let clash = claim.reads.iter().any(|t| self.writes.contains(t))
            || claim.writes.iter().any(|t| self.writes.contains(t) || self.reads.contains(t));
        if clash {
            self.block(claim);
            return false;
        }
        self.reads.extend(&claim.reads);
        self.writes.extend(&claim.writes);
        true
    }

    /// Holds what a waiting submission named, so nothing after it overtakes it there.
    pub(super) fn block(&mut self, claim: &Claim) {
        self.writes.extend(claim.reads.iter().chain(&claim.writes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(reads: &[&str], writes: &[&str]) -> Claim {
        let mut c = Claim::default();
        reads.iter().for_each(|r| c.read("k", r));
        writes.iter().for_each(|w| c.write("k", w));
        c
    }

    #[test]
    fn readers_of_one_thing_go_together_and_a_writer_waits_for_them() {
        let mut ledger = Ledger::default();
        assert!(ledger.admit(&claim(&["acme"], &["lead-1"])));
        assert!(ledger.admit(&claim(&["acme"], &["lead-2"])));
        assert!(!ledger.admit(&claim(&[], &["acme"])), "a write to what was read waits");
    }

    #[test]
    fn a_reader_of_what_an_earlier_one_writes_waits() {
        let mut ledger = Ledger::default();
        assert!(ledger.admit(&claim(&[], &["acme"])));
        assert!(!ledger.admit(&claim(&["acme"], &[])));
        assert!(!ledger.admit(&claim(&[], &["acme"])));
        assert!(ledger.admit(&claim(&["initech"], &["lead-3"])));
    }

    #[test]
    fn what_a_waiting_one_named_stays_taken_for_those_after_it() {
        let mut ledger = Ledger::default();
        assert!(ledger.admit(&claim(&[], &["ada"])));
        // Waits for the first (ada), and holds grace for itself: the third, which shares
        // only grace with it, must not settle before it.
        assert!(!ledger.admit(&claim(&[], &["ada", "grace"])));
        assert!(!ledger.admit(&claim(&["grace"], &[])));
        let mut waiting = Ledger::default();
        waiting.block(&claim(&["acme"], &[]));
        assert!(!waiting.admit(&claim(&["acme"], &[])), "even a read waits behind a blocked name");
    }

    #[test]
    fn kinds_keep_equal_values_apart() {
        let mut ledger = Ledger::default();
        let mut a = Claim::default();
        a.write("mailbox", "x");
        let mut b = Claim::default();
        b.write("account_key", "x");
        assert!(ledger.admit(&a));
        assert!(ledger.admit(&b));
    }
}
