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
//! - a checkpoint changes only when Python says the save was stored (`commit`); a lead whose
//!   save failed, or whose batch raised, is evicted (Python reads it again cold).

use crate::engine::{Lead, Seen};
use crate::json;
use crate::value::IMap;
use pyo3::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
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
pub struct Checkpoint {
    next: u64,
    history: BTreeMap<i64, Vec<u64>>,
    seen: Vec<u64>,
    /// 0: nothing stored, or a snapshot of an earlier format: the next save is a snapshot.
    snapshot_bytes: usize,
    journal_bytes: usize,
    /// The sizes once the payload last handed out is stored (`commit` takes them).
    pending: Option<(usize, usize)>,
}

impl Checkpoint {
    pub fn of(lead: &Lead, snapshot_bytes: usize, journal_bytes: usize) -> Self {
        Checkpoint {
            next: SEQ.load(Ordering::Relaxed),
            history: lead.history.iter().map(|(t, es)| (*t, es.iter().map(|e| e.seq).collect())).collect(),
            seen: lead.seen.values().map(|s| s.seq).collect(),
            snapshot_bytes,
            journal_bytes,
            pending: None,
        }
    }

    /// The checkpoint once the payload last handed out is stored.
    pub fn committed(&self, lead: &Lead) -> Option<Self> {
        self.pending.map(|(s, j)| Checkpoint::of(lead, s, j))
    }
}

enum Dropped {
    Count(usize),
    Positions(Vec<usize>),
}

/// (dropped from `stored`, how many of `current` are kept from it): `journal._diff`.
fn diff(stored: &[u64], current: &[u64], next: u64) -> (Dropped, usize) {
    let kept = current.partition_point(|s| *s < next);
    if kept == stored.len() {
        return (Dropped::Count(0), kept);
    }
    if kept == 0 || current[0] == stored[stored.len() - kept] {
        return (Dropped::Count(stored.len() - kept), kept);
    }
    let mut gone = Vec::with_capacity(stored.len() - kept);
    let mut j = 0;
    for (i, s) in stored.iter().enumerate() {
        if j < kept && current[j] == *s {
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

/// The delta from `ck` to `lead` (`journal.encode_delta`'s shape).
fn delta(lead: &Lead, ck: &Checkpoint) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"d\":1,\"h\":{");
    let mut first = true;
    let mut seqs: Vec<u64> = Vec::new();
    for (type_id, entries) in &lead.history {
        seqs.clear();
        seqs.extend(entries.iter().map(|e| e.seq));
        let (dropped, kept) = match ck.history.get(type_id) {
            Some(stored) => {
                let (d, k) = diff(stored, &seqs, ck.next);
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
        }
    }
    out.extend_from_slice(b"},\"s\":[");
    seqs.clear();
    seqs.extend(lead.seen.values().map(|s| s.seq));
    let (dropped, kept) = diff(&ck.seen, &seqs, ck.next);
    write_dropped(&mut out, &dropped);
    out.extend_from_slice(b",{");
    for (j, (k, s)) in lead.seen.get_range(kept..).into_iter().flatten().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        write_seen(&mut out, k, s);
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
    out
}

/// `journal.write`: (is a delta, the bytes to store); the checkpoint remembers the sizes
/// the store will hold once they are stored (`Checkpoint::committed`).
pub fn payload(lead: &Lead, ck: Option<&mut Checkpoint>) -> (bool, Vec<u8>) {
    if let Some(ck) = ck {
        if ck.snapshot_bytes > 0 {
            let d = delta(lead, ck);
            let journal_bytes = ck.journal_bytes + d.len();
            if journal_bytes <= ck.snapshot_bytes {
                ck.pending = Some((ck.snapshot_bytes, journal_bytes));
                return (true, d);
            }
        }
        let snapshot = lead.encode();
        ck.pending = Some((snapshot.len(), 0));
        return (false, snapshot);
    }
    (false, lead.encode())
}
