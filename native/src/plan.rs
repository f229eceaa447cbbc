//! The plan as `streams/engine/native.py` describes it (JSON, built once per plan): the
//! catalog's decoding tables, campaigns, triggers, constraints, filters and logic.

use crate::value::V;
use serde_json::Value as J;
use crate::value::{Map as HashMap, Set as HashSet};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dt {
    Text(usize), // string, text, phone, link: the longest value in characters
    Email,
    Integer,
    Float,
    Boolean,
    Datetime,
    Date, // the Python decoder reads it
    Other,
}

pub enum Op {
    Empty,
    NotEmpty,
    TextIn(HashSet<String>),
    TextNotIn(HashSet<String>),
    Contains(Vec<String>),
    NotContains(Vec<String>),
    Starts(Vec<String>),
    Ends(Vec<String>),
    In(Vec<V>),
    NotIn(Vec<V>),
    Between(V, V),
    Gt(V),
    Lt(V),
    Ge(V),
    Le(V),
    InPast(i64),
}

pub struct Check {
    pub key: Option<String>,
    pub any_of: bool,
    pub op: Op,
}

pub struct Trigger {
    pub name: String,
    pub checks: Vec<Check>,
}

/// An interval slot (`history_index.Stab`): each attribute the filter's `in past`s bound
/// (None: the primary) with its shortest duration, and the window (or the retention)
/// `width`; each entry its other checks accept is held as the interval of dates at which
/// the filter counts it (`intervals.rs`).
pub struct Stab {
    pub spans: Vec<(Option<String>, i64)>,
    pub width: i64,
}

pub enum Leaf {
    /// `slot`: its place in a lead's history index (None: its constraints depend on T in a
    /// way the index cannot count); `stab`: the slot counts intervals (its `in past`s).
    History { type_id: i64, window_us: Option<i64>, min_times: i64, negate: bool, checks: Vec<Check>, slot: Option<usize>, stab: Option<Stab> },
    /// `parse`: the field's text is read first (`operators.parsed`): 0 a number, 1 a moment.
    Field { key: String, op: Op, parse: Option<u8> },
}

pub enum Logic {
    Item(usize),
    Not(Box<Logic>),
    And(Box<Logic>, Box<Logic>),
    Or(Box<Logic>, Box<Logic>),
}

#[derive(PartialEq, Eq)]
pub enum Qualification {
    Once,
    EveryTime,
    Period,
}

pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub qualification: Qualification,
    pub period_us: i64,
    pub triggers: HashMap<i64, Vec<Trigger>>,
    pub leaves: Vec<Leaf>,
    pub logic: Option<Logic>,
    /// The lead fields (case-folded) its events carry, when it lists actions.
    pub carries: Option<Vec<String>>,
}

pub struct TypeDesc {
    pub primary: Dt,
    pub standard: bool,
    /// How a record may name an attribute (apiName, or a display name) -> (apiName, type).
    pub attrs: HashMap<String, (crate::value::Arc<str>, Dt)>,
}

/// What an event's `activityPrimary` and `activityAttributes` show (`events.action_members`):
/// the plan's catalog's types, the primary's and each attribute's data type.
pub struct EventType {
    pub primary: Dt,
    pub attrs: HashMap<String, Dt>,
}

pub struct Plan {
    /// `(kind, text) -> number | None`: `operators.parsed` with `parse_number` (0) or
    /// `parse_moment_us` (1), the Python functions themselves (set by the core).
    pub parse: Option<pyo3::Py<pyo3::PyAny>>,
    pub event_types: HashMap<i64, EventType>,
    pub rules_version: String,
    pub retention_us: i64,
    pub recorded: HashSet<i64>,
    pub types: HashMap<i64, TypeDesc>,
    pub campaigns: Vec<Campaign>,
    pub by_id: HashMap<i64, usize>,
    pub by_type: HashMap<i64, Vec<usize>>,
    /// The history index's slots by type: (slot, campaign, leaf) of each history leaf whose
    /// constraints do not depend on T, or depend on it by `in past`s alone (an interval slot).
    pub slots: HashMap<i64, Vec<(usize, usize, usize)>>,
    /// Which plan a lead's index was built for (a new plan rebuilds it).
    pub generation: u64,
}

type R<T> = Result<T, String>;

fn int(j: &J, what: &str) -> R<i64> {
    j.as_i64().ok_or_else(|| format!("{what}: not an integer"))
}

fn text(j: &J, what: &str) -> R<String> {
    j.as_str().map(str::to_owned).ok_or_else(|| format!("{what}: not a string"))
}

fn value(j: &J) -> R<V> {
    Ok(match j {
        J::String(s) => V::Str(s.as_str().into()),
        J::Bool(b) => V::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                V::Int(i)
            } else {
                V::Float(n.as_f64().ok_or("a number out of range")?)
            }
        }
        _ => return Err(format!("unsupported constant {j}")),
    })
}

fn strings(j: &J) -> R<Vec<String>> {
    j.as_array().ok_or("values: not a list")?.iter().map(|v| text(v, "value")).collect()
}

fn values(j: &J) -> R<Vec<V>> {
    j.as_array().ok_or("values: not a list")?.iter().map(value).collect()
}

fn op(j: &J) -> R<Op> {
    let name = j["op"].as_str().ok_or("op: not a string")?;
    let vals = &j["values"];
    let first = || -> R<V> { value(vals.get(0).ok_or("a value is missing")?) };
    Ok(match name {
        "empty" => Op::Empty,
        "not_empty" => Op::NotEmpty,
        "text_in" => Op::TextIn(strings(vals)?.into_iter().collect()),
        "text_not_in" => Op::TextNotIn(strings(vals)?.into_iter().collect()),
        "contains" => Op::Contains(strings(vals)?),
        "not_contains" => Op::NotContains(strings(vals)?),
        "starts" => Op::Starts(strings(vals)?),
        "ends" => Op::Ends(strings(vals)?),
        "in" => Op::In(values(vals)?),
        "not_in" => Op::NotIn(values(vals)?),
        "between" => Op::Between(first()?, value(vals.get(1).ok_or("between: two values")?)?),
        "gt" => Op::Gt(first()?),
        "lt" => Op::Lt(first()?),
        "ge" => Op::Ge(first()?),
        "le" => Op::Le(first()?),
        "in_past" => Op::InPast(int(vals.get(0).ok_or("in past: a duration")?, "in past")?),
        other => return Err(format!("unknown operator {other}")),
    })
}

fn checks(j: &J) -> R<Vec<Check>> {
    j.as_array()
        .ok_or("checks: not a list")?
        .iter()
        .map(|c| {
            Ok(Check {
                key: c["key"].as_str().map(str::to_owned),
                any_of: c["any_of"].as_bool().unwrap_or(false),
                op: op(&c["cond"])?,
            })
        })
        .collect()
}

fn logic(j: &J) -> R<Logic> {
    let a = j.as_array().ok_or("logic: not a list")?;
    let kind = a.first().and_then(J::as_str).ok_or("logic: no kind")?;
    let sub = |i: usize| -> R<Box<Logic>> { Ok(Box::new(logic(a.get(i).ok_or("logic: operand")?)?)) };
    Ok(match kind {
        "item" => Logic::Item(int(a.get(1).ok_or("logic: item")?, "item")? as usize),
        "not" => Logic::Not(sub(1)?),
        "and" => Logic::And(sub(1)?, sub(2)?),
        "or" => Logic::Or(sub(1)?, sub(2)?),
        other => return Err(format!("logic: unknown {other}")),
    })
}

fn dt(j: &J) -> R<Dt> {
    let name = j[0].as_str().ok_or("dataType")?;
    Ok(match name {
        "string" | "text" | "phone" | "link" => Dt::Text(j[1].as_u64().ok_or("max chars")? as usize),
        "email" => Dt::Email,
        "integer" => Dt::Integer,
        "float" | "currency" => Dt::Float,
        "boolean" => Dt::Boolean,
        "datetime" => Dt::Datetime,
        "date" => Dt::Date,
        _ => Dt::Other,
    })
}

pub fn parse(raw: &[u8]) -> R<Plan> {
    let j: J = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let mut types = HashMap::default();
    for t in j["types"].as_array().ok_or("types")? {
        let mut attrs = HashMap::default();
        for a in t["attrs"].as_array().ok_or("attrs")? {
            attrs.insert(text(&a[0], "attr key")?, (text(&a[1], "apiName")?.into(), dt(&a[2])?));
        }
        types.insert(
            int(&t["id"], "type id")?,
            TypeDesc { primary: dt(&t["primary"])?, standard: t["standard"].as_bool().unwrap_or(false), attrs },
        );
    }
    let mut campaigns = Vec::new();
    for c in j["campaigns"].as_array().ok_or("campaigns")? {
        let mut triggers = HashMap::default();
        for pair in c["triggers"].as_array().ok_or("triggers")? {
            let list = pair[1]
                .as_array()
                .ok_or("triggers of a type")?
                .iter()
                .map(|t| Ok(Trigger { name: text(&t["name"], "trigger name")?, checks: checks(&t["checks"])? }))
                .collect::<R<Vec<_>>>()?;
            triggers.insert(int(&pair[0], "trigger type")?, list);
        }
        let mut leaves = Vec::new();
        for l in c["leaves"].as_array().ok_or("leaves")? {
            leaves.push(if l["kind"] == "history" {
                Leaf::History {
                    type_id: int(&l["type_id"], "filter type")?,
                    window_us: l["window_us"].as_i64(),
                    min_times: int(&l["min_times"], "minTimes")?,
                    negate: l["negate"].as_bool().unwrap_or(false),
                    checks: checks(&l["checks"])?,
                    slot: None,
                    stab: None,
                }
            } else {
                Leaf::Field {
                    key: text(&l["key"], "field")?,
                    op: op(&l["cond"])?,
                    parse: match l["cond"]["parse"].as_str() {
                        None => None,
                        Some("number") => Some(0),
                        Some("moment") => Some(1),
                        Some(other) => return Err(format!("unknown parse {other}")),
                    },
                }
            });
        }
        let qualification = match c["qualification"].as_str() {
            Some("once") => Qualification::Once,
            Some("every time") => Qualification::EveryTime,
            Some("period") => Qualification::Period,
            _ => return Err("qualification".into()),
        };
        campaigns.push(Campaign {
            id: int(&c["id"], "campaign id")?,
            name: text(&c["name"], "campaign name")?,
            qualification,
            period_us: c["period_us"].as_i64().unwrap_or(0),
            triggers,
            leaves,
            logic: if c["logic"].is_null() { None } else { Some(logic(&c["logic"])?) },
            carries: if c["carries"].is_null() { None } else { Some(strings(&c["carries"])?) },
        });
    }
    let by_id = campaigns.iter().enumerate().map(|(i, c)| (c.id, i)).collect::<HashMap<_, _>>();
    let mut by_type = HashMap::default();
    for pair in j["by_type"].as_array().ok_or("by_type")? {
        let ids = pair[1]
            .as_array()
            .ok_or("by_type ids")?
            .iter()
            .map(|i| by_id.get(&int(i, "id")?).copied().ok_or_else(|| "by_type: unknown campaign".to_string()))
            .collect::<R<Vec<_>>>()?;
        by_type.insert(int(&pair[0], "type")?, ids);
    }
    let mut event_types = HashMap::default();
    for t in j["event_types"].as_array().ok_or("event_types")? {
        let mut attrs = HashMap::default();
        for a in t["attrs"].as_array().ok_or("event attrs")? {
            attrs.insert(text(&a[0], "attr key")?, dt(&a[1])?);
        }
        event_types.insert(int(&t["id"], "event type id")?, EventType { primary: dt(&t["primary"])?, attrs });
    }
    let mut slots: HashMap<i64, Vec<(usize, usize, usize)>> = HashMap::default();
    let mut next = 0;
    let retention_us = int(&j["retention_us"], "retention_us")?;
    for (c, campaign) in campaigns.iter_mut().enumerate() {
        for (l, leaf) in campaign.leaves.iter_mut().enumerate() {
            if let Leaf::History { type_id, window_us, checks, slot, stab, .. } = leaf {
                let timed: Vec<&Check> = checks.iter().filter(|c| matches!(c.op, Op::InPast(_))).collect();
                if timed.iter().any(|c| c.any_of) {
                    continue; // type 13's list: scanned (no `in past` reaches it: its names are text)
                }
                // each attribute's shortest duration, sorted (`in_past_spans`)
                let mut spans: Vec<(Option<String>, i64)> = Vec::new();
                for check in &timed {
                    let Op::InPast(d) = check.op else { continue };
                    match spans.iter_mut().find(|(k, _)| *k == check.key) {
                        Some((_, span)) => *span = (*span).min(d),
                        None => spans.push((check.key.clone(), d)),
                    }
                }
                spans.sort();
                if !spans.is_empty() {
                    *stab = Some(Stab { spans, width: window_us.unwrap_or(retention_us) });
                }
                *slot = Some(next);
                slots.entry(*type_id).or_default().push((next, c, l));
                next += 1;
            }
        }
    }
    Ok(Plan {
        slots,
        generation: 0,
        parse: None,
        event_types,
        rules_version: text(&j["rules_version"], "rules_version")?,
        retention_us,
        recorded: j["recorded"].as_array().ok_or("recorded")?.iter().filter_map(J::as_i64).collect(),
        types,
        campaigns,
        by_id,
        by_type,
    })
}
