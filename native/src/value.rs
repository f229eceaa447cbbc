//! Values as `streams.engine.datatypes` holds them, with Python's comparison semantics
//! (1 == 1.0 == True), dates, and case folding (ASCII here, else Python's `str.casefold`).

use pyo3::prelude::*;
use std::borrow::Cow;
use std::cmp::Ordering;
pub use std::sync::Arc;

/// A history entry's or an activity's secondary attributes, shared (not copied) between the
/// activity and the history entry it becomes.
pub type Attrs = Arc<[(Arc<str>, V)]>;

/// Maps keyed by record-controlled values: ahash, fast and seeded at random (no flooding).
pub type Map<K, T> = std::collections::HashMap<K, T, ahash::RandomState>;
pub type Set<K> = std::collections::HashSet<K, ahash::RandomState>;
pub type IMap<K, T> = indexmap::IndexMap<K, T, ahash::RandomState>;

#[derive(Clone, Debug)]
pub enum V {
    Str(Arc<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Type 13's primary value: the changed fields' names.
    List(Arc<Vec<String>>),
}

fn as_number(v: &V) -> Option<Num> {
    match v {
        V::Int(n) => Some(Num::I(*n)),
        V::Bool(b) => Some(Num::I(*b as i64)),
        V::Float(f) => Some(Num::F(*f)),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
        (Num::F(x), Num::F(y)) => x.partial_cmp(&y),
        (Num::I(x), Num::F(y)) => cmp_int_float(x, y),
        (Num::F(x), Num::I(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// Exact, as Python compares an int with a float.
fn cmp_int_float(x: i64, y: f64) -> Option<Ordering> {
    if y.is_nan() {
        return None;
    }
    if y >= 9.3e18 {
        return Some(Ordering::Less);
    }
    if y <= -9.3e18 {
        return Some(Ordering::Greater);
    }
    let floor = y.floor();
    let fi = floor as i128;
    match (x as i128).cmp(&fi) {
        Ordering::Equal => {
            if y > floor {
                Some(Ordering::Less)
            } else {
                Some(Ordering::Equal)
            }
        }
        other => Some(other),
    }
}

/// Python's `==` between two values of the engine.
pub fn py_eq(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Str(x), V::Str(y)) => x == y,
        (V::List(x), V::List(y)) => x == y,
        _ => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => cmp_num(x, y) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// Python's ordering of two numbers (or two texts); None where Python would raise.
pub fn py_cmp(a: &V, b: &V) -> Option<Ordering> {
    if let (V::Str(x), V::Str(y)) = (a, b) {
        return Some((**x).cmp(&**y));
    }
    cmp_num(as_number(a)?, as_number(b)?)
}

pub fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 15) as usize] as char);
}

pub fn fold<'a>(py: Python<'_>, s: &'a str) -> Cow<'a, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        let folded = pyo3::types::PyString::new(py, s)
            .call_method0("casefold")
            .and_then(|o| o.extract::<String>());
        Cow::Owned(folded.unwrap_or_else(|_| s.to_lowercase()))
    }
}

pub const US_PER_SECOND: i64 = 1_000_000;
pub const US_PER_DAY: i64 = 86_400 * US_PER_SECOND;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `datatypes.format_us`: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
pub fn format_us(us: i64) -> String {
    let day = us.div_euclid(US_PER_DAY);
    let rest = us.rem_euclid(US_PER_DAY);
    let (y, m, d) = civil_from_days(day);
    let seconds = rest / US_PER_SECOND;
    let micro = rest % US_PER_SECOND;
    let (h, mi, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if micro != 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micro:06}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as i64;
    }
    Some(n)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// `datatypes.parse_date_us`: `YYYY-MM-DD` (ASCII digits), a valid date, at 00:00 UTC.
pub fn parse_date(raw: &str) -> Option<i64> {
    let b = raw.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if y < 1 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * US_PER_DAY)
}

/// The common forms `YYYY-MM-DDTHH:MM:SSZ` and `...+00:00` (what `parse_datetime_us`'s
/// fast path reads); None for anything else, which the Python decoder then decides.
pub fn parse_datetime_common(raw: &str) -> Option<i64> {
    let b = raw.as_bytes();
    let rest = match b.len() {
        20 if b[19] == b'Z' => &b[..19],
        25 if &b[19..] == b"+00:00" => &b[..19],
        _ => return None,
    };
    if rest[4] != b'-' || rest[7] != b'-' || rest[10] != b'T' || rest[13] != b':' || rest[16] != b':'
    {
        return None;
    }
    let y = digits(&rest[0..4])?;
    let m = digits(&rest[5..7])?;
    let d = digits(&rest[8..10])?;
    let h = digits(&rest[11..13])?;
    let mi = digits(&rest[14..16])?;
    let s = digits(&rest[17..19])?;
    if y < 1 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    Some(days_from_civil(y, m, d) * US_PER_DAY + (h * 3600 + mi * 60 + s) * US_PER_SECOND)
}
