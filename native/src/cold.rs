//! A cold lead read natively: its current-format (v3) snapshot and its journal's deltas,
//! straight from the Redis replies, into the state `codec.decode_state` then
//! `journal.apply_delta` would yield (the lead the core would hold after `put_state` of
//! `codec.encode_state` of it). The crate's one reader of stored states: `put_state` reads
//! the `codec.encode_state` bytes of a lead Python read (an earlier format, or one declined
//! here) with it too, as a snapshot without journal, and refuses what it declines there.
//!
//! The rule (the native record decoder's): accept only what is certain to be well formed
//! in the shape the core knows; on anything else return None (a decline), and the store
//! reads the lead in Python as before, which decides (quarantine, its messages, a state
//! the core cannot hold). Never a rejection here. So the reader is stricter than the
//! reference, never looser:
//! - strict JSON (RFC 8259 grammar, UTF-8, no raw control characters, no lone surrogate,
//!   nothing after the value), the snapshot starting with `{"v":3,` (`codec.is_current`);
//! - every member of its shape, each exactly once, no unknown one (the reference ignores
//!   unknown members and lets a repeated key win: both declined here); integer keys in
//!   their canonical form (`7`, not `07`, `+7`, `-0`), no key repeated in any object;
//! - integers within i64, floats finite; values the core holds (text, integer, float,
//!   boolean, list of text; a primary may be null, an attribute not);
//! - a delta's drops as its writer writes them: a count at most the list's length, or
//!   positions strictly ascending within it; a `seen` identity it appends is not held
//!   (after its drop): the writer drops a moved identity first.

use crate::engine::{Entry, Lead, Seen};
use crate::json;
use crate::stored::next_seq;
use crate::value::{Arc, IMap, Set, V};
use std::borrow::Cow;

type O<T> = Option<T>;

struct P<'a> {
    b: &'a [u8],
    i: usize,
    /// Why the reader declined, when it was a value the core does not hold (set where it
    /// is met, its place added as the decline unwinds); None for any other decline.
    why: Option<Why>,
}

/// A value the core does not hold, found by the reader: what it is, and where (innermost
/// first). Only made on a decline: the reading of a state it takes never builds one.
struct Why {
    what: &'static str,
    place: Vec<String>,
}

/// At most this many characters of a name from the stored state in a reason.
const NAME_CHARS: usize = 40;

/// A name from the stored state as a reason shows it: quoted, escaped, at most
/// `NAME_CHARS` characters (and an ellipsis).
fn shown(name: &str) -> String {
    let mut short: String = name.chars().take(NAME_CHARS).collect();
    if short.len() < name.len() {
        short.push('…');
    }
    format!("{short:?}")
}

impl<'a> P<'a> {
    fn new(b: &'a [u8], i: usize) -> Self {
        P { b, i, why: None }
    }

    /// Declines for `what`, a value the core does not hold.
    fn decline<T>(&mut self, what: &'static str) -> O<T> {
        self.why = Some(Why { what, place: Vec::new() });
        None
    }

    /// Declines, a decline of what `place` holds (its place added to the reason, if any).
    fn within<T>(&mut self, place: impl FnOnce() -> String) -> O<T> {
        if let Some(why) = &mut self.why {
            why.place.push(place());
        }
        None
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> O<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> O<()> {
        (self.next()? == c).then_some(())
    }

    /// Whether the next byte after whitespace is `c` (consumed if so).
    fn take(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, w: &[u8]) -> bool {
        self.ws();
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    /// `{ key: value, ... }`, `f` reading each value.
    fn object(&mut self, mut f: impl FnMut(&mut Self, String) -> O<()>) -> O<()> {
        self.object_text(|p, key| f(p, key.into_owned()))
    }

    /// `object`, the keys borrowed from the input when they have no escape.
    fn object_text(&mut self, mut f: impl FnMut(&mut Self, Cow<'a, str>) -> O<()>) -> O<()> {
        self.eat(b'{')?;
        if self.take(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.text()?;
            self.eat(b':')?;
            f(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `[ item, ... ]`, `f` reading each item.
    fn array(&mut self, mut f: impl FnMut(&mut Self) -> O<()>) -> O<()> {
        self.eat(b'[')?;
        if self.take(b']') {
            return Some(());
        }
        loop {
            f(self)?;
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> O<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }

    /// A JSON string at the cursor (no whitespace skipped).
    fn string(&mut self) -> O<String> {
        self.text().map(Cow::into_owned)
    }

    /// `string`, borrowed from the input when it has no escape.
    fn text(&mut self) -> O<Cow<'a, str>> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let b: &'a [u8] = self.b;
        while let Some(&c) = b.get(self.i) {
            match c {
                b'"' => {
                    let s = std::str::from_utf8(&b[start..self.i]).ok()?;
                    self.i += 1;
                    return Some(Cow::Borrowed(s));
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let mut out = self.b[start..self.i].to_vec();
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok().map(Cow::Owned),
                0..=0x1f => return None,
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    let ch = match e {
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
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.b[self.i..].starts_with(b"\\u") {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)? // a lone low surrogate: None
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }

    /// A JSON number: Some(Ok(int)) within i64, Some(Err(float)) finite; None otherwise
    /// (why, when it is a number beyond them).
    fn number(&mut self) -> O<Result<i64, f64>> {
        self.ws();
        let start = self.i;
        let b = self.b;
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > s
        };
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return None,
        }
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            i += 1;
            float = true;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            float = true;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.i = i;
        let text = std::str::from_utf8(&b[start..i]).ok()?;
        if float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Some(Err(f)),
                _ => self.decline("a number beyond 64-bit floats"),
            }
        } else if text == "-0" {
            self.decline("the integer -0")
        } else {
            match text.parse::<i64>() {
                Ok(n) => Some(Ok(n)),
                Err(_) => self.decline("an integer beyond 64 bits"),
            }
        }
    }

    fn int(&mut self) -> O<i64> {
        match self.number()? {
            Ok(n) => Some(n),
            Err(_) => self.decline("a fraction where an integer belongs"),
        }
    }

    /// A value the core holds; null: Some(None).
    fn value(&mut self) -> O<Option<V>> {
        self.ws();
        Some(Some(match *self.b.get(self.i)? {
            b'"' => V::Str(Arc::from(&*self.text()?)),
            b'[' => {
                let mut items = Vec::new();
                self.array(|p| {
                    p.ws();
                    if p.b.get(p.i) != Some(&b'"') {
                        return p.decline("a list holding other than text");
                    }
                    items.push(p.string()?);
                    Some(())
                })?;
                V::List(Arc::new(items))
            }
            b'{' => return self.decline("an object"),
            b'n' if self.word(b"null") => return Some(None),
            b't' if self.word(b"true") => V::Bool(true),
            b'f' if self.word(b"false") => V::Bool(false),
            _ => match self.number()? {
                Ok(n) => V::Int(n),
                Err(f) => V::Float(f),
            },
        }))
    }

    fn text_map(&mut self) -> O<IMap<String, String>> {
        let mut map = IMap::default();
        self.object(|p, k| {
            p.ws();
            if p.b.get(p.i) != Some(&b'"') {
                p.decline::<()>("a value other than text");
                return p.within(|| shown(&k));
            }
            let v = p.string()?;
            map.insert(k, v).is_none().then_some(())
        })?;
        Some(map)
    }

    /// `[ts, primary, {apiName: value}]`; `names`: the attribute names of the entry read
    /// before, shared rather than allocated again.
    fn entry(&mut self, buf: &mut Vec<u8>, names_before: &mut Vec<Arc<str>>) -> O<Entry> {
        self.eat(b'[')?;
        let Some(ts) = self.int() else { return self.within(|| "its date".into()) };
        self.eat(b',')?;
        let Some(primary) = self.value() else { return self.within(|| "its primary".into()) };
        self.eat(b',')?;
        let mut attrs: Vec<(Arc<str>, V)> = Vec::new();
        let mut names: Set<Arc<str>> = Set::default();
        self.object_text(|p, k| {
            let v = match p.value() {
                Some(Some(v)) => v,
                found => {
                    if found.is_some() {
                        p.decline::<()>("null");
                    }
                    return p.within(|| format!("attribute {}", shown(&k)));
                }
            };
            let at = attrs.len();
            let k: Arc<str> = match names_before.get(at) {
                Some(n) if **n == *k => n.clone(),
                _ => {
                    let fresh: Arc<str> = Arc::from(&*k);
                    if at < names_before.len() {
                        names_before[at] = fresh.clone();
                    } else {
                        names_before.push(fresh.clone());
                    }
                    fresh
                }
            };
            if attrs.len() < 8 {
                if attrs.iter().any(|(n, _)| *n == k) {
                    return None;
                }
            } else {
                if names.is_empty() {
                    names.extend(attrs.iter().map(|(n, _)| n.clone()));
                }
                if !names.insert(k.clone()) {
                    return None;
                }
            }
            attrs.push((k, v));
            Some(())
        })?;
        self.eat(b']')?;
        buf.clear();
        json::write_entry(buf, ts, primary.as_ref(), &attrs);
        Some(Entry { ts, primary, attrs: attrs.into(), bytes: buf.len(), seq: next_seq() })
    }

    /// `[processed_at, position, [fired], {carried}?]`.
    fn seen(&mut self) -> O<Seen> {
        self.eat(b'[')?;
        let Some(at) = self.int() else { return self.within(|| "its time".into()) };
        self.eat(b',')?;
        self.ws();
        let position = self.string()?;
        self.eat(b',')?;
        let mut fired = Vec::new();
        self.array(|p| {
            fired.push(p.int()?);
            Some(())
        })
        .or_else(|| self.within(|| "its campaigns".into()))?;
        let carried = if self.take(b',') {
            let Some(map) = self.text_map() else { return self.within(|| "its carried fields".into()) };
            Some(Box::new(map))
        } else {
            None
        };
        self.eat(b']')?;
        Some(Seen { at, position, fired, carried, seq: next_seq() })
    }

    fn runs(&mut self) -> O<IMap<i64, i64>> {
        let mut runs = IMap::default();
        self.object(|p, k| {
            let Some(v) = p.int() else { return p.within(|| format!("campaign {}", shown(&k))) };
            runs.insert(int_key(&k)?, v).is_none().then_some(())
        })?;
        Some(runs)
    }

    fn max_ts(&mut self) -> O<Option<i64>> {
        if self.word(b"null") {
            return Some(None);
        }
        Some(Some(self.int()?))
    }

    /// A count, or positions strictly ascending, each within `len`.
    fn drop(&mut self, len: usize) -> O<Dropped> {
        self.ws();
        if self.b.get(self.i) == Some(&b'[') {
            let mut positions: Vec<usize> = Vec::new();
            self.array(|p| {
                let n = usize::try_from(p.int()?).ok()?;
                (n < len && positions.last().is_none_or(|l| *l < n)).then_some(())?;
                positions.push(n);
                Some(())
            })?;
            Some(Dropped::Positions(positions))
        } else {
            let n = usize::try_from(self.int()?).ok()?;
            (n <= len).then_some(Dropped::Count(n))
        }
    }

    fn end(&mut self) -> O<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }
}

enum Dropped {
    Count(usize),
    Positions(Vec<usize>),
}

/// An integer key in its canonical form (what `str(int)` writes).
fn int_key(k: &str) -> O<i64> {
    let digits = k.strip_prefix('-').unwrap_or(k);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) || (digits.starts_with('0') && k != "0") {
        return None;
    }
    k.parse().ok()
}

fn drop_vec<T>(items: &mut Vec<T>, d: &Dropped) {
    match d {
        Dropped::Count(n) => {
            items.drain(..*n);
        }
        Dropped::Positions(ps) => {
            let mut at = 0;
            let mut i = 0;
            items.retain(|_| {
                let gone = ps.get(at) == Some(&i);
                if gone {
                    at += 1;
                }
                i += 1;
                !gone
            });
        }
    }
}

/// Members seen once each (a bit per name).
fn once(mask: &mut u8, bit: u8) -> O<()> {
    if *mask & bit != 0 {
        return None;
    }
    *mask |= bit;
    Some(())
}

const SNAPSHOT_PREFIX: &[u8] = b"{\"v\":3,";

/// The lead stored as the v3 snapshot `raw` (without its journal), or None (a decline).
fn snapshot(p: &mut P<'_>, buf: &mut Vec<u8>) -> O<Lead> {
    if !p.b.starts_with(SNAPSHOT_PREFIX) {
        return None;
    }
    p.i = SNAPSHOT_PREFIX.len();
    let mut lead = Lead::default();
    let mut mask = 0u8;
    loop {
        p.ws();
        let name = p.string()?;
        p.eat(b':')?;
        match name.as_str() {
            "h" => {
                once(&mut mask, 1)?;
                let history = &mut lead.history;
                let mut names = Vec::new();
                p.object(|p, k| {
                    let type_id = int_key(&k)?;
                    let mut entries = Vec::new();
                    p.array(|p| {
                        match p.entry(buf, &mut names) {
                            Some(e) => entries.push(e),
                            None => return p.within(|| format!("entry {}", entries.len())),
                        }
                        Some(())
                    })
                    .or_else(|| p.within(|| format!("the history of type {type_id}")))?;
                    history.insert(type_id, entries).is_none().then_some(())
                })?;
            }
            "f" => {
                once(&mut mask, 2)?;
                lead.fields = p.text_map().or_else(|| p.within(|| "the lead fields".into()))?;
            }
            "r" => {
                once(&mut mask, 4)?;
                lead.runs = p.runs().or_else(|| p.within(|| "the runs".into()))?;
            }
            "s" => {
                once(&mut mask, 8)?;
                let seen = &mut lead.seen;
                p.object(|p, k| {
                    let Some(s) = p.seen() else { return p.within(|| format!("the seen activity {}", shown(&k))) };
                    seen.insert(k, s).is_none().then_some(())
                })?;
            }
            "m" => {
                once(&mut mask, 16)?;
                lead.max_ts = p.max_ts().or_else(|| p.within(|| "the latest date".into()))?;
            }
            _ => return None,
        }
        match p.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    p.end()?;
    (mask == 31).then_some(lead)
}

/// Replays the delta `raw` on `lead` (`journal.apply_delta`), or None (a decline: `lead`
/// may then be half-changed, and is dropped).
fn delta(lead: &mut Lead, raw: &[u8], buf: &mut Vec<u8>) -> O<()> {
    let mut p = P::new(raw, 0);
    let mut mask = 0u8;
    p.object(|p, name| {
        match name.as_str() {
            "d" => {
                once(&mut mask, 1)?;
                (p.int()? == 1).then_some(())?;
            }
            "h" => {
                once(&mut mask, 2)?;
                let mut changed: Set<i64> = Set::default();
                let mut names = Vec::new();
                let history = &mut lead.history;
                p.object(|p, k| {
                    let type_id = int_key(&k)?;
                    changed.insert(type_id).then_some(())?;
                    if p.word(b"null") {
                        history.remove(&type_id);
                        return Some(());
                    }
                    let entries = history.entry(type_id).or_default();
                    p.eat(b'[')?;
                    let d = p.drop(entries.len())?;
                    drop_vec(entries, &d);
                    p.eat(b',')?;
                    p.array(|p| {
                        entries.push(p.entry(buf, &mut names)?);
                        Some(())
                    })?;
                    p.eat(b']')
                })?;
            }
            "s" => {
                once(&mut mask, 4)?;
                let seen = &mut lead.seen;
                p.eat(b'[')?;
                match p.drop(seen.len())? {
                    Dropped::Count(n) => {
                        seen.drain(..n);
                    }
                    Dropped::Positions(ps) => {
                        let mut at = 0;
                        let mut i = 0;
                        seen.retain(|_, _| {
                            let gone = ps.get(at) == Some(&i);
                            if gone {
                                at += 1;
                            }
                            i += 1;
                            !gone
                        });
                    }
                }
                p.eat(b',')?;
                p.object(|p, k| {
                    let s = p.seen()?;
                    seen.insert(k, s).is_none().then_some(())
                })?;
                p.eat(b']')?;
            }
            "f" => {
                once(&mut mask, 8)?;
                lead.fields = p.text_map()?;
            }
            "r" => {
                once(&mut mask, 16)?;
                lead.runs = p.runs()?;
            }
            "m" => {
                once(&mut mask, 32)?;
                lead.max_ts = p.max_ts()?;
            }
            _ => return None,
        }
        Some(())
    })?;
    p.end()?;
    (mask == 63).then_some(())
}

/// The lead stored as the v3 snapshot `raw` with the deltas of `journal` replayed on it,
/// or None (a decline: the store reads it in Python).
pub fn read(raw: &[u8], journal: &[&[u8]]) -> O<Lead> {
    let mut buf = Vec::with_capacity(256);
    let mut lead = snapshot(&mut P::new(raw, 0), &mut buf)?;
    for d in journal {
        delta(&mut lead, d, &mut buf)?;
    }
    lead.recount();
    Some(lead)
}

/// The lead stored as the v3 snapshot `raw` alone (`read` without a journal), or why it
/// is declined: the value the core does not hold and where (`the history of type 100001,
/// entry 3, attribute "qty": an integer beyond 64 bits`), or, for any other decline, the
/// byte at which the reader stopped. Names from the state are cut to `NAME_CHARS`, so the
/// reason is bounded.
pub fn read_snapshot(raw: &[u8]) -> Result<Lead, String> {
    let mut buf = Vec::with_capacity(256);
    let mut p = P::new(raw, 0);
    match snapshot(&mut p, &mut buf) {
        Some(mut lead) => {
            lead.recount();
            Ok(lead)
        }
        None => Err(match p.why {
            Some(Why { what, mut place }) if !place.is_empty() => {
                place.reverse();
                format!("{}: {what}", place.join(", "))
            }
            Some(Why { what, .. }) => what.into(),
            None => format!("not in the shape the core reads (at byte {} of {})", p.i, raw.len()),
        }),
    }
}
