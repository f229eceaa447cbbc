//! The core's side of the Redis store (`streams/state/journal.py`, `redis_store.py`): a
//! lead's state read from its canonical JSON (`codec.encode_state`'s bytes, which Python
//! hands over for a lead read cold), and per lead saved, what `journal.write` would store:
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

use crate::engine::{Entry, Lead, Seen};
use crate::json;
use crate::value::{Arc, IMap, V};
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

// ---- reading a state's canonical JSON ----

enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

type R<T> = Result<T, String>;

impl Reader<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\t' | b'\r') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> R<()> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self, depth: usize) -> R<J> {
        if depth > 64 {
            return Err("nested too deep".into());
        }
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(J::Obj(members));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.expect(b':')?;
                    members.push((key, self.value(depth + 1)?));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(J::Obj(members));
                        }
                        _ => return Err(format!("bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(J::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(J::Arr(items));
                        }
                        _ => return Err(format!("bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(J::Str(self.string()?)),
            Some(b't') if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(J::Bool(true))
            }
            Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(J::Bool(false))
            }
            Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(J::Null)
            }
            Some(_) => self.number(),
            None => Err("unexpected end".into()),
        }
    }

    fn number(&mut self) -> R<J> {
        let start = self.i;
        let mut float = false;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => float = true,
                _ => break,
            }
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
        if float {
            text.parse::<f64>().map(J::Float).map_err(|_| format!("bad number {text:?}"))
        } else {
            text.parse::<i64>().map(J::Int).map_err(|_| format!("a number the core cannot hold: {text:?}"))
        }
    }

    fn hex4(&mut self) -> R<u32> {
        let h = self.b.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        let h = std::str::from_utf8(h).map_err(|e| e.to_string())?;
        self.i += 4;
        u32::from_str_radix(h, 16).map_err(|_| format!("bad \\u escape {h:?}"))
    }

    fn string(&mut self) -> R<String> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && self.b[self.i] != b'"' && self.b[self.i] != b'\\' {
                self.i += 1;
            }
            out.extend_from_slice(&self.b[start..self.i]);
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|e| e.to_string());
                }
                Some(b'\\') => {
                    let c = *self.b.get(self.i + 1).ok_or("unterminated string")?;
                    self.i += 2;
                    let ch = match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3ff)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or("a lone surrogate")?
                        }
                        _ => return Err("bad escape".into()),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => return Err("unterminated string".into()),
            }
        }
    }
}

fn v_of(j: J) -> R<Option<V>> {
    Ok(Some(match j {
        J::Null => return Ok(None),
        J::Bool(b) => V::Bool(b),
        J::Int(n) => V::Int(n),
        J::Float(f) => V::Float(f),
        J::Str(s) => V::Str(s.into()),
        J::Arr(items) => V::List(Arc::new(
            items
                .into_iter()
                .map(|i| match i {
                    J::Str(s) => Ok(s),
                    _ => Err("a list of other than text".to_string()),
                })
                .collect::<R<_>>()?,
        )),
        J::Obj(_) => return Err("an object as a value".into()),
    }))
}

fn int(j: J, what: &str) -> R<i64> {
    match j {
        J::Int(n) => Ok(n),
        _ => Err(format!("{what}: not an integer")),
    }
}

fn key_int(k: &str, what: &str) -> R<i64> {
    k.parse::<i64>().map_err(|_| format!("{what}: key {k:?}"))
}

fn text_map(j: J, what: &str) -> R<IMap<String, String>> {
    let J::Obj(members) = j else { return Err(format!("{what}: not an object")) };
    members
        .into_iter()
        .map(|(k, v)| match v {
            J::Str(s) => Ok((k, s)),
            _ => Err(format!("{what}: a value that is not text")),
        })
        .collect()
}

/// The lead stored as `raw` (`codec.encode_state`'s JSON of a valid state: Python has read
/// and checked it already); an error for what the core cannot hold.
pub fn read_lead(raw: &[u8]) -> R<Lead> {
    let mut reader = Reader { b: raw, i: 0 };
    let J::Obj(members) = reader.value(0)? else { return Err("not an object".into()) };
    let mut lead = Lead::default();
    for (name, member) in members {
        match name.as_str() {
            "v" => {}
            "h" => {
                let J::Obj(types) = member else { return Err("h: not an object".into()) };
                for (k, entries) in types {
                    let type_id = key_int(&k, "h")?;
                    let J::Arr(entries) = entries else { return Err("h: not a list".into()) };
                    let mut out = Vec::with_capacity(entries.len());
                    for e in entries {
                        let J::Arr(parts) = e else { return Err("h: an entry".into()) };
                        let mut parts = parts.into_iter();
                        let (Some(ts), Some(primary), Some(J::Obj(attrs)), None) =
                            (parts.next(), parts.next(), parts.next(), parts.next())
                        else {
                            return Err("h: an entry of the wrong shape".into());
                        };
                        let ts = int(ts, "h")?;
                        let primary = v_of(primary)?;
                        let attrs: Vec<(Arc<str>, V)> = attrs
                            .into_iter()
                            .map(|(k, v)| Ok((Arc::from(k.as_str()), v_of(v)?.ok_or("h: a null attribute")?)))
                            .collect::<R<_>>()?;
                        let mut bytes = Vec::new();
                        json::write_entry(&mut bytes, ts, primary.as_ref(), &attrs);
                        out.push(Entry { ts, primary, attrs: attrs.into(), bytes: bytes.len(), seq: next_seq() });
                    }
                    lead.history.insert(type_id, out);
                }
            }
            "f" => lead.fields = text_map(member, "f")?,
            "r" => {
                let J::Obj(runs) = member else { return Err("r: not an object".into()) };
                for (k, v) in runs {
                    lead.runs.insert(key_int(&k, "r")?, int(v, "r")?);
                }
            }
            "s" => {
                let J::Obj(seen) = member else { return Err("s: not an object".into()) };
                for (k, v) in seen {
                    let J::Arr(parts) = v else { return Err("s: an entry".into()) };
                    let mut parts = parts.into_iter();
                    let (Some(at), Some(J::Str(position)), Some(J::Arr(fired))) = (parts.next(), parts.next(), parts.next()) else {
                        return Err("s: an entry of the wrong shape".into());
                    };
                    let carried = match parts.next() {
                        None => None,
                        Some(map) => Some(Box::new(text_map(map, "s")?)),
                    };
                    let fired = fired.into_iter().map(|c| int(c, "s")).collect::<R<_>>()?;
                    lead.seen.insert(k, Seen { at: int(at, "s")?, position, fired, carried, seq: next_seq() });
                }
            }
            "m" => {
                lead.max_ts = match member {
                    J::Null => None,
                    other => Some(int(other, "m")?),
                }
            }
            other => return Err(format!("a member {other:?}")),
        }
    }
    lead.recount();
    Ok(lead)
}
