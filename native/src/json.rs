//! JSON text exactly as orjson writes it (the stored state, history entry sizes, content
//! hashes): strings escape `"`, `\` and control characters only (`\n \t \r \b \f`, others
//! `\u00XX`), floats in orjson's form (`1e+16`, `1.5e-7`, `0.00001`, `2.0`).

use crate::value::V;

pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\t' => Some(b"\\t"),
            b'\r' => Some(b"\\r"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub fn write_int(out: &mut Vec<u8>, n: i64) {
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(n).as_bytes());
}

/// orjson's float text: the shortest round-trip digits (ryu), in decimal notation when the
/// decimal exponent E (d.ddd × 10^E) is in [-5, 16), else `d.ddde+E` / `d.ddde-E`.
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(f);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    // ryu: "123.45", "0.001", "1e16", "1.5e-7": digits and the exponent of d.ddd.
    let (mantissa, exp_part) = match text.find('e') {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let mut digits: String = format!("{int_part}{frac_part}");
    // exponent of the first digit of `digits` (before stripping leading zeros)
    let mut e10 = exp_part + int_part.len() as i32 - 1;
    let lead = digits.len() - digits.trim_start_matches('0').len();
    if lead == digits.len() {
        // zero
        if negative {
            out.push(b'-');
        }
        out.extend_from_slice(b"0.0");
        return;
    }
    digits.drain(..lead);
    e10 -= lead as i32;
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    if negative {
        out.push(b'-');
    }
    let d = digits.as_bytes();
    if (-5..16).contains(&e10) {
        if e10 < 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..(-e10 - 1) {
                out.push(b'0');
            }
            out.extend_from_slice(d);
        } else {
            let whole = (e10 + 1) as usize;
            if d.len() <= whole {
                out.extend_from_slice(d);
                for _ in d.len()..whole {
                    out.push(b'0');
                }
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&d[..whole]);
                out.push(b'.');
                out.extend_from_slice(&d[whole..]);
            }
        }
    } else {
        out.push(d[0]);
        if d.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        out.push(b'e');
        if e10 >= 0 {
            out.push(b'+');
        }
        write_int(out, e10 as i64);
    }
}

pub fn write_value(out: &mut Vec<u8>, v: &V) {
    match v {
        V::Str(s) => write_str(out, s),
        V::Int(n) => write_int(out, *n),
        V::Float(f) => write_float(out, *f),
        V::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        V::List(items) => {
            out.push(b'[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, s);
            }
            out.push(b']');
        }
    }
}

pub fn write_opt(out: &mut Vec<u8>, v: Option<&V>) {
    match v {
        Some(v) => write_value(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// `[ts, primary, {apiName: value}]`, a history entry as stored.
pub fn write_entry(out: &mut Vec<u8>, ts: i64, primary: Option<&V>, attrs: &[(std::sync::Arc<str>, V)]) {
    out.push(b'[');
    write_int(out, ts);
    out.push(b',');
    write_opt(out, primary);
    out.extend_from_slice(b",{");
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.extend_from_slice(b"}]");
}
