//! Lead state and the evaluation of one activity: `evaluator.Engine.process` followed by
//! `bounds.enforce`, the reference's semantics step by step (history scanned, as the
//! reference evaluator does: the index only changes the speed), and the stored form of
//! `state/codec.encode_state`, byte for byte.

use crate::decode::{Activity, CHANGE_DATA_VALUE, DELETE_LEAD, NEW_LEAD};
use crate::json;
use crate::plan::{Campaign, Check, Leaf, Logic, Op, Plan, Qualification, Stab};
use crate::value::{fold, py_cmp, py_eq, Arc, Attrs, IMap, V};
use pyo3::prelude::*;
use std::cmp::Ordering;
use std::collections::BTreeMap;

// Declared here, not in lib.rs: the structure belongs to the history index.
#[path = "intervals.rs"]
mod intervals;
use intervals::Intervals;

pub struct Entry {
    pub ts: i64,
    pub primary: Option<V>,
    pub attrs: Attrs,
    pub bytes: usize,
    /// Its number in the lead's list (`stored.rs`: what a delta holds).
    pub seq: u64,
}

pub struct Seen {
    pub at: i64,
    pub position: String,
    pub fired: Vec<i64>,
    /// The lead fields the fired campaigns carried (`leadstate`: a fourth member).
    pub carried: Option<Box<IMap<String, String>>>,
    /// Its number in the lead's `seen` (`stored.rs`).
    pub seq: u64,
}

#[derive(Default)]
pub struct Lead {
    pub history: BTreeMap<i64, Vec<Entry>>,
    /// The earliest date of each type's entries (the retention looks at it on every append).
    pub min_ts: BTreeMap<i64, i64>,
    pub fields: IMap<String, String>,
    pub runs: IMap<i64, i64>,
    pub seen: IMap<String, Seen>,
    pub max_ts: Option<i64>,
    pub count: usize,
    pub bytes: usize,
    /// The batch that last touched the lead (its future repair runs once per batch).
    pub batch: u64,
    /// The history index (`history_index.py`'s, natively): per slot, the sorted dates of
    /// the entries its constraints accept (an interval slot: their intervals, `intervals.rs`);
    /// None until a type holds `index_from` entries.
    pub index: Option<Box<Index>>,
}

pub struct Index {
    generation: u64,
    hits: crate::value::Map<usize, Vec<i64>>,
    /// The interval slots' intervals (`history_index.py`'s `stabs`).
    stabs: crate::value::Map<usize, Intervals>,
}

fn slot_checks(plan: &Plan, campaign: usize, leaf: usize) -> &[Check] {
    match &plan.campaigns[campaign].leaves[leaf] {
        Leaf::History { checks, .. } => checks,
        Leaf::Field { .. } => &[],
    }
}

fn slot_stab(plan: &Plan, campaign: usize, leaf: usize) -> Option<&Stab> {
    match &plan.campaigns[campaign].leaves[leaf] {
        Leaf::History { stab, .. } => stab.as_ref(),
        Leaf::Field { .. } => None,
    }
}

fn attribute<'a>(key: &Option<String>, primary: Option<&'a V>, attrs: &'a [(Arc<str>, V)]) -> Option<&'a V> {
    match key {
        None => primary,
        Some(k) => attrs.iter().find(|(name, _)| **name == **k).map(|(_, v)| v),
    }
}

/// `Stab.interval`: the dates T at which an entry dated `ts` is counted (`intervals.rs`).
fn stab_interval(stab: &Stab, ts: i64, primary: Option<&V>, attrs: &[(Arc<str>, V)]) -> SlotEntry {
    let (mut start, mut end) = (ts, ts.saturating_add(stab.width));
    let mut empty = false;
    for (key, span) in &stab.spans {
        match attribute(key, primary, attrs) {
            None => empty = true,
            Some(V::Int(x)) => {
                start = start.max(*x);
                end = end.min(x.saturating_add(*span));
            }
            Some(_) => return SlotEntry::Odd,
        }
    }
    if empty || start > end {
        SlotEntry::No
    } else {
        SlotEntry::Interval(start, end)
    }
}

/// What an entry is to a slot (`slot_entry`).
enum SlotEntry {
    /// Not the slot's: a check fails (or an interval slot never counts it).
    No,
    /// A slot of sorted dates accepts it.
    Date,
    /// An interval slot's entry: the dates at which its filter counts it.
    Interval(i64, i64),
    /// An interval slot's entry whose attribute is neither empty nor an integer (stored
    /// under another dataType): the slot cannot count it, its filters scan (`odd`).
    Odd,
}

/// Whether an entry belongs to a slot, and for an interval slot its interval.
fn slot_entry(py: Python<'_>, plan: &Plan, slot: (usize, usize, usize), ts: i64, primary: Option<&V>, attrs: &[(Arc<str>, V)]) -> SlotEntry {
    let (_, c, l) = slot;
    let checks = slot_checks(plan, c, l);
    if let Some(stab) = slot_stab(plan, c, l) {
        return if matches_where(py, checks.iter().filter(|c| !matches!(c.op, Op::InPast(_))), primary, attrs, 0) {
            stab_interval(stab, ts, primary, attrs)
        } else {
            SlotEntry::No
        };
    }
    if matches(py, checks, primary, attrs, 0) {
        SlotEntry::Date
    } else {
        SlotEntry::No
    }
}

pub struct Limits {
    pub future_horizon_us: i64,
    pub max_history: usize,
    pub max_history_bytes: usize,
    pub max_seen: usize,
    pub max_fields: usize,
    pub max_fields_chars: usize,
    pub dedup_horizon_us: i64,
    /// Entries of one type from which a lead's history is indexed (`Engine.index_from`;
    /// None: never, the scanning reference).
    pub index_from: Option<usize>,
}

const EXPIRE_EVERY: usize = 16;

pub struct Event {
    pub campaign_id: i64,
    pub campaign_name: String,
    pub trigger: String,
    /// For a campaign with actions: the lead fields it carries (`events.action_members`).
    pub lead_fields: Option<Vec<(String, String)>>,
}

fn carried_fields(carries: &Option<Vec<String>>, fields: &IMap<String, String>) -> Option<Vec<(String, String)>> {
    carries.as_ref().map(|names| {
        names.iter().filter_map(|n| fields.get(n).map(|v| (n.clone(), v.clone()))).collect()
    })
}

pub enum Outcome {
    Duplicate,
    Redelivered(Vec<Event>),
    Accepted(Vec<Event>),
}

fn entry_bytes(ts: i64, primary: Option<&V>, attrs: &[(Arc<str>, V)]) -> usize {
    let mut out = Vec::with_capacity(96);
    json::write_entry(&mut out, ts, primary, attrs);
    out.len()
}

fn op_holds(py: Python<'_>, op: &Op, v: Option<&V>, t: i64) -> bool {
    fn folded<'v>(py: Python<'_>, v: Option<&'v V>) -> Option<std::borrow::Cow<'v, str>> {
        match v {
            Some(V::Str(s)) => Some(fold(py, s)),
            _ => None,
        }
    }
    match op {
        Op::Empty => v.is_none(),
        Op::NotEmpty => v.is_some(),
        Op::TextIn(set) => folded(py, v).is_some_and(|s| set.contains(&*s)),
        Op::TextNotIn(set) => v.is_none() || folded(py, v).is_some_and(|s| !set.contains(&*s)),
        Op::Contains(xs) => folded(py, v).is_some_and(|s| xs.iter().any(|x| s.contains(x.as_str()))),
        Op::NotContains(xs) => v.is_none() || folded(py, v).is_some_and(|s| !xs.iter().any(|x| s.contains(x.as_str()))),
        Op::Starts(xs) => folded(py, v).is_some_and(|s| xs.iter().any(|x| s.starts_with(x.as_str()))),
        Op::Ends(xs) => folded(py, v).is_some_and(|s| xs.iter().any(|x| s.ends_with(x.as_str()))),
        Op::In(cs) => v.is_some_and(|v| cs.iter().any(|c| py_eq(v, c))),
        Op::NotIn(cs) => v.is_none_or(|v| !cs.iter().any(|c| py_eq(v, c))),
        Op::Between(lo, hi) => v.is_some_and(|v| {
            matches!(py_cmp(lo, v), Some(Ordering::Less | Ordering::Equal))
                && matches!(py_cmp(v, hi), Some(Ordering::Less | Ordering::Equal))
        }),
        Op::Gt(c) => v.is_some_and(|v| py_cmp(v, c) == Some(Ordering::Greater)),
        Op::Lt(c) => v.is_some_and(|v| py_cmp(v, c) == Some(Ordering::Less)),
        Op::Ge(c) => v.is_some_and(|v| matches!(py_cmp(v, c), Some(Ordering::Greater | Ordering::Equal))),
        Op::Le(c) => v.is_some_and(|v| matches!(py_cmp(v, c), Some(Ordering::Less | Ordering::Equal))),
        // Python's `t - d <= v <= t`: a float or a bool (an attribute stored under another
        // dataType) compares as a number, exactly, as `Between` does
        Op::InPast(d) => v.is_some_and(|v| match v {
            V::Int(x) => t - d <= *x && *x <= t,
            v => {
                matches!(py_cmp(&V::Int(t - d), v), Some(Ordering::Less | Ordering::Equal))
                    && matches!(py_cmp(v, &V::Int(t)), Some(Ordering::Less | Ordering::Equal))
            }
        }),
    }
}

/// `compiler.build_matcher`: every constraint holds.
fn matches(py: Python<'_>, checks: &[Check], primary: Option<&V>, attrs: &[(Arc<str>, V)], t: i64) -> bool {
    matches_where(py, checks.iter(), primary, attrs, t)
}

fn matches_where<'c>(py: Python<'_>, checks: impl Iterator<Item = &'c Check>, primary: Option<&V>, attrs: &[(Arc<str>, V)], t: i64) -> bool {
    for check in checks {
        let v = match &check.key {
            None => primary,
            Some(k) => attrs.iter().find(|(name, _)| **name == **k).map(|(_, v)| v),
        };
        if check.any_of {
            match v {
                Some(V::List(items)) if !items.is_empty() => {
                    let mut any = false;
                    for item in items.iter() {
                        if op_holds(py, &check.op, Some(&V::Str(item.as_str().into())), t) {
                            any = true;
                            break;
                        }
                    }
                    if !any {
                        return false;
                    }
                }
                _ => {
                    if !op_holds(py, &check.op, None, t) {
                        return false;
                    }
                }
            }
        } else if !op_holds(py, &check.op, v, t) {
            return false;
        }
    }
    true
}

fn leaf_holds(py: Python<'_>, plan: &Plan, leaf: &Leaf, lead: &Lead, ts: i64) -> bool {
    match leaf {
        Leaf::Field { key, op, parse: None } => {
            op_holds(py, op, lead.fields.get(key).map(|s| V::Str(s.as_str().into())).as_ref(), ts)
        }
        Leaf::Field { key, op, parse: Some(kind) } => {
            let parsed = match (lead.fields.get(key), &plan.parse) {
                (Some(text), Some(parse)) => parse
                    .call1(py, (*kind, text.as_str()))
                    .and_then(|v| {
                        let v = v.bind(py);
                        if v.is_none() {
                            Ok(None)
                        } else if let Ok(i) = v.extract::<i64>() {
                            Ok(Some(V::Int(i)))
                        } else {
                            v.extract::<f64>().map(|f| Some(V::Float(f)))
                        }
                    })
                    .unwrap_or_else(|err| {
                        crate::stored::note_fault(err); // the batch fails with it
                        None
                    }),
                _ => None,
            };
            op_holds(py, op, parsed.as_ref(), ts)
        }
        Leaf::History { type_id, window_us, min_times, negate, checks, slot, stab } => {
            let low = ts - window_us.unwrap_or(plan.retention_us);
            if let (Some(slot), Some(index)) = (slot, &lead.index) {
                let count = if stab.is_some() {
                    match index.stabs.get(slot) {
                        Some(i) if i.odd => usize::MAX, // scanned below, as the reference does
                        Some(i) => i.count(ts),
                        None => 0,
                    }
                } else {
                    index.hits.get(slot).map_or(0, |hits| {
                        hits.partition_point(|d| *d <= ts) - hits.partition_point(|d| *d < low)
                    })
                };
                if count != usize::MAX {
                    return (count as i64 >= *min_times) != *negate;
                }
            }
            if let Some(entries) = lead.history.get(type_id) {
                let mut found = 0;
                for e in entries {
                    if low <= e.ts && e.ts <= ts && matches(py, checks, e.primary.as_ref(), &e.attrs, ts) {
                        found += 1;
                        if found >= *min_times {
                            return !negate;
                        }
                    }
                }
            }
            *negate
        }
    }
}

fn logic_holds(py: Python<'_>, plan: &Plan, node: &Logic, leaves: &[Leaf], lead: &Lead, ts: i64) -> bool {
    match node {
        Logic::Item(n) => leaf_holds(py, plan, &leaves[n - 1], lead, ts),
        Logic::Not(x) => !logic_holds(py, plan, x, leaves, lead, ts),
        Logic::And(a, b) => logic_holds(py, plan, a, leaves, lead, ts) && logic_holds(py, plan, b, leaves, lead, ts),
        Logic::Or(a, b) => logic_holds(py, plan, a, leaves, lead, ts) || logic_holds(py, plan, b, leaves, lead, ts),
    }
}

fn matching_trigger<'a>(py: Python<'_>, campaign: &'a Campaign, a: &Activity) -> Option<&'a str> {
    for trigger in campaign.triggers.get(&a.type_id)? {
        if matches(py, &trigger.checks, a.primary.as_ref(), &a.attrs, a.ts) {
            return Some(&trigger.name);
        }
    }
    None
}

impl Lead {
    pub fn erase(&mut self) {
        self.history.clear();
        self.min_ts.clear();
        self.index = None;
        self.fields.clear();
        self.runs.clear();
        self.max_ts = None;
        self.count = 0;
        self.bytes = 0;
    }

    /// `bounds.drop_future`.
    pub fn drop_future(&mut self, limit_us: i64) {
        match self.max_ts {
            Some(m) if m > limit_us => {}
            _ => return,
        }
        let mut latest: Option<i64> = None;
        self.index = None;
        for entries in self.history.values_mut() {
            entries.retain(|e| e.ts <= limit_us);
            for e in entries.iter() {
                if latest.is_none_or(|l| e.ts > l) {
                    latest = Some(e.ts);
                }
            }
        }
        self.recount();
        self.max_ts = latest;
    }

    pub fn recount(&mut self) {
        self.min_ts = self
            .history
            .iter()
            .filter_map(|(t, entries)| entries.iter().map(|e| e.ts).min().map(|m| (*t, m)))
            .collect();
        self.count = self.history.values().map(Vec::len).sum();
        self.bytes = self.history.values().flatten().map(|e| e.bytes).sum();
    }

    /// `Engine._apply`: history (pruned by the retention), fields, or erasure.
    fn apply(&mut self, py: Python<'_>, plan: &Plan, a: &Activity) {
        if a.type_id == DELETE_LEAD {
            self.erase();
            return;
        }
        let max_ts = match self.max_ts {
            Some(m) if a.ts <= m => m,
            _ => {
                self.max_ts = Some(a.ts);
                a.ts
            }
        };
        if plan.recorded.contains(&a.type_id) {
            let horizon = max_ts - plan.retention_us;
            let bytes = entry_bytes(a.ts, a.primary.as_ref(), &a.attrs);
            if let Some(index) = self.index.as_mut() {
                for &(slot, c, l) in plan.slots.get(&a.type_id).map_or(&[][..], |v| &v[..]) {
                    match slot_entry(py, plan, (slot, c, l), a.ts, a.primary.as_ref(), &a.attrs) {
                        SlotEntry::No => {}
                        SlotEntry::Interval(start, end) => index.stabs.entry(slot).or_default().add(start, end),
                        SlotEntry::Odd => index.stabs.entry(slot).or_default().odd = true,
                        SlotEntry::Date => {
                            let hits = index.hits.entry(slot).or_default();
                            let at = hits.partition_point(|d| *d <= a.ts);
                            hits.insert(at, a.ts);
                        }
                    }
                }
            }
            let entries = self.history.entry(a.type_id).or_default();
            entries.push(Entry { ts: a.ts, primary: a.primary.clone(), attrs: a.attrs.clone(), bytes, seq: crate::stored::next_seq() });
            self.count += 1;
            self.bytes += bytes;
            let earliest = self.min_ts.entry(a.type_id).or_insert(a.ts);
            *earliest = (*earliest).min(a.ts);
            if *earliest < horizon {
                if let Some(index) = self.index.as_mut() {
                    // the intervals of the entries that go, from the interval slots
                    for &(slot, c, l) in plan.slots.get(&a.type_id).map_or(&[][..], |v| &v[..]) {
                        let Some(held) = index.stabs.get_mut(&slot) else { continue };
                        for e in entries.iter().filter(|e| e.ts < horizon) {
                            if let SlotEntry::Interval(start, end) = slot_entry(py, plan, (slot, c, l), e.ts, e.primary.as_ref(), &e.attrs) {
                                held.remove(start, end);
                            }
                        }
                    }
                }
                let mut gone_count = 0;
                let mut gone_bytes = 0;
                entries.retain(|e| {
                    if e.ts < horizon {
                        gone_count += 1;
                        gone_bytes += e.bytes;
                        false
                    } else {
                        true
                    }
                });
                self.count -= gone_count;
                self.bytes -= gone_bytes;
                if let Some(index) = self.index.as_mut() {
                    // the entries gone are those dated before the horizon: a prefix of each
                    // of the type's slots
                    for &(slot, _, _) in plan.slots.get(&a.type_id).map_or(&[][..], |v| &v[..]) {
                        if let Some(hits) = index.hits.get_mut(&slot) {
                            let cut = hits.partition_point(|d| *d < horizon);
                            hits.drain(..cut);
                        }
                    }
                }
                match entries.iter().map(|e| e.ts).min() {
                    Some(m) => *earliest = m,
                    None => {
                        self.min_ts.remove(&a.type_id);
                    }
                }
            }
        }
        if a.type_id == NEW_LEAD || a.type_id == CHANGE_DATA_VALUE {
            for (name, value) in &a.fields {
                let key = fold(py, name).into_owned();
                match value {
                    Some(v) if !v.is_empty() => {
                        self.fields.insert(key, v.clone());
                    }
                    _ => {
                        self.fields.shift_remove(&key);
                    }
                }
            }
        }
    }

    /// Whether the lead's index (if any) is what `build_index` makes from its history now:
    /// the incremental upkeep (appends, retention) checked against a rebuild (tests).
    pub fn index_is_fresh(&self, py: Python<'_>, plan: &Plan) -> bool {
        let Some(index) = &self.index else { return true };
        let mut copy = Lead { history: BTreeMap::new(), ..Default::default() };
        copy.history = self
            .history
            .iter()
            .map(|(t, es)| {
                let entries = es
                    .iter()
                    .map(|e| Entry { ts: e.ts, primary: e.primary.clone(), attrs: e.attrs.clone(), bytes: e.bytes, seq: e.seq })
                    .collect();
                (*t, entries)
            })
            .collect();
        copy.build_index(py, plan);
        let fresh = copy.index.expect("built");
        let nonempty = |m: &crate::value::Map<usize, Vec<i64>>| -> Vec<(usize, Vec<i64>)> {
            let mut v: Vec<_> = m.iter().filter(|(_, d)| !d.is_empty()).map(|(s, d)| (*s, d.clone())).collect();
            v.sort();
            v
        };
        let stabs = |m: &crate::value::Map<usize, Intervals>| -> Vec<(usize, (Vec<i64>, Vec<i64>))> {
            let mut v: Vec<_> = m.iter().map(|(s, i)| (*s, i.bounds())).filter(|(_, b)| !b.0.is_empty()).collect();
            v.sort();
            v
        };
        index.generation == fresh.generation
            && nonempty(&index.hits) == nonempty(&fresh.hits)
            && stabs(&index.stabs) == stabs(&fresh.stabs)
            && index.stabs.values().all(Intervals::check)
            // an odd entry noted, never missed (one pruned since may leave it noted: the
            // filter scans until the index is rebuilt)
            && fresh.stabs.iter().all(|(s, f)| !f.odd || index.stabs.get(s).is_some_and(|i| i.odd))
    }

    /// The index of the whole history for `plan` (`Plan.history_index`).
    fn build_index(&mut self, py: Python<'_>, plan: &Plan) {
        let mut hits = crate::value::Map::default();
        let mut stabs = crate::value::Map::default();
        for (type_id, slots) in &plan.slots {
            let Some(entries) = self.history.get(type_id) else { continue };
            for &(slot, c, l) in slots {
                if slot_stab(plan, c, l).is_some() {
                    let mut odd = false;
                    let held: Vec<(i64, i64)> = entries
                        .iter()
                        .filter_map(|e| match slot_entry(py, plan, (slot, c, l), e.ts, e.primary.as_ref(), &e.attrs) {
                            SlotEntry::Interval(start, end) => Some((start, end)),
                            SlotEntry::Odd => {
                                odd = true;
                                None
                            }
                            _ => None,
                        })
                        .collect();
                    let mut built = Intervals::new(&held);
                    built.odd = odd;
                    stabs.insert(slot, built);
                    continue;
                }
                let checks = slot_checks(plan, c, l);
                let mut dates: Vec<i64> = entries
                    .iter()
                    .filter(|e| matches(py, checks, e.primary.as_ref(), &e.attrs, e.ts))
                    .map(|e| e.ts)
                    .collect();
                dates.sort_unstable();
                hits.insert(slot, dates);
            }
        }
        self.index = Some(Box::new(Index { generation: plan.generation, hits, stabs }));
    }

    /// `bounds.enforce` after an activity.
    pub fn enforce(&mut self, py: Python<'_>, plan: &Plan, limits: &Limits, fields_changed: bool) {
        if self.seen.len() > limits.max_seen {
            let drop = self.seen.len() - target(limits.max_seen);
            self.seen.drain(..drop);
        }
        if fields_changed && !self.fields.is_empty() {
            let mut chars: usize = self.fields.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum();
            while !self.fields.is_empty() && (self.fields.len() > limits.max_fields || chars > limits.max_fields_chars) {
                let (k, v) = self.fields.pop().expect("not empty");
                chars -= k.chars().count() + v.chars().count();
            }
        }
        if self.count > limits.max_history || self.bytes > limits.max_history_bytes {
            self.trim(py, plan, target(limits.max_history), target(limits.max_history_bytes));
        }
    }

    /// `bounds._trim_history`: the oldest entries by (date, type id, position) go.
    fn trim(&mut self, py: Python<'_>, plan: &Plan, max_entries: usize, max_bytes: usize) {
        if self.index.as_ref().is_some_and(|i| i.generation != plan.generation) {
            self.index = None; // rebuilt when next needed
        }
        let mut order: Vec<(i64, i64, usize, usize)> = Vec::with_capacity(self.count);
        for (type_id, entries) in &self.history {
            for (i, e) in entries.iter().enumerate() {
                order.push((e.ts, *type_id, i, e.bytes));
            }
        }
        order.sort_unstable();
        let mut left = order.len();
        let mut bytes: usize = order.iter().map(|o| o.3).sum();
        let mut dropped: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (_, type_id, i, size) in order {
            if left <= max_entries && bytes <= max_bytes {
                break;
            }
            dropped.entry(type_id).or_default().push(i);
            left -= 1;
            bytes -= size;
        }
        for (type_id, mut indexes) in dropped {
            indexes.sort_unstable();
            let entries = self.history.get_mut(&type_id).expect("a type of the history");
            if let Some(index) = self.index.as_mut() {
                // the dropped entries' dates go from the slots that accepted them
                for &(slot, c, l) in plan.slots.get(&type_id).map_or(&[][..], |v| &v[..]) {
                    if slot_stab(plan, c, l).is_some() {
                        // the intervals among them
                        if let Some(held) = index.stabs.get_mut(&slot) {
                            for &i in &indexes {
                                let e = &entries[i];
                                if let SlotEntry::Interval(start, end) = slot_entry(py, plan, (slot, c, l), e.ts, e.primary.as_ref(), &e.attrs) {
                                    held.remove(start, end);
                                }
                            }
                        }
                        continue;
                    }
                    let checks = slot_checks(plan, c, l);
                    let Some(hits) = index.hits.get_mut(&slot) else { continue };
                    let mut gone: Vec<i64> = indexes
                        .iter()
                        .map(|&i| &entries[i])
                        .filter(|e| matches(py, checks, e.primary.as_ref(), &e.attrs, e.ts))
                        .map(|e| e.ts)
                        .collect();
                    gone.sort_unstable();
                    // both sorted: one pass takes each gone date out once
                    let mut k = 0;
                    hits.retain(|d| {
                        while k < gone.len() && gone[k] < *d {
                            k += 1;
                        }
                        if k < gone.len() && gone[k] == *d {
                            k += 1;
                            false
                        } else {
                            true
                        }
                    });
                }
            }
            let mut n = 0;
            let mut k = 0;
            entries.retain(|_| {
                let keep = !(k < indexes.len() && indexes[k] == n);
                if !keep {
                    k += 1;
                }
                n += 1;
                keep
            });
        }
        self.recount();
        debug_assert!(self.count == left && self.bytes == bytes);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.bytes + self.seen.len() * 48);
        out.extend_from_slice(b"{\"v\":3,\"h\":{");
        for (i, (type_id, entries)) in self.history.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            json::write_int(&mut out, *type_id);
            out.extend_from_slice(b"\":[");
            for (j, e) in entries.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                json::write_entry(&mut out, e.ts, e.primary.as_ref(), &e.attrs);
            }
            out.push(b']');
        }
        out.extend_from_slice(b"},\"f\":");
        crate::stored::write_text_map(&mut out, &self.fields);
        out.extend_from_slice(b",\"r\":");
        crate::stored::write_runs(&mut out, &self.runs);
        out.extend_from_slice(b",\"s\":{");
        for (i, (k, s)) in self.seen.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::stored::write_seen(&mut out, k, s);
        }
        out.extend_from_slice(b"},\"m\":");
        match self.max_ts {
            Some(m) => json::write_int(&mut out, m),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        out
    }
}

fn target(bound: usize) -> usize {
    bound - bound / 16
}

/// `Engine.process` on one lead's state (then the caller enforces the bounds).
pub fn process(py: Python<'_>, plan: &Plan, limits: &Limits, lead: &mut Lead, a: &Activity, now_us: i64) -> Outcome {
    let known = match lead.seen.get(&a.id) {
        // Saturating: `at` is a stored state's (any 64-bit integer), and a difference beyond
        // 64 bits compares to the horizon as Python's integer does (wrapped, it would not).
        Some(s) if now_us.saturating_sub(s.at) <= limits.dedup_horizon_us => {
            if s.position != a.position {
                return Outcome::Duplicate;
            }
            let mut events = Vec::with_capacity(s.fired.len());
            let fields = s.carried.as_deref().unwrap_or(&lead.fields);
            for id in &s.fired {
                let campaign = plan.by_id.get(id).map(|&i| &plan.campaigns[i]);
                events.push(Event {
                    campaign_id: *id,
                    campaign_name: campaign.map(|c| c.name.clone()).unwrap_or_default(),
                    trigger: campaign.and_then(|c| matching_trigger(py, c, a)).unwrap_or("").to_owned(),
                    lead_fields: campaign.and_then(|c| carried_fields(&c.carries, fields)),
                });
            }
            return Outcome::Redelivered(events);
        }
        Some(_) => true,
        None => false,
    };
    lead.apply(py, plan, a);
    let indexed = match limits.index_from {
        None => false,
        Some(n) => lead.index.is_some() || lead.history.get(&a.type_id).is_some_and(|e| e.len() >= n),
    };
    if !indexed {
        lead.index = None;
    } else if lead.index.as_ref().is_none_or(|i| i.generation != plan.generation) {
        lead.build_index(py, plan);
    }
    let mut events = Vec::new();
    let mut fired = Vec::new();
    let mut carried: Option<IMap<String, String>> = None;
    if let Some(candidates) = plan.by_type.get(&a.type_id) {
        for &i in candidates {
            let campaign = &plan.campaigns[i];
            let Some(trigger) = matching_trigger(py, campaign, a) else { continue };
            if campaign.qualification != Qualification::EveryTime {
                if let Some(&last) = lead.runs.get(&campaign.id) {
                    // Saturating, as above: `last` is a stored state's.
                    if campaign.qualification == Qualification::Once || a.ts.saturating_sub(last) < campaign.period_us {
                        continue;
                    }
                }
            }
            if let Some(logic) = &campaign.logic {
                if !logic_holds(py, plan, logic, &campaign.leaves, lead, a.ts) {
                    continue;
                }
            }
            lead.runs.insert(campaign.id, a.ts);
            fired.push(campaign.id);
            let lead_fields = carried_fields(&campaign.carries, &lead.fields);
            if let (Some(pairs), Some(true)) = (&lead_fields, campaign.carries.as_ref().map(|c| !c.is_empty())) {
                let map = carried.get_or_insert_with(IMap::default);
                for (k, v) in pairs {
                    map.insert(k.clone(), v.clone());
                }
            }
            events.push(Event {
                campaign_id: campaign.id,
                campaign_name: campaign.name.clone(),
                trigger: trigger.to_owned(),
                lead_fields,
            });
        }
    }
    if known {
        lead.seen.shift_remove(&a.id);
    }
    lead.seen.insert(
        a.id.clone(),
        Seen { at: now_us, position: a.position.clone(), fired, carried: carried.map(Box::new), seq: crate::stored::next_seq() },
    );
    if lead.seen.len() % EXPIRE_EVERY == 0 {
        let limit = now_us - limits.dedup_horizon_us;
        let stale = lead.seen.values().take_while(|s| s.at < limit).count();
        lead.seen.drain(..stale);
    }
    Outcome::Accepted(events)
}
