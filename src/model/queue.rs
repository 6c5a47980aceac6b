//! Lease state of one queue (API.md §13), pure: leases, delivery counters, the reclaim set,
//! delayed redeliveries, the claim cursor over never-leased seqs, and the lease-id counter.
//! The clock is a parameter of every call; nothing here reads time or touches a topic.
//!
//! States of a seq: available (never leased, or in `reclaim`) → leased → acked (forgotten) |
//! released (back to `reclaim`) | delayed (until `ready_at`) | dead-lettered (forgotten).
//! Invariants: a seq is in at most one of `leases`, `reclaim`, `delayed`; a leased seq has
//! exactly one holder; a lease number is never issued twice; delivery counters only grow
//! until the seq is forgotten.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// One lease: who holds the seq, with which id, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub node: Arc<str>,
    /// `lease_id` is `lease_` + lowercase hex of this.
    pub lease_no: u64,
    pub deadline: i64,
    /// The `/work` connection that received it, if any (released when it closes).
    pub conn: Option<u64>,
}

/// A seq's lasting state, as logged and recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqState {
    pub deliveries: u32,
    pub lease: Option<Lease>,
    /// Claimable again at this time (a delayed nack); 0 when not delayed.
    pub ready_at: i64,
    /// The `reason` of the last nack, if it gave one (carried into a dead-letter copy).
    pub reason: Option<String>,
}

/// Retry backoff (an extension, see `TopicConfig::retry_backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// The wait before redelivery number `deliveries + 1`: between half and all of
    /// `min(max, base · 2^(deliveries-1))`. The jitter is a hash of (seq, deliveries), so
    /// jobs that failed together spread out, and a replay computes the same wait.
    pub fn delay_ms(&self, seq: u64, deliveries: u32) -> u64 {
        let shift = deliveries.saturating_sub(1).min(40);
        let full = self.base_ms.saturating_mul(1 << shift).min(self.max_ms);
        let half = full / 2;
        full - half + mix(seq ^ (u64::from(deliveries) << 40)) % (half + 1)
    }
}

/// splitmix64: a cheap, well-spread hash for the jitter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn lease_id(no: u64) -> String {
    format!("lease_{no:x}")
}

/// `lease_<hex>` → its number; `None` when malformed.
pub fn parse_lease_id(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("lease_")?;
    let ok = !hex.is_empty() && hex.len() <= 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

#[derive(Debug, Clone, Default)]
pub struct LeaseBook {
    leases: BTreeMap<u64, Lease>,
    /// The same leases by deadline, so expiry and the in-flight count never scan them all.
    by_deadline: BTreeSet<(i64, u64)>,
    deliveries: HashMap<u64, u32>,
    reclaim: BTreeSet<u64>,
    delayed: BTreeSet<(i64, u64)>,
    ready_at: HashMap<u64, i64>,
    /// Seqs whose backoff is over, each behind the fresh work that was waiting when it
    /// became due: claimable once the cursor reaches its gate. (gate, seq).
    gated: BTreeSet<(u64, u64)>,
    gate_of: HashMap<u64, u64>,
    /// Seqs whose delay is a backoff (gated when due) rather than a nack's `delay_ms`.
    backing_off: std::collections::HashSet<u64>,
    /// The topic's head as last seen: the gate of a backoff that ends now.
    head_hint: u64,
    reasons: HashMap<u64, String>,
    /// When each current lease was granted (not logged: after a restart, unknown).
    granted_at: HashMap<u64, i64>,
    /// Every seq at or below it was offered to a claim once (fresh work lies above).
    cursor: u64,
    last_lease: u64,
    pub dead_lettered: u64,
}

impl LeaseBook {
    /// Rebuild from logged state (recovery). Released seqs go back to `reclaim`, so after a
    /// restart every live seq not leased or delayed is claimable again.
    pub fn restore(states: BTreeMap<u64, SeqState>, last_lease: u64, dead_lettered: u64) -> Self {
        let mut b = LeaseBook {
            last_lease,
            dead_lettered,
            ..LeaseBook::default()
        };
        for (seq, s) in states {
            b.deliveries.insert(seq, s.deliveries);
            if let Some(r) = s.reason {
                b.reasons.insert(seq, r);
            }
            if let Some(l) = s.lease {
                b.last_lease = b.last_lease.max(l.lease_no);
                b.put_lease(seq, Lease { conn: None, ..l });
            } else if s.ready_at > 0 {
                b.delay(seq, s.ready_at);
            } else {
                b.reclaim.insert(seq);
            }
        }
        b
    }

    /// Lazy expiry (API.md §13): leases past their deadline go back to `reclaim` (or into a
    /// backoff, with `backoff`), and delayed seqs that are due become claimable (a backoff
    /// that ends queues behind the fresh work up to `head_hint`). Returns the seqs whose
    /// leases expired.
    pub fn expire(&mut self, now: i64, backoff: Option<Backoff>) -> Vec<u64> {
        let mut expired = Vec::new();
        while let Some(&(deadline, s)) = self.by_deadline.first() {
            if deadline >= now {
                break;
            }
            self.take_lease(s);
            expired.push(s);
        }
        for &s in &expired {
            match backoff {
                Some(b) => self.back_off(s, now, b),
                None => {
                    self.reclaim.insert(s);
                }
            }
        }
        while let Some(&(at, seq)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            self.ready_at.remove(&seq);
            if self.backing_off.remove(&seq) {
                self.gated.insert((self.head_hint, seq));
                self.gate_of.insert(seq, self.head_hint);
            } else {
                self.reclaim.insert(seq);
            }
        }
        expired
    }

    /// The topic's head as seen now (the gate of backoffs ending from now on).
    pub fn note_head(&mut self, head: u64) {
        self.head_hint = self.head_hint.max(head);
    }

    /// Release `seq` into a backoff: invisible for `backoff.delay_ms`, then gated.
    pub fn back_off(&mut self, seq: u64, now: i64, backoff: Backoff) {
        self.take_lease(seq);
        let wait = backoff.delay_ms(seq, self.deliveries(seq));
        self.delay(seq, now + wait as i64);
        self.backing_off.insert(seq);
    }

    /// Gated seqs whose gate the cursor reached join `reclaim`.
    fn open_gates(&mut self) {
        while let Some(&(gate, seq)) = self.gated.first() {
            if gate > self.cursor {
                break;
            }
            self.gated.pop_first();
            self.gate_of.remove(&seq);
            self.reclaim.insert(seq);
        }
    }

    /// Seqs waiting behind fresh work for their gate.
    pub fn gated_count(&self) -> u64 {
        self.gated.len() as u64
    }

    pub fn set_reason(&mut self, seq: u64, reason: String) {
        self.reasons.insert(seq, reason);
    }

    pub fn reason(&self, seq: u64) -> Option<&str> {
        self.reasons.get(&seq).map(String::as_str)
    }

    /// Take up to `n` seqs from `reclaim`, lowest first. The caller leases, dead-letters or
    /// forgets each, or hands it back with [`LeaseBook::put_back`].
    pub fn take_reclaimed(&mut self, n: usize) -> Vec<u64> {
        self.open_gates();
        let mut out = Vec::with_capacity(n.min(self.reclaim.len()));
        while out.len() < n {
            match self.reclaim.pop_first() {
                Some(s) => out.push(s),
                None => break,
            }
        }
        out
    }

    pub fn put_back(&mut self, seq: u64) {
        self.reclaim.insert(seq);
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Fresh work was examined up to `seq`.
    pub fn advance_cursor(&mut self, seq: u64) {
        self.cursor = self.cursor.max(seq);
    }

    /// Is `seq` tracked (leased, waiting in `reclaim`, or delayed)? Such a seq is not fresh
    /// work, whatever the cursor says (after a restart the cursor starts at 0).
    pub fn tracked(&self, seq: u64) -> bool {
        self.leases.contains_key(&seq)
            || self.reclaim.contains(&seq)
            || self.ready_at.contains_key(&seq)
            || self.gate_of.contains_key(&seq)
    }

    /// Count one more delivery of `seq`; the new count.
    pub fn bump(&mut self, seq: u64) -> u32 {
        let d = self.deliveries.entry(seq).or_insert(0);
        *d = d.saturating_add(1);
        *d
    }

    /// Take back a delivery that did not happen (its lease could not be logged, or its
    /// dead-letter move failed).
    pub fn unbump(&mut self, seq: u64) {
        if let Some(d) = self.deliveries.get_mut(&seq) {
            *d = d.saturating_sub(1);
        }
    }

    pub fn deliveries(&self, seq: u64) -> u32 {
        self.deliveries.get(&seq).copied().unwrap_or(0)
    }

    /// Lease `seq` (its delivery already counted) to `node` until `deadline`.
    pub fn grant(&mut self, seq: u64, node: Arc<str>, deadline: i64, conn: Option<u64>) -> &Lease {
        self.last_lease += 1;
        self.reclaim.remove(&seq);
        let lease = Lease {
            node,
            lease_no: self.last_lease,
            deadline,
            conn,
        };
        self.put_lease(seq, lease);
        &self.leases[&seq]
    }

    fn put_lease(&mut self, seq: u64, lease: Lease) {
        self.by_deadline.insert((lease.deadline, seq));
        if let Some(old) = self.leases.insert(seq, lease) {
            self.by_deadline.remove(&(old.deadline, seq));
        }
    }

    fn take_lease(&mut self, seq: u64) -> Option<Lease> {
        let l = self.leases.remove(&seq)?;
        self.by_deadline.remove(&(l.deadline, seq));
        Some(l)
    }

    /// Remember when the lease on `seq` was granted (for the oldest-lease metric).
    pub fn note_granted(&mut self, seq: u64, now: i64) {
        self.granted_at.insert(seq, now);
    }

    /// Age of the oldest unexpired lease granted since the start, in ms (0 when none).
    pub fn oldest_lease_ms(&self, now: i64) -> u64 {
        self.leases
            .iter()
            .filter(|(_, l)| now <= l.deadline)
            .filter_map(|(s, _)| self.granted_at.get(s))
            .map(|&at| now.saturating_sub(at).max(0) as u64)
            .max()
            .unwrap_or(0)
    }

    /// Does `node` hold an unexpired lease on `seq` (with lease number `fence`, if given)?
    pub fn holds(&self, seq: u64, node: &str, fence: Option<u64>, now: i64) -> bool {
        self.leases.get(&seq).is_some_and(|l| {
            &*l.node == node && now <= l.deadline && fence.is_none_or(|f| f == l.lease_no)
        })
    }

    pub fn lease(&self, seq: u64) -> Option<&Lease> {
        self.leases.get(&seq)
    }

    /// `seq` is gone for good (acked, dead-lettered, deleted, evicted): forget everything.
    pub fn forget(&mut self, seq: u64) {
        self.take_lease(seq);
        self.deliveries.remove(&seq);
        self.reclaim.remove(&seq);
        if let Some(at) = self.ready_at.remove(&seq) {
            self.delayed.remove(&(at, seq));
        }
        if let Some(gate) = self.gate_of.remove(&seq) {
            self.gated.remove(&(gate, seq));
        }
        self.backing_off.remove(&seq);
        self.reasons.remove(&seq);
        self.granted_at.remove(&seq);
    }

    /// Drop the lease; claimable at once (`ready_at <= now`) or from `ready_at` on.
    pub fn release(&mut self, seq: u64, ready_at: i64, now: i64) {
        self.take_lease(seq);
        if ready_at > now {
            self.delay(seq, ready_at);
        } else {
            self.reclaim.insert(seq);
        }
    }

    fn delay(&mut self, seq: u64, at: i64) {
        self.delayed.insert((at, seq));
        self.ready_at.insert(seq, at);
    }

    pub fn extend(&mut self, seq: u64, deadline: i64) {
        if let Some(l) = self.take_lease(seq) {
            self.put_lease(seq, Lease { deadline, ..l });
        }
    }

    /// Release every lease delivered on `/work` connection `conn` (it closed).
    pub fn release_conn(&mut self, conn: u64) -> Vec<u64> {
        let seqs: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.conn == Some(conn))
            .map(|(s, _)| *s)
            .collect();
        for s in &seqs {
            self.take_lease(*s);
            self.reclaim.insert(*s);
        }
        seqs
    }

    /// Unexpired leases held through `/work` connection `conn`.
    pub fn held_by_conn(&self, conn: u64, now: i64) -> usize {
        self.leases
            .values()
            .filter(|l| l.conn == Some(conn) && now <= l.deadline)
            .count()
    }

    /// Unexpired leases (`in_flight` before liveness is applied).
    pub fn in_flight(&self, now: i64) -> u64 {
        // Expired leases are few (expiry runs before every operation): count those.
        let expired = self.by_deadline.range(..(now, 0)).count();
        (self.leases.len() - expired) as u64
    }

    /// Delayed seqs not yet due (nack delays and backoffs).
    pub fn delayed_count(&self) -> u64 {
        self.delayed.len() as u64
    }

    pub fn last_lease(&self) -> u64 {
        self.last_lease
    }

    /// The lasting state of every tracked seq, for a checkpoint.
    pub fn states(&self) -> BTreeMap<u64, SeqState> {
        let mut out = BTreeMap::new();
        for (&seq, &deliveries) in &self.deliveries {
            out.insert(seq, self.state(seq, deliveries));
        }
        out
    }

    pub fn state(&self, seq: u64, deliveries: u32) -> SeqState {
        SeqState {
            deliveries,
            lease: self.leases.get(&seq).cloned(),
            ready_at: self.ready_at.get(&seq).copied().unwrap_or(0),
            reason: self.reasons.get(&seq).cloned(),
        }
    }
}

#[cfg(test)]
mod tests;
