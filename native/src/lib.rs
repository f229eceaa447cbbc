//! `streams_native`: the engine's core per batch, natively (issue 8). Python hands it a
//! plan description once (`streams/engine/native.py`) and each batch's records (bytes and
//! positions); it keeps the lead states and returns the events as the pipeline's dicts,
//! the dead letters the Python decoder gave for the records it left to it, and counters.

mod cold;
mod decode;
mod engine;
mod json;
mod plan;
mod stored;
mod value;

use decode::Activity;
use engine::{Lead, Limits, Outcome};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};
use sha1::{Digest, Sha1};
use value::V;

const EVENT_NAMESPACE: [u8; 16] = [
    0x6f, 0x1c, 0x2a, 0x8e, 0x3b, 0x7d, 0x5c, 0x4e, 0x9a, 0x10, 0x2d, 0x8f, 0x4b, 0x6e, 0x1c, 0x37,
];

/// `events.event_id`: uuid5(EVENT_NAMESPACE, "c/l/a").
fn event_id(campaign_id: i64, lead_id: i64, activity_id: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(EVENT_NAMESPACE);
    let mut buffer = itoa::Buffer::new();
    sha.update(buffer.format(campaign_id).as_bytes());
    sha.update(b"/");
    sha.update(buffer.format(lead_id).as_bytes());
    sha.update(b"/");
    sha.update(activity_id.as_bytes());
    let mut d: [u8; 20] = sha.finalize().into();
    d[6] = (d[6] & 0x0f) | 0x50;
    d[8] = (d[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (i, b) in d[..16].iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        value::push_hex(&mut id, *b);
    }
    id
}

fn value(v: &Bound<'_, PyAny>) -> PyResult<V> {
    if let Ok(b) = v.downcast::<PyBool>() {
        return Ok(V::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(V::Int(v.extract()?));
    }
    if let Ok(f) = v.downcast::<PyFloat>() {
        return Ok(V::Float(f.value()));
    }
    if let Ok(s) = v.downcast::<PyString>() {
        return Ok(V::Str(s.to_str()?.into()));
    }
    if let Ok(list) = v.downcast::<PyList>() {
        return Ok(V::List(std::sync::Arc::new(list.iter().map(|x| x.extract::<String>()).collect::<PyResult<_>>()?)));
    }
    Err(PyTypeError::new_err(format!("a value the native engine cannot hold: {v}")))
}

/// An `Activity` of the Python decoder (a record the native fast path left to it).
fn activity(a: &Bound<'_, PyAny>) -> PyResult<Activity> {
    let primary = a.getattr("primary")?;
    let attributes = a.getattr("attributes")?;
    let attributes = attributes.downcast::<PyDict>()?;
    let mut attrs = Vec::with_capacity(attributes.len());
    for (k, v) in attributes.iter() {
        attrs.push((k.extract::<String>()?.into(), value(&v)?));
    }
    let mut fields = Vec::new();
    for pair in a.getattr("fields")?.downcast::<PyList>()?.iter() {
        fields.push(pair.extract::<(String, Option<String>)>()?);
    }
    Ok(Activity {
        id: a.getattr("id")?.extract()?,
        lead_id: a.getattr("lead_id")?.extract()?,
        type_id: a.getattr("type_id")?.extract()?,
        ts: a.getattr("ts")?.extract()?,
        primary: if primary.is_none() { None } else { Some(value(&primary)?) },
        attrs: attrs.into(),
        fields,
        position: a.getattr("position")?.extract()?,
    })
}

type LimitsTuple = (i64, usize, usize, usize, usize, usize, i64);

fn limits_of(l: LimitsTuple) -> Limits {
    Limits {
        future_horizon_us: l.0,
        max_history: l.1,
        max_history_bytes: l.2,
        max_seen: l.3,
        max_fields: l.4,
        max_fields_chars: l.5,
        dedup_horizon_us: l.6,
        index_from: None,
    }
}

#[pyclass(module = "streams_native")]
struct Core {
    plan: plan::Plan,
    limits: Limits,
    leads: value::Map<i64, Lead>,
    batch: u64,
    /// What the store holds for each lead read through `put_state` (`stored.rs`).
    checkpoints: value::Map<i64, stored::Checkpoint>,
    /// TEST ONLY: per site of `SEAMS`, how many calls of it are left until the one that
    /// panics (`test_only_panic_in`; 0: none).
    seams: [u64; SEAMS.len()],
}

/// TEST ONLY: the places where `Core.test_only_panic_in` makes the core panic, each named
/// for the method it is in: `decode` once the batch's records are decoded; `read_stored`
/// and `put_state` once the lead is held (the store not told); `evaluate` once the batch's
/// first activity is evaluated, its lead half-changed; `events` once an event is built
/// (counting events, not calls); `payloads` once the first lead's payload is made; `commit` once the first
/// lead's checkpoint moved; `evict` once the first lead is evicted (each at once when there
/// is no first).
const SEAMS: [&str; 8] = ["decode", "read_stored", "put_state", "evaluate", "events", "payloads", "commit", "evict"];
const DECODE: usize = 0;
const READ_STORED: usize = 1;
const PUT_STATE: usize = 2;
const EVALUATE: usize = 3;
const EVENTS: usize = 4;
const PAYLOADS: usize = 5;
const COMMIT: usize = 6;
const EVICT: usize = 7;

/// TEST ONLY: the panic of an armed seam (`Core.test_only_panic_in`).
fn seam_panic(site: usize) -> ! {
    panic!("test-only fault injection: a panic in {} (test_only_panic_in)", SEAMS[site]);
}

/// The activities of one batch `Core.decode` read, for `Core.evaluate`.
#[pyclass(module = "streams_native", unsendable)]
struct Decoded {
    activities: Vec<Activity>,
}

/// A record whose `seen` entry marks a fault (`leadstate`, `pipeline._Refault`): the
/// Python engine's isolation decides what it is.
fn refault(lead: &Lead, a: &Activity, now_us: i64, horizon_us: i64) -> bool {
    lead.seen.get(&a.id).is_some_and(|s| {
        now_us.saturating_sub(s.at) <= horizon_us && s.carried.as_ref().is_some_and(|c| c.contains_key(""))
    })
}

fn py_value<'py>(py: Python<'py>, v: &V) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        V::Str(s) => PyString::new(py, s).into_any(),
        V::Int(n) => n.into_pyobject(py)?.into_any(),
        V::Float(f) => PyFloat::new(py, *f).into_any(),
        V::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        V::List(items) => PyList::new(py, items.iter())?.into_any(),
    })
}

/// `datatypes.display_value`: dates as text.
fn display<'py>(py: Python<'py>, dt: Option<plan::Dt>, v: &V) -> PyResult<Bound<'py, PyAny>> {
    match (dt, v) {
        (Some(plan::Dt::Date), V::Int(us)) => Ok(PyString::new(py, &value::format_us(*us)[..10]).into_any()),
        (Some(plan::Dt::Datetime), V::Int(us)) => Ok(PyString::new(py, &value::format_us(*us)).into_any()),
        _ => py_value(py, v),
    }
}

impl Core {
    /// TEST ONLY: one call of the seam `site`; whether it is the one that panics (the caller
    /// then panics at its place: `seam_panic`).
    fn seam(&mut self, site: usize) -> bool {
        let left = &mut self.seams[site];
        let panics = *left == 1;
        *left = left.saturating_sub(1);
        panics
    }

    /// `events.action_members`, added to the event of a campaign with actions.
    fn action_members(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyDict>,
        a: &Activity,
        lead_fields: Vec<(String, String)>,
    ) -> PyResult<()> {
        let spec = self.plan.event_types.get(&a.type_id);
        match &a.primary {
            None => {}
            Some(V::Str(s)) if s.is_empty() => {}
            Some(p @ V::List(_)) => event.set_item("activityPrimary", py_value(py, p)?)?,
            Some(p) => event.set_item("activityPrimary", display(py, spec.map(|t| t.primary), p)?)?,
        }
        let shown = PyDict::new(py);
        for (k, v) in a.attrs.iter() {
            let dt = spec.and_then(|t| t.attrs.get(&**k).copied());
            shown.set_item(&**k, if spec.is_some() && dt.is_some() { display(py, dt, v)? } else { py_value(py, v)? })?;
        }
        event.set_item("activityAttributes", shown)?;
        let fields = PyDict::new(py);
        for (k, v) in lead_fields {
            fields.set_item(k, v)?;
        }
        event.set_item("leadFields", fields)
    }
}

#[pymethods]
impl Core {
    /// `limits`: (future horizon µs, max history, max history bytes, max seen, max fields,
    /// max field characters, dedup horizon µs).
    /// `parse`: `(kind, text) -> number | None` for field filters that read a number (0) or
    /// a moment (1).
    #[new]
    fn new(plan: &[u8], limits: LimitsTuple, parse: Py<PyAny>) -> PyResult<Self> {
        let mut plan = plan::parse(plan).map_err(PyValueError::new_err)?;
        plan.parse = Some(parse);
        Ok(Core {
            plan,
            limits: limits_of(limits),
            leads: value::Map::default(),
            batch: 0,
            checkpoints: value::Map::default(),
            seams: [0; SEAMS.len()],
        })
    }

    /// New limits (a new `Processor` on the same states); see `new`.
    fn set_limits(&mut self, limits: LimitsTuple) {
        let index_from = self.limits.index_from;
        self.limits = limits_of(limits);
        self.limits.index_from = index_from;
    }

    /// `Engine.index_from`: entries of one type from which a lead's history is indexed
    /// (None: never; the decisions are the same, only the cost differs).
    #[pyo3(signature = (index_from))]
    fn set_index_from(&mut self, index_from: Option<usize>) {
        self.limits.index_from = index_from;
    }

    /// A new plan (a hot reload); the lead states stay.
    fn set_plan(&mut self, plan: &[u8]) -> PyResult<()> {
        let mut fresh = plan::parse(plan).map_err(PyValueError::new_err)?;
        fresh.parse = self.plan.parse.take();
        fresh.generation = self.plan.generation + 1;
        self.plan = fresh;
        Ok(())
    }

    /// One batch: `records` (objects with value, topic, partition, offset), `decode` the
    /// Python decoder for a record the fast path leaves to it (returns an `Activity`, or a
    /// dead letter dict). Returns (events, dead letters, accepted, duplicates, redelivered).
    /// A lead not held yet starts empty (the `MemoryStore` path).
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
        now_us: i64,
        decode: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>, usize, usize, usize)> {
        let (_, letters, decoded) = self.decode(py, records, now_us, decode)?;
        let (events, accepted, duplicates, redelivered) = self.evaluate(py, &decoded, now_us, true)?;
        Ok((events, letters, accepted, duplicates, redelivered))
    }

    /// Step 1 of a batch (see `process`). Returns (the leads of the activities, first seen
    /// first; the dead letters; the activities, for `evaluate`).
    fn decode<'py>(
        &mut self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
        now_us: i64,
        decode: &Bound<'py, PyAny>,
    ) -> PyResult<(Vec<i64>, Bound<'py, PyList>, Bound<'py, Decoded>)> {
        let panics = self.seam(DECODE);
        let letters = PyList::empty(py);
        let mut activities = Vec::with_capacity(records.len().unwrap_or(0));
        for record in records.try_iter()? {
            let record = record?;
            let raw = record.getattr(pyo3::intern!(py, "value"))?;
            let topic = record.getattr(pyo3::intern!(py, "topic"))?;
            let topic = topic.downcast::<PyString>()?.to_str()?;
            let mut position = String::with_capacity(topic.len() + 24);
            let mut buffer = itoa::Buffer::new();
            position.push_str(topic);
            position.push('/');
            position.push_str(buffer.format(record.getattr(pyo3::intern!(py, "partition"))?.extract::<i64>()?));
            position.push('/');
            position.push_str(buffer.format(record.getattr(pyo3::intern!(py, "offset"))?.extract::<i64>()?));
            let fast = match raw.downcast::<PyBytes>() {
                Ok(bytes) => decode::decode(&self.plan, bytes.as_bytes(), &position, now_us, self.limits.future_horizon_us),
                Err(_) => None,
            };
            match fast {
                Some(a) => activities.push(a),
                None => {
                    let decoded = decode.call1((&record,))?;
                    if decoded.is_instance_of::<PyDict>() {
                        letters.append(decoded)?;
                    } else {
                        activities.push(activity(&decoded)?);
                    }
                }
            }
        }
        if panics {
            seam_panic(DECODE);
        }
        let mut leads = Vec::new();
        let mut known = value::Set::default();
        for a in &activities {
            if known.insert(a.lead_id) {
                leads.push(a.lead_id);
            }
        }
        Ok((leads, letters, Bound::new(py, Decoded { activities })?))
    }

    /// Steps 2-3 of the batch `decode` read: (events, accepted, duplicates, redelivered).
    /// `create` false: every lead must be held already (`put_state`, the Redis store's
    /// path). An error (a Python callback raised, a record marked as faulted) leaves the
    /// batch's leads half-done: the caller evicts them.
    fn evaluate<'py>(
        &mut self,
        py: Python<'py>,
        decoded: &Bound<'py, Decoded>,
        now_us: i64,
        create: bool,
    ) -> PyResult<(Bound<'py, PyList>, usize, usize, usize)> {
        let activities = std::mem::take(&mut decoded.borrow_mut().activities);
        let mut panics = self.seam(EVALUATE);
        self.batch += 1;
        stored::take_fault();
        let events = PyList::empty(py);
        let (mut accepted, mut duplicates, mut redelivered) = (0, 0, 0);
        let future = now_us.saturating_add(self.limits.future_horizon_us);
        let rules_version = PyString::new(py, &self.plan.rules_version);
        for a in &activities {
            let lead = if create {
                self.leads.entry(a.lead_id).or_default()
            } else {
                self.leads
                    .get_mut(&a.lead_id)
                    .ok_or_else(|| PyValueError::new_err(format!("lead {} is not held by the core", a.lead_id)))?
            };
            if lead.batch != self.batch {
                lead.batch = self.batch;
                lead.drop_future(future);
            }
            if refault(lead, a, now_us, self.limits.dedup_horizon_us) {
                return Err(PyValueError::new_err(format!("{}: marked as faulted", a.position)));
            }
            let outcome = engine::process(py, &self.plan, &self.limits, lead, a, now_us);
            lead.enforce(py, &self.plan, &self.limits, a.type_id == decode::NEW_LEAD || a.type_id == decode::CHANGE_DATA_VALUE);
            if let Some(err) = stored::take_fault() {
                return Err(err);
            }
            if std::mem::take(&mut panics) {
                seam_panic(EVALUATE);
            }
            let fired = match outcome {
                Outcome::Duplicate => {
                    duplicates += 1;
                    continue;
                }
                Outcome::Redelivered(e) => {
                    redelivered += 1;
                    e
                }
                Outcome::Accepted(e) => {
                    accepted += 1;
                    e
                }
            };
            if fired.is_empty() {
                continue;
            }
            let date = PyString::new(py, &value::format_us(a.ts));
            let activity_id = PyString::new(py, &a.id);
            for e in fired {
                let event = PyDict::new(py);
                event.set_item(pyo3::intern!(py, "eventId"), event_id(e.campaign_id, a.lead_id, &a.id))?;
                event.set_item(pyo3::intern!(py, "campaignId"), e.campaign_id)?;
                event.set_item(pyo3::intern!(py, "campaignName"), e.campaign_name)?;
                event.set_item(pyo3::intern!(py, "leadId"), a.lead_id)?;
                event.set_item(pyo3::intern!(py, "activityId"), &activity_id)?;
                event.set_item(pyo3::intern!(py, "activityTypeId"), a.type_id)?;
                event.set_item(pyo3::intern!(py, "activityDate"), &date)?;
                event.set_item(pyo3::intern!(py, "trigger"), e.trigger)?;
                event.set_item(pyo3::intern!(py, "rulesVersion"), &rules_version)?;
                if let Some(lead_fields) = e.lead_fields {
                    self.action_members(py, &event, a, lead_fields)?;
                }
                events.append(event)?;
                if self.seam(EVENTS) {
                    seam_panic(EVENTS);
                }
            }
        }
        if panics {
            seam_panic(EVALUATE);
        }
        Ok((events, accepted, duplicates, redelivered))
    }

    /// Holds `lead_id`'s state read from `raw` (`codec.encode_state`'s bytes), with what the
    /// store holds (`journal.Stored`'s sizes: `snapshot_bytes` 0 makes its next save a
    /// snapshot). Replaces a state held before. Read by the one reader of stored states
    /// (`cold.rs`, a snapshot without journal): a ValueError for what it declines, which
    /// in `encode_state`'s bytes is a value the core does not hold: the message names it and
    /// where it is (`cold::read_snapshot`, bounded).
    fn put_state(&mut self, lead_id: i64, raw: &[u8], snapshot_bytes: usize, journal_bytes: usize) -> PyResult<()> {
        let lead = cold::read_snapshot(raw)
            .map_err(|why| PyValueError::new_err(format!("lead {lead_id}: a state the core cannot hold: {why}")))?;
        self.checkpoints.insert(lead_id, stored::Checkpoint::of(&lead, snapshot_bytes, journal_bytes));
        self.leads.insert(lead_id, lead);
        if self.seam(PUT_STATE) {
            seam_panic(PUT_STATE);
        }
        Ok(())
    }

    /// Holds `lead_id`'s state read natively from what Redis holds (`cold.rs`): `raw` its
    /// snapshot (`HMGET state`), `journal` its deltas (`LRANGE`). True: held, with what is
    /// stored (the snapshot's and the journal's sizes), replacing a state held before;
    /// False: declined (anything but a well-formed v3 snapshot and deltas the core holds),
    /// nothing changed: the store reads the lead in Python, which decides.
    fn read_stored(&mut self, lead_id: i64, raw: &Bound<'_, PyAny>, journal: &Bound<'_, PyAny>) -> bool {
        let Ok(raw) = raw.downcast::<PyBytes>() else { return false };
        let Ok(journal) = journal.downcast::<PyList>() else { return false };
        let mut deltas: Vec<Bound<'_, PyBytes>> = Vec::with_capacity(journal.len());
        for d in journal.iter() {
            match d.downcast_into::<PyBytes>() {
                Ok(b) => deltas.push(b),
                Err(_) => return false,
            }
        }
        let slices: Vec<&[u8]> = deltas.iter().map(|d| d.as_bytes()).collect();
        let Some(lead) = cold::read(raw.as_bytes(), &slices) else { return false };
        let journal_bytes = slices.iter().map(|d| d.len()).sum();
        self.checkpoints.insert(lead_id, stored::Checkpoint::of(&lead, raw.as_bytes().len(), journal_bytes));
        self.leads.insert(lead_id, lead);
        if self.seam(READ_STORED) {
            seam_panic(READ_STORED);
        }
        true
    }

    /// Per lead, what `journal.write` would store: (lead id, is a delta, bytes). The
    /// checkpoints stay until `commit`.
    fn payloads<'py>(&mut self, py: Python<'py>, lead_ids: Vec<i64>) -> PyResult<Vec<(i64, bool, Bound<'py, PyBytes>)>> {
        let panics = self.seam(PAYLOADS);
        let mut out = Vec::with_capacity(lead_ids.len());
        for lead_id in lead_ids {
            let lead = self
                .leads
                .get(&lead_id)
                .ok_or_else(|| PyValueError::new_err(format!("lead {lead_id} is not held by the core")))?;
            let (is_delta, bytes) = stored::payload(lead, self.checkpoints.get_mut(&lead_id));
            out.push((lead_id, is_delta, PyBytes::new(py, &bytes)));
            if panics {
                seam_panic(PAYLOADS);
            }
        }
        if panics {
            seam_panic(PAYLOADS);
        }
        Ok(out)
    }

    /// The payloads `payloads` handed out for these leads are stored: their checkpoints
    /// move to the states held now. A lead no longer held is skipped.
    fn commit(&mut self, lead_ids: Vec<i64>) {
        let panics = self.seam(COMMIT);
        for (n, lead_id) in lead_ids.into_iter().enumerate() {
            if panics && n == 1 {
                seam_panic(COMMIT);
            }
            if !self.leads.contains_key(&lead_id) {
                continue;
            }
            let Some(ck) = self.checkpoints.get_mut(&lead_id) else { continue };
            if !ck.commit() {
                self.checkpoints.remove(&lead_id);
                self.leads.remove(&lead_id);
            }
        }
        if panics {
            seam_panic(COMMIT);
        }
    }

    /// TEST ONLY (fault injection; no production path calls it, and nothing a record or a
    /// stored state holds reaches it): the `after`-th call from now (1: the next) of the
    /// seam `site` (one of `SEAMS`, where each panics) panics: a Rust panic, which PyO3
    /// raises as `PanicException` (`native.core_fault`). 0 disarms; each site is armed on
    /// its own. A ValueError for a site not in `SEAMS`.
    fn test_only_panic_in(&mut self, site: &str, after: u64) -> PyResult<()> {
        let at = SEAMS
            .iter()
            .position(|s| *s == site)
            .ok_or_else(|| PyValueError::new_err(format!("no seam {site:?}: one of {SEAMS:?}")))?;
        self.seams[at] = after;
        Ok(())
    }

    /// Forgets these leads (their states and checkpoints).
    fn evict(&mut self, lead_ids: Vec<i64>) {
        let panics = self.seam(EVICT);
        for lead_id in lead_ids {
            self.leads.remove(&lead_id);
            self.checkpoints.remove(&lead_id);
            if panics {
                seam_panic(EVICT);
            }
        }
        if panics {
            seam_panic(EVICT);
        }
    }

    /// Forgets every lead.
    fn clear(&mut self) {
        self.leads.clear();
        self.checkpoints.clear();
    }

    fn __contains__(&self, lead_id: i64) -> bool {
        self.leads.contains_key(&lead_id)
    }

    /// The lead's state as `codec.encode_state` writes it, or None (no state).
    fn encode_state<'py>(&self, py: Python<'py>, lead_id: i64) -> Option<Bound<'py, PyBytes>> {
        self.leads.get(&lead_id).map(|lead| PyBytes::new(py, &lead.encode()))
    }

    /// Whether the lead's history index matches a rebuild from its history (tests).
    fn index_is_fresh(&self, py: Python<'_>, lead_id: i64) -> bool {
        self.leads.get(&lead_id).is_none_or(|lead| lead.index_is_fresh(py, &self.plan))
    }

    /// Whether the lead has a history index now (tests).
    fn indexed(&self, lead_id: i64) -> bool {
        self.leads.get(&lead_id).is_some_and(|lead| lead.index.is_some())
    }

    fn lead_ids(&self) -> Vec<i64> {
        self.leads.keys().copied().collect()
    }

    fn __len__(&self) -> usize {
        self.leads.len()
    }
}

/// The core's JSON text of a value (str, int, float, bool, list of str), for the tests
/// that hold it to orjson's.
#[pyfunction]
fn dumps(v: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = Vec::new();
    json::write_value(&mut out, &value(v)?);
    Ok(out)
}

/// `datatypes.format_us`, natively (for the tests).
#[pyfunction]
fn format_us(us: i64) -> String {
    value::format_us(us)
}

/// `events.event_id`, natively (for the tests).
#[pyfunction]
#[pyo3(name = "event_id")]
fn py_event_id(campaign_id: i64, lead_id: i64, activity_id: &str) -> String {
    event_id(campaign_id, lead_id, activity_id)
}

/// `activity._content_hash` of a Python `Activity`'s members, natively (for the tests).
#[pyfunction]
fn content_hash(a: &Bound<'_, PyAny>) -> PyResult<String> {
    let a = activity(a)?;
    Ok(decode::content_hash(a.lead_id, a.type_id, a.ts, a.primary.as_ref(), &a.attrs, &a.fields))
}

#[pymodule]
fn streams_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Core>()?;
    m.add_class::<Decoded>()?;
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    m.add_function(wrap_pyfunction!(format_us, m)?)?;
    m.add_function(wrap_pyfunction!(py_event_id, m)?)?;
    m.add_function(wrap_pyfunction!(content_hash, m)?)?;
    m.add("ABI", 4)?;
    Ok(())
}
