//! The core's side of the Redis store (`streams/state/journal.py`, `redis_store.py`): per
//! lead saved, what `journal.write` would store:
//! a delta of what changed since the lead's checkpoint (what the store holds), or a
//! snapshot once the journal would outgrow it.
//!
//! Invariants:
//! - every history entry and `seen` entry carries a sequence number from one process-wide
//!   counter (`next_seq`), so within a lead's list they ascend in list order (entries are
//!   only appended, or dropped); a checkpoint keeps the numbers of each list as stored and
//!   the counter's value then (`next`): an entry numbered below `next` was stored, one
//!   numbered from `next` on was appended since. A delta is then found from the numbers
//!   alone: entries dropped (a count from the head, or positions) and entries appended, as
//!   `journal._diff` finds them from object identity;
//! - a checkpoint changes only when Python says the save was stored (`commit`), and then to
//!   what the payload handed out holds (its change applied: a count dropped from the head of
//!   each list and the numbers appended, so the cost is the batch's change, not the
//!   history's length); a lead whose save failed, or whose batch raised, is evicted (Python
//!   reads it again cold).

use crate::engine::{Lead, Seen};
use crate::json;
use crate::value::IMap;
use pyo3::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(1);

/// The next sequence number of a history or `seen` entry.
pub fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    static FAULT: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// A Python callback the engine called raised (the evaluation goes on, as if it returned
/// None; the batch's caller then fails the batch with it: `take_fault`).
pub fn note_fault(err: PyErr) {
    FAULT.with(|f| {
        let mut f = f.borrow_mut();
        if f.is_none() {
            *f = Some(err);
        }
    });
}

pub fn take_fault() -> Option<PyErr> {
    FAULT.with(|f| f.borrow_mut().take())
}

/// What the store holds for one lead (`journal.Stored`), as sequence numbers.
///
/// Its cost per batch is the batch's change, not the lead's history: `delta` finds each
/// list's kept part by a binary search on the numbers (they ascend) and checks a drop from
/// the head with one comparison; `commit` drops from the head of each stored list and
/// appends the numbers the delta appended (`Pending`). Only a drop from further in (a late
/// entry past the retention, the bounds' trim, an identity seen again) walks the list, as
/// `journal._diff` does; and a snapshot, which writes the whole state anyway, copies every
/// number.
pub struct Checkpoint {
    next: u64,
    history: BTreeMap<i64, VecDeque<u64>>,
    seen: VecDeque<u64>,
    /// 0: nothing stored, or a snapshot of an earlier format: the next save is a snapshot.
    snapshot_bytes: usize,
    journal_bytes: usize,
    /// What the store holds once the payload last handed out is stored (`commit` takes it).
    pending: Option<Pending>,
}

/// The payload last handed out, as the checkpoint's change once it is stored.
struct Pending {
    snapshot_bytes: usize,
    journal_bytes: usize,
    /// The counter's value when the payload was made: every number in it is below.
    next: u64,
    change: Change,
}

enum Change {
    /// A snapshot: every list's numbers, as the payload holds them.
    Whole(BTreeMap<i64, VecDeque<u64>>, VecDeque<u64>),
    /// A delta: per history type it names, None (the type is gone) or what it dropped and
    /// the numbers of the entries it appended; then the same for `seen`.
    Delta(Vec<(i64, Option<(Dropped, Vec<u64>)>)>, (Dropped, Vec<u64>)),
}

fn numbers(lead: &Lead) -> (BTreeMap<i64, VecDeque<u64>>, VecDeque<u64>) {
    (
        lead.history.iter().map(|(t, es)| (*t, es.iter().map(|e| e.seq).collect())).collect(),
        lead.seen.values().map(|s| s.seq).collect(),
    )
}

impl Checkpoint {
    pub fn of(lead: &Lead, snapshot_bytes: usize, journal_bytes: usize) -> Self {
        let (history, seen) = numbers(lead);
        Checkpoint { next: SEQ.load(Ordering::Relaxed), history, seen, snapshot_bytes, journal_bytes, pending: None }
    }

    /// The payload last handed out is stored: the checkpoint becomes what it holds. False:
    /// none was handed out since the last commit (the caller forgets the lead).
    pub fn commit(&mut self) -> bool {
        let Some(p) = self.pending.take() else { return false };
        self.next = p.next;
        self.snapshot_bytes = p.snapshot_bytes;
        self.journal_bytes = p.journal_bytes;
        match p.change {
            Change::Whole(history, seen) => {
                self.history = history;
                self.seen = seen;
            }
            Change::Delta(history, seen) => {
                for (type_id, change) in history {
                    match change {
                        None => {
                            self.history.remove(&type_id);
                        }
                        Some((dropped, appended)) => {
                            let stored = self.history.entry(type_id).or_default();
                            apply(stored, &dropped, appended);
                        }
                    }
                }
                apply(&mut self.seen, &seen.0, seen.1);
            }
        }
        true
    }
}

/// `stored` once `dropped` went from it and `appended` came after.
fn apply(stored: &mut VecDeque<u64>, dropped: &Dropped, appended: Vec<u64>) {
    match dropped {
        Dropped::Count(n) => {
            stored.drain(..*n);
        }
        Dropped::Positions(ps) => {
            // the part up to the last position dropped, taken out and put back without them
            if let Some(&last) = ps.last() {
                let mut k = 0;
                let head: Vec<u64> = stored
                    .drain(..=last)
                    .enumerate()
                    .filter(|(i, _)| {
                        let gone = k < ps.len() && ps[k] == *i;
                        k += usize::from(gone);
                        !gone
                    })
                    .map(|(_, s)| s)
                    .collect();
                for s in head.into_iter().rev() {
                    stored.push_front(s);
                }
            }
        }
    }
    stored.extend(appended);
}

enum Dropped {
    Count(usize),
    /// Ascending.
    Positions(Vec<usize>),
}

/// How many of a list of `len` entries numbered `seq(i)` (ascending) are numbered below
/// `next`: a binary search, at once when the last is.
fn below(len: usize, seq: &impl Fn(usize) -> u64, next: u64) -> usize {
    if len == 0 || seq(len - 1) < next {
        return len;
    }
    let (mut lo, mut hi) = (0, len - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if seq(mid) < next {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// (dropped from `stored`, how many of the current list are kept from it): `journal._diff`,
/// the current list as `len` entries numbered `seq(i)`. Without a walk unless something
/// went from further in than the head; the walk stops at the last entry dropped (what
/// follows it is kept: as many stored as kept are left).
fn diff(stored: &VecDeque<u64>, len: usize, seq: impl Fn(usize) -> u64, next: u64) -> (Dropped, usize) {
    let kept = below(len, &seq, next);
    if kept == stored.len() {
        return (Dropped::Count(0), kept);
    }
    if kept == 0 || seq(0) == stored[stored.len() - kept] {
        return (Dropped::Count(stored.len() - kept), kept);
    }
    let mut gone = Vec::with_capacity(stored.len() - kept);
    let mut j = 0;
    for (i, s) in stored.iter().enumerate() {
        if stored.len() - i == kept - j {
            break;
        }
        if j < kept && seq(j) == *s {
            j += 1;
        } else {
            gone.push(i);
        }
    }
    (Dropped::Positions(gone), kept)
}

fn write_dropped(out: &mut Vec<u8>, d: &Dropped) {
    match d {
        Dropped::Count(n) => json::write_int(out, *n as i64),
        Dropped::Positions(ps) => {
            out.push(b'[');
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_int(out, *p as i64);
            }
            out.push(b']');
        }
    }
}

/// `[processed_at, position, [fired], {carried}?]`, a `seen` entry as stored.
pub fn write_seen(out: &mut Vec<u8>, key: &str, s: &Seen) {
    json::write_str(out, key);
    out.extend_from_slice(b":[");
    json::write_int(out, s.at);
    out.push(b',');
    json::write_str(out, &s.position);
    out.extend_from_slice(b",[");
    for (j, c) in s.fired.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        json::write_int(out, *c);
    }
    out.push(b']');
    if let Some(carried) = &s.carried {
        out.push(b',');
        write_text_map(out, carried);
    }
    out.push(b']');
}

pub fn write_text_map(out: &mut Vec<u8>, map: &IMap<String, String>) {
    out.push(b'{');
    for (j, (k, v)) in map.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        json::write_str(out, k);
        out.push(b':');
        json::write_str(out, v);
    }
    out.push(b'}');
}

/// `"f":{..},"r":{..},...,"m":max_ts}` — the members a delta and a snapshot share.
pub fn write_runs(out: &mut Vec<u8>, runs: &IMap<i64, i64>) {
    out.push(b'{');
    for (i, (k, v)) in runs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        json::write_int(out, *k);
        out.extend_from_slice(b"\":");
        json::write_int(out, *v);
    }
    out.push(b'}');
}

/// The delta from `ck` to `lead` (`journal.encode_delta`'s shape), and the checkpoint's
/// change once it is stored.
fn delta(lead: &Lead, ck: &Checkpoint) -> (Vec<u8>, Change) {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"d\":1,\"h\":{");
    let mut first = true;
    let mut changes = Vec::new();
    for (type_id, entries) in &lead.history {
        let (dropped, kept) = match ck.history.get(type_id) {
            Some(stored) => {
                let (d, k) = diff(stored, entries.len(), |i| entries[i].seq, ck.next);
                if matches!(d, Dropped::Count(0)) && k == entries.len() {
                    continue;
                }
                (d, k)
            }
            None => (Dropped::Count(0), 0),
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        json::write_int(&mut out, *type_id);
        out.extend_from_slice(b"\":[");
        write_dropped(&mut out, &dropped);
        out.extend_from_slice(b",[");
        for (j, e) in entries[kept..].iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            json::write_entry(&mut out, e.ts, e.primary.as_ref(), &e.attrs);
        }
        out.extend_from_slice(b"]]");
        changes.push((*type_id, Some((dropped, entries[kept..].iter().map(|e| e.seq).collect()))));
    }
    for type_id in ck.history.keys() {
        if !lead.history.contains_key(type_id) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            json::write_int(&mut out, *type_id);
            out.extend_from_slice(b"\":null");
            changes.push((*type_id, None));
        }
    }
    out.extend_from_slice(b"},\"s\":[");
    let seen_seq = |i: usize| lead.seen.get_index(i).expect("a position of seen").1.seq;
    let (dropped, kept) = diff(&ck.seen, lead.seen.len(), seen_seq, ck.next);
    write_dropped(&mut out, &dropped);
    out.extend_from_slice(b",{");
    let mut appended = Vec::with_capacity(lead.seen.len() - kept);
    for (j, (k, s)) in lead.seen.get_range(kept..).into_iter().flatten().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        write_seen(&mut out, k, s);
        appended.push(s.seq);
    }
    out.extend_from_slice(b"}],\"f\":");
    write_text_map(&mut out, &lead.fields);
    out.extend_from_slice(b",\"r\":");
    write_runs(&mut out, &lead.runs);
    out.extend_from_slice(b",\"m\":");
    match lead.max_ts {
        Some(m) => json::write_int(&mut out, m),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    (out, Change::Delta(changes, (dropped, appended)))
}

/// `journal.write`: (is a delta, the bytes to store); the checkpoint remembers what the
/// store will hold once they are stored (`Checkpoint::commit`).
pub fn payload(lead: &Lead, ck: Option<&mut Checkpoint>) -> (bool, Vec<u8>) {
    if let Some(ck) = ck {
        let next = SEQ.load(Ordering::Relaxed);
        if ck.snapshot_bytes > 0 {
            let (d, change) = delta(lead, ck);
            let journal_bytes = ck.journal_bytes + d.len();
            if journal_bytes <= ck.snapshot_bytes {
                ck.pending = Some(Pending { snapshot_bytes: ck.snapshot_bytes, journal_bytes, next, change });
                return (true, d);
            }
        }
        let snapshot = lead.encode();
        let (history, seen) = numbers(lead);
        ck.pending = Some(Pending { snapshot_bytes: snapshot.len(), journal_bytes: 0, next, change: Change::Whole(history, seen) });
        return (false, snapshot);
    }
    (false, lead.encode())
}
