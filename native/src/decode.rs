//! The decoder's fast path, natively: a record of the common shape to an `Activity`, or
//! None, and then the Python decoder decides (every rejection and its message, and every
//! unusual but valid form, come from `streams.engine.activity`). It accepts a record only
//! when the reference would accept it with the same activity: every bound of the Python
//! decoder is checked here or makes it give up.

use crate::json;
use crate::plan::{Dt, Plan};
use crate::value::{format_us, parse_datetime_common, V};
use serde_json::Value as J;
use sha2::{Digest, Sha256};

pub const MAX_RECORD_BYTES: usize = 524_288;
const MAX_IDENTITY_CHARS: usize = 255;
const MAX_ATTRIBUTES: usize = 50;
const MAX_FIELD_CHANGES: usize = 100;
const MAX_FIELD_NAME_CHARS: usize = 255;
const MAX_FIELD_VALUE_CHARS: usize = 65_535;
const INT64_MAX: u64 = i64::MAX as u64;
pub const NEW_LEAD: i64 = 12;
pub const CHANGE_DATA_VALUE: i64 = 13;
pub const DELETE_LEAD: i64 = 37;
const MOBILE_APP_ACTION: i64 = 400;

pub struct Activity {
    pub id: String,
    pub lead_id: i64,
    pub type_id: i64,
    pub ts: i64,
    pub primary: Option<V>,
    pub attrs: Vec<(String, V)>,
    pub fields: Vec<(String, Option<String>)>,
    pub position: String,
}

fn chars(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

fn positive_int(j: &J) -> Option<i64> {
    let n = j.as_u64()?;
    if (1..=INT64_MAX).contains(&n) {
        Some(n as i64)
    } else {
        None
    }
}

/// An attribute value of the common shape, as `spec.coerce` makes it; None: give up.
fn attribute(dt: Dt, j: &J) -> Option<V> {
    match (dt, j) {
        (Dt::Text(limit), J::String(s)) if chars(s) <= limit => Some(V::Str(s.clone())),
        (Dt::Email, J::String(s)) => {
            let (local, domain) = s.split_once('@')?;
            if local.is_empty() || domain.is_empty() || domain.contains('@') || chars(s) > 255 {
                return None;
            }
            Some(V::Str(s.clone()))
        }
        (Dt::Integer, J::Number(n)) => n.as_i64().map(V::Int),
        (Dt::Float, J::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Some(V::Float(i as f64))
            } else if n.is_f64() {
                n.as_f64().filter(|f| f.is_finite()).map(V::Float)
            } else {
                None // a u64 beyond i64: the reference's float() decides
            }
        }
        (Dt::Boolean, J::Bool(b)) => Some(V::Bool(*b)),
        (Dt::Datetime, J::String(s)) => parse_datetime_common(s).map(V::Int),
        _ => None,
    }
}

/// A field name the reference accepts as it is, and whose `strip()` and `casefold()` agree
/// with Rust's: printable ASCII (a space is fine) with a character that is not a space.
fn plain_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_FIELD_NAME_CHARS
        && s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && s.bytes().any(|b| b != b' ')
}

fn field_value(j: Option<&J>) -> Option<Option<String>> {
    match j {
        None | Some(J::Null) => Some(None),
        Some(J::String(s)) if chars(s) <= MAX_FIELD_VALUE_CHARS => Some(Some(s.clone())),
        Some(J::Bool(b)) => Some(Some(if *b { "true" } else { "false" }.to_owned())),
        Some(J::Number(n)) => n.as_i64().map(|i| Some(i.to_string())),
        _ => None,
    }
}

fn fields(j: &J) -> Option<Vec<(String, Option<String>)>> {
    let list = j.as_array()?;
    if list.len() > MAX_FIELD_CHANGES {
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let entry = entry.as_object()?;
        let name = entry.get("name")?.as_str()?;
        if !plain_field_name(name) {
            return None;
        }
        out.push((name.to_owned(), field_value(entry.get("newValue"))?));
    }
    Some(out)
}

const KNOWN: [&str; 9] = [
    "leadId",
    "activityDate",
    "activityTypeId",
    "marketoGUID",
    "id",
    "primaryAttributeValue",
    "attributes",
    "primaryAttributeValueId",
    "fields",
];

pub fn decode(plan: &Plan, raw: &[u8], position: &str, now_us: i64, horizon_us: i64) -> Option<Activity> {
    if raw.len() > MAX_RECORD_BYTES {
        return None;
    }
    let j: J = serde_json::from_slice(raw).ok()?;
    let obj = j.as_object()?;
    if !obj.keys().all(|k| KNOWN.contains(&k.as_str())) {
        return None;
    }
    let lead_id = positive_int(obj.get("leadId")?)?;
    let type_id = positive_int(obj.get("activityTypeId")?)?;
    let date = obj.get("activityDate")?.as_str()?;
    let spec = plan.types.get(&type_id)?;
    if type_id == MOBILE_APP_ACTION {
        return None;
    }
    let identity = match (obj.get("marketoGUID"), obj.get("id")) {
        (Some(J::String(s)), _) if !s.is_empty() => Some(s),
        (None | Some(J::Null), None | Some(J::Null)) => None,
        (None | Some(J::Null), Some(J::String(s))) if !s.is_empty() => Some(s),
        _ => return None,
    };
    if let Some(s) = identity {
        if chars(s) > MAX_IDENTITY_CHARS {
            return None;
        }
    }
    let mut attrs: Vec<(String, V)> = Vec::new();
    match obj.get("attributes") {
        None | Some(J::Null) => {}
        Some(J::Array(list)) => {
            if list.len() > MAX_ATTRIBUTES {
                return None;
            }
            let mut mentioned: Vec<&str> = Vec::with_capacity(list.len());
            for entry in list {
                let entry = entry.as_object()?;
                let key = entry.get("apiName")?.as_str()?;
                let (api_name, dt) = spec.attrs.get(key)?;
                if mentioned.contains(&api_name.as_str()) {
                    return None; // given twice: the reference compares the two
                }
                mentioned.push(api_name.as_str());
                match entry.get("value") {
                    None | Some(J::Null) => {}
                    Some(J::String(s)) if s.is_empty() => {} // an empty attribute is left out
                    Some(v) => attrs.push((api_name.clone(), attribute(*dt, v)?)),
                }
            }
        }
        _ => return None,
    }
    let changes = if type_id == CHANGE_DATA_VALUE || type_id == NEW_LEAD {
        match obj.get("fields") {
            None | Some(J::Null) if type_id == CHANGE_DATA_VALUE => return None,
            None | Some(J::Null) => Vec::new(),
            Some(f) => fields(f)?,
        }
    } else {
        Vec::new()
    };
    let ts = parse_datetime_common(date)?;
    if ts > now_us.saturating_add(horizon_us) {
        return None;
    }
    let primary = if type_id == CHANGE_DATA_VALUE {
        Some(V::List(changes.iter().map(|(n, _)| n.clone()).collect()))
    } else {
        match (obj.get("primaryAttributeValue"), spec.primary) {
            (None | Some(J::Null), _) if spec.standard => None,
            (Some(J::String(s)), _) if s.is_empty() && spec.standard => None,
            (Some(J::String(s)), Dt::Text(limit)) if !s.is_empty() && chars(s) <= limit => Some(V::Str(s.clone())),
            (Some(v @ (J::Number(_) | J::Bool(_) | J::String(_))), dt @ (Dt::Integer | Dt::Float | Dt::Boolean | Dt::Datetime | Dt::Email)) => {
                Some(attribute(dt, v)?)
            }
            _ => return None,
        }
    };
    let id = match identity {
        Some(s) => s.clone(),
        None => content_hash(lead_id, type_id, ts, primary.as_ref(), &attrs, &changes),
    };
    Some(Activity { id, lead_id, type_id, ts, primary, attrs, fields: changes, position: position.to_owned() })
}

/// `activity._content_hash`: the identity of a record without one.
pub fn content_hash(
    lead_id: i64,
    type_id: i64,
    ts: i64,
    primary: Option<&V>,
    attrs: &[(String, V)],
    fields: &[(String, Option<String>)],
) -> String {
    let mut out = Vec::with_capacity(128);
    out.push(b'[');
    json::write_int(&mut out, lead_id);
    out.push(b',');
    json::write_int(&mut out, type_id);
    out.push(b',');
    json::write_str(&mut out, &format_us(ts));
    out.push(b',');
    json::write_opt(&mut out, primary);
    out.extend_from_slice(b",[");
    let mut sorted: Vec<&(String, V)> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json::write_str(&mut out, k);
        out.push(b',');
        json::write_value(&mut out, v);
        out.push(b']');
    }
    out.extend_from_slice(b"],[");
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json::write_str(&mut out, name);
        out.push(b',');
        match value {
            Some(v) => json::write_str(&mut out, v),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b']');
    }
    out.extend_from_slice(b"]]");
    let digest = Sha256::digest(&out);
    let mut id = String::with_capacity(34);
    id.push_str("h-");
    for b in &digest[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}
