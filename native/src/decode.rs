//! The decoder's fast path, natively: a record of the common shape to an `Activity`, or
//! None, and then the Python decoder decides (every rejection and its message, and every
//! unusual but valid form, come from `streams.engine.activity`). It accepts a record only
//! when the reference would accept it with the same activity: every bound of the Python
//! decoder is checked here or makes it give up.

use crate::json;
use crate::plan::{Dt, Plan};
use crate::value::{format_us, parse_date, parse_datetime_common, Arc, Attrs, V};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
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
/// `standard_types.MOBILE_ACTION_NAME_MAX`: a mobile action's name, in characters (code
/// points, as Python's `len`), is at most this long.
const MOBILE_ACTION_NAME_MAX: usize = 19;

pub struct Activity {
    pub id: String,
    pub lead_id: i64,
    pub type_id: i64,
    pub ts: i64,
    pub primary: Option<V>,
    pub attrs: Attrs,
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

/// A JSON value as the fast path reads it, strings borrowed from the record when they have
/// no escapes. Lists and objects are read in full (every string's UTF-8 checked, as orjson
/// does), never skipped, and then only known to be there (`Complex`).
#[derive(Default)]
enum Raw<'a> {
    #[default]
    Null,
    Bool(bool),
    I(i64),
    /// An integer beyond 64 bits signed: the Python decoder's.
    Big,
    F(f64),
    S(Cow<'a, str>),
    Complex,
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RawVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for RawVisitor<'a> {
            type Value = Raw<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Raw<'a>, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw<'a>, E> {
                Ok(Raw::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw<'a>, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw<'a>, E> {
                Ok(Raw::I(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw<'a>, E> {
                Ok(if v <= INT64_MAX { Raw::I(v as i64) } else { Raw::Big })
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw<'a>, E> {
                Ok(Raw::F(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Raw<'a>, E> {
                Ok(Raw::S(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw<'a>, E> {
                Ok(Raw::S(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw<'a>, E> {
                Ok(Raw::S(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'a>, A::Error> {
                while seq.next_element::<serde_json::Value>()?.is_some() {}
                Ok(Raw::Complex)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'a>, A::Error> {
                while map.next_entry::<String, serde_json::Value>()?.is_some() {}
                Ok(Raw::Complex)
            }
        }
        d.deserialize_any(RawVisitor(std::marker::PhantomData))
    }
}

impl Raw<'_> {
    fn str(&self) -> Option<&str> {
        match self {
            Raw::S(s) => Some(s),
            _ => None,
        }
    }
}

/// The members the reference reads; any other member (or one given twice) and the record
/// is the Python decoder's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord<'a> {
    #[serde(rename = "leadId", default, borrow)]
    lead_id: Raw<'a>,
    #[serde(rename = "activityDate", default, borrow)]
    activity_date: Raw<'a>,
    #[serde(rename = "activityTypeId", default, borrow)]
    type_id: Raw<'a>,
    #[serde(rename = "marketoGUID", default, borrow)]
    guid: Raw<'a>,
    #[serde(default, borrow)]
    id: Raw<'a>,
    #[serde(rename = "primaryAttributeValue", default, borrow)]
    primary: Raw<'a>,
    #[serde(default, borrow)]
    attributes: Option<Vec<RawAttr<'a>>>,
    #[serde(rename = "primaryAttributeValueId", default, borrow)]
    _primary_id: Raw<'a>,
    #[serde(default, borrow)]
    fields: Option<Vec<RawField<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttr<'a> {
    #[serde(rename = "apiName", default, borrow)]
    api_name: Raw<'a>,
    #[serde(default, borrow)]
    value: Raw<'a>,
    #[serde(default, borrow)]
    name: Raw<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField<'a> {
    #[serde(default, borrow)]
    name: Raw<'a>,
    #[serde(rename = "newValue", default, borrow)]
    new_value: Raw<'a>,
}

fn positive_int(r: &Raw) -> Option<i64> {
    match r {
        Raw::I(n) if *n >= 1 => Some(*n),
        _ => None,
    }
}

/// An attribute value of the common shape, as `spec.coerce` makes it; None: give up.
fn attribute(dt: Dt, r: &Raw) -> Option<V> {
    match (dt, r) {
        (Dt::Text(limit), Raw::S(s)) if chars(s) <= limit => Some(V::Str(Arc::from(&**s))),
        (Dt::Email, Raw::S(s)) => {
            let (local, domain) = s.split_once('@')?;
            if local.is_empty() || domain.is_empty() || domain.contains('@') || chars(s) > 255 {
                return None;
            }
            Some(V::Str(Arc::from(&**s)))
        }
        (Dt::Integer, Raw::I(n)) => Some(V::Int(*n)),
        (Dt::Float, Raw::I(n)) => Some(V::Float(*n as f64)),
        (Dt::Float, Raw::F(f)) if f.is_finite() => Some(V::Float(*f)),
        (Dt::Boolean, Raw::Bool(b)) => Some(V::Bool(*b)),
        (Dt::Datetime, Raw::S(s)) => parse_datetime_common(s).map(V::Int),
        (Dt::Date, Raw::S(s)) => parse_date(s).map(V::Int),
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

fn field_value(r: &Raw) -> Option<Option<String>> {
    match r {
        Raw::Null => Some(None),
        Raw::S(s) if chars(s) <= MAX_FIELD_VALUE_CHARS => Some(Some(s.to_string())),
        Raw::Bool(b) => Some(Some(if *b { "true" } else { "false" }.to_owned())),
        Raw::I(n) => Some(Some(n.to_string())),
        _ => None,
    }
}

fn fields(list: &[RawField]) -> Option<Vec<(String, Option<String>)>> {
    if list.len() > MAX_FIELD_CHANGES {
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let name = entry.name.str()?;
        if !plain_field_name(name) {
            return None;
        }
        out.push((name.to_owned(), field_value(&entry.new_value)?));
    }
    Some(out)
}

pub fn decode(plan: &Plan, raw: &[u8], position: &str, now_us: i64, horizon_us: i64) -> Option<Activity> {
    if raw.len() > MAX_RECORD_BYTES {
        return None;
    }
    let record: RawRecord = serde_json::from_slice(raw).ok()?;
    let lead_id = positive_int(&record.lead_id)?;
    let type_id = positive_int(&record.type_id)?;
    let date = record.activity_date.str()?;
    let spec = plan.types.get(&type_id)?;
    if type_id == MOBILE_APP_ACTION {
        // The reference's one extra rule for the type: a name, present and short. Any
        // other (missing, empty, too long, not a string) is its to reject, with its reason.
        match record.primary.str() {
            Some(name) if !name.is_empty() && chars(name) <= MOBILE_ACTION_NAME_MAX => {}
            _ => return None,
        }
    }
    let identity: Option<&str> = match (&record.guid, &record.id) {
        (Raw::S(s), _) if !s.is_empty() => Some(s),
        (Raw::Null, Raw::Null) => None,
        (Raw::Null, Raw::S(s)) if !s.is_empty() => Some(s),
        _ => return None,
    };
    if let Some(s) = identity {
        if chars(s) > MAX_IDENTITY_CHARS {
            return None;
        }
    }
    let mut attrs: Vec<(Arc<str>, V)> = Vec::new();
    if let Some(list) = &record.attributes {
        if list.len() > MAX_ATTRIBUTES {
            return None;
        }
        attrs.reserve(list.len());
        let mut mentioned: Vec<&str> = Vec::with_capacity(list.len());
        for entry in list {
            let key = match (&entry.api_name, &entry.name) {
                (Raw::S(key), _) => key,
                (Raw::Null, Raw::S(name)) => name, // the reference's second choice
                _ => return None,
            };
            let (api_name, dt) = spec.attrs.get(&**key)?;
            if mentioned.contains(&&**api_name) {
                return None; // given twice: the reference compares the two
            }
            mentioned.push(&**api_name);
            match &entry.value {
                Raw::Null => {}
                Raw::S(s) if s.is_empty() => {} // an empty attribute is left out
                v => attrs.push((api_name.clone(), attribute(*dt, v)?)),
            }
        }
    }
    let changes = if type_id == CHANGE_DATA_VALUE || type_id == NEW_LEAD {
        match &record.fields {
            None if type_id == CHANGE_DATA_VALUE => return None,
            None => Vec::new(),
            Some(list) => fields(list)?,
        }
    } else if record.fields.is_some() {
        return None; // ignored by the reference, whatever it holds: rare, its to decide
    } else {
        Vec::new()
    };
    let ts = parse_datetime_common(date)?;
    if ts > now_us.saturating_add(horizon_us) {
        return None;
    }
    let primary = if type_id == CHANGE_DATA_VALUE {
        Some(V::List(Arc::new(changes.iter().map(|(n, _)| n.clone()).collect())))
    } else {
        match (&record.primary, spec.primary) {
            (Raw::Null, _) if spec.standard => None,
            (Raw::S(s), _) if s.is_empty() && spec.standard => None,
            (Raw::S(s), Dt::Text(limit)) if !s.is_empty() && chars(s) <= limit => Some(V::Str(Arc::from(&**s))),
            (v @ (Raw::I(_) | Raw::F(_) | Raw::Bool(_) | Raw::S(_)), dt @ (Dt::Integer | Dt::Float | Dt::Boolean | Dt::Datetime | Dt::Date | Dt::Email)) => {
                Some(attribute(dt, v)?)
            }
            _ => return None,
        }
    };
    let id = match identity {
        Some(s) => s.to_owned(),
        None => content_hash(lead_id, type_id, ts, primary.as_ref(), &attrs, &changes),
    };
    Some(Activity { id, lead_id, type_id, ts, primary, attrs: attrs.into(), fields: changes, position: position.to_owned() })
}

/// `activity._content_hash`: the identity of a record without one.
pub fn content_hash(
    lead_id: i64,
    type_id: i64,
    ts: i64,
    primary: Option<&V>,
    attrs: &[(Arc<str>, V)],
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
    let mut sorted: Vec<&(Arc<str>, V)> = attrs.iter().collect();
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
        crate::value::push_hex(&mut id, *b);
    }
    id
}
