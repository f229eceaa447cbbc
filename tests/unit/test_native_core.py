"""The native core's pieces that must write what Python writes, byte for byte: JSON text
(orjson's: floats, escapes; the stored state and the history sizes use it), dates,
`eventId`s and content hashes. The differential test (test_compiled_engine.py) holds the
whole core to the pure engine; its streams hold few floats and odd texts, so these are
held here on generated values. And the core's life beneath `Processor`s sharing a store.

Skipped when there is no fresh native build (no cargo); under `CI=true` that fails.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.engine import generate, write_rules
from streams import ENGINE
from streams.engine.activity import Activity, _content_hash
from streams.engine.bounds import DEFAULT_LIMITS, Limits
from streams.engine.compiler import load_plan
from streams.engine.datatypes import MAX_US, MIN_US, datetime_to_us, format_us
from streams.engine.evaluator import Engine
from streams.engine.events import event_id
from streams.engine.leadstate import LeadState
from streams.engine.native import NativeLeads, Unsupported, describe_plan, load_module
from streams.engine.standard_types import MOBILE_ACTION_NAME_MAX
from streams.engine_select import ROOT, check_native
from streams.pipeline import Processor, Record
from streams.samples import sample_activities
from streams.state.codec import decode_state, encode_state
from streams.state.memory import MemoryStore
from tests.unit.test_history_index import NOW_US, load, record, write_index_rules

INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=30)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@pytest.fixture(scope="module")
def native() -> Any:
    path, reason, _ = check_native()
    if path is None:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"the native core cannot run: {reason}", pytrace=False)
        pytest.skip(f"the native core cannot run: {reason}")
    return load_module(path)


@settings(max_examples=3000, deadline=None)
@given(FLOATS | st.sampled_from([1e-5, 1.5e-5, 9.99e-6, 1e16, 9.999e15, 0.0, -0.0, 5e-324]))
def test_floats_are_written_as_orjson_writes_them(native: Any, value: float) -> None:
    assert native.dumps(value) == orjson.dumps(value)


@settings(max_examples=1000, deadline=None)
@given(TEXT | st.text(st.characters(max_codepoint=0x7F), max_size=10), INT64, st.booleans())
def test_texts_numbers_and_booleans_are_written_as_orjson_writes_them(
    native: Any, text: str, number: int, flag: bool
) -> None:
    for value in (text, number, flag, [text, text[:3]]):
        assert native.dumps(value) == orjson.dumps(value)


@settings(max_examples=1000, deadline=None)
@given(st.integers(MIN_US, MAX_US))
def test_dates_are_formatted_as_python_formats_them(native: Any, us: int) -> None:
    assert native.format_us(us) == format_us(us)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1), TEXT)
def test_event_ids_are_those_of_python(
    native: Any, campaign: int, lead: int, activity: str
) -> None:
    assert native.event_id(campaign, lead, activity) == event_id(campaign, lead, activity)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(1, 2**63 - 1),
    st.integers(1, 2**63 - 1),
    st.integers(MIN_US, MAX_US),
    st.none() | TEXT | INT64 | FLOATS | st.booleans() | st.lists(TEXT, max_size=3),
    st.dictionaries(TEXT, TEXT | INT64 | FLOATS | st.booleans(), max_size=4),
    st.lists(st.tuples(TEXT, st.none() | TEXT), max_size=3),
)
def test_content_hashes_are_those_of_python(
    native: Any,
    lead: int,
    type_id: int,
    ts: int,
    primary: Any,
    attributes: dict[str, Any],
    fields: list[tuple[str, str | None]],
) -> None:
    activity = Activity("", lead, type_id, ts, primary, attributes, fields, "t/0/0")
    expected = _content_hash(lead, type_id, ts, primary, attributes, fields)
    assert native.content_hash(activity) == expected


def _bench_stream(seed: int, count: int) -> tuple[Any, list[Record]]:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="native-")) / "rules"
    write_rules(root, rng)
    records = [Record(v, "bench", 0, i) for i, v in enumerate(generate(count, 40, rng))]
    return load_plan(root), records


def _encoded(store: MemoryStore) -> dict[int, bytes]:
    leads = store.leads
    if isinstance(leads, NativeLeads):
        return {lead: leads.encoded(lead) or b"" for lead in leads}
    return {lead: encode_state(state) for lead, state in leads.items()}


def _assert_the_core_answers_as_python(
    plan: Any, records: list[Record], batch: int, limits: Limits = DEFAULT_LIMITS
) -> None:
    """`records` through a `Processor` without the core and one with it, `batch` at a time
    at the same clock: the same events, dead letters and counters batch by batch, and the
    same stored bytes at the end."""
    now_us = datetime_to_us(datetime(2026, 9, 1, tzinfo=UTC))

    async def run(native_core: bool) -> tuple[list[Any], dict[int, bytes]]:
        store = MemoryStore()
        processor = Processor(plan, store, limits=limits, native=native_core)
        outcomes = []
        for i in range(0, len(records), batch):
            got = await processor.process(records[i : i + batch], now_us)
            outcomes.append(
                (got.events, got.dead_letters, got.accepted, got.duplicates, got.redelivered)
            )
        assert (processor.native is not None) == native_core
        return outcomes, _encoded(store)

    want = asyncio.run(run(False))
    got = asyncio.run(run(True))
    for n, (g, w) in enumerate(zip(got[0], want[0], strict=True)):
        assert g == w, f"batch {n}"
    assert got[1] == want[1]


@pytest.mark.parametrize("supported", [True, False])
def test_a_new_processor_on_the_same_store_goes_on_with_its_states(
    native: Any, monkeypatch: pytest.MonkeyPatch, supported: bool
) -> None:
    """The backtest's plan switches: a `Processor` built on the store of an earlier one
    takes over the core and its states; a plan the core does not support hands them to
    the Python engine. Either way the outcome is the pure engine's."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan, records = _bench_stream(3, 900)
    now_us = datetime_to_us(datetime(2026, 12, 1, tzinfo=UTC))

    async def run(stores: MemoryStore, python: bool) -> list[Any]:
        outcomes = []
        for i in range(0, len(records), 300):
            if i == 600 and not (supported or python):
                monkeypatch.setattr(
                    "streams.engine.native.describe_plan",
                    lambda *_: (_ for _ in ()).throw(Unsupported("test: not supported")),
                )
            processor = Processor(plan, stores, native=not python)
            got = await processor.process(records[i : i + 300], now_us)
            assert (processor.native is not None) == (not python and (supported or i < 600))
            outcomes.append((got.events, got.dead_letters, got.accepted, got.duplicates))
        return outcomes

    reference, switched = MemoryStore(), MemoryStore()
    want = asyncio.run(run(reference, True))
    assert asyncio.run(run(switched, False)) == want
    assert any(o[0] for o in want)
    assert _encoded(switched) == _encoded(reference)
    assert isinstance(switched.leads, NativeLeads) == supported


def test_a_duration_beyond_64_bits_runs_on_the_python_engine(tmp_path: Path) -> None:
    """Rule durations are unbounded (`parse_duration_us`); the core's dates are 64-bit: a
    window too long for it is `Unsupported`, never read wrong."""
    plan, _ = _bench_stream(5, 1)
    root = next(iter(plan.campaigns)).path
    text = Path(root).read_text().replace("window: 7 days", "window: 99999999999999 months")
    text = text.replace("window: 30 days", "window: 99999999999999 months")
    text = text.replace("window: 90 days", "window: 99999999999999 months")
    Path(root).write_text(text)
    huge = load_plan(Path(root).parent.parent)
    with pytest.raises(Unsupported, match="a duration of"):
        describe_plan(huge, huge.catalog)


KEYS_OF_A_RECORD = [
    "leadId",
    "activityDate",
    "activityTypeId",
    "primaryAttributeValue",
    "marketoGUID",
    "id",
    "fields",
    "attributes",
    "primaryAttributeValueId",
]


_PLANS: dict[str, tuple[Any, list[bytes]]] = {}


def _plan_and_values(kind: str) -> tuple[Any, list[bytes]]:
    if kind not in _PLANS:
        if kind == "sample":
            values = [orjson.dumps(a) for a in sample_activities(200, leads=20, seed=3)]
            _PLANS[kind] = (load_plan(ROOT / "rules"), values)
        else:
            plan, records = _bench_stream(11, 200)
            _PLANS[kind] = (plan, [r.value for r in records])
    return _PLANS[kind]


_DATES = st.sampled_from(
    [
        "2026-03-01T10:00:00Z",
        "2026-03-01T10:00:00+00:00",
        "2026-03-01T10:00:00+01:00",
        "2026-03-01T10:00:00.5Z",
        "2026-03-01t10:00:00z",
        "2026-02-29T10:00:00Z",
        "2024-02-29T10:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-03-01",
        "2026-13-01T00:00:00Z",
        "2026-03-01T24:00:00Z",
        "２０２６-03-01T10:00:00Z",
    ]
)
_VALUES = st.one_of(
    _DATES,
    st.sampled_from(["", " ", "12", "1e3", "true", "a@b", "@b", "a@b@c", "x" * 256]),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, -(2**63), 1.5, -0.0, 1e300, True, None]),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)
_FAST_PATH = st.one_of(
    st.tuples(st.just("member"), st.sampled_from(KEYS_OF_A_RECORD), _VALUES),
    st.tuples(st.just("value"), st.integers(0, 10), _VALUES),
    st.tuples(st.just("by name"), st.integers(0, 10)),
    st.tuples(st.just("text"), st.sampled_from(['"leadId":5,', '"nope":1,', '"leadId":1,'])),
    st.tuples(
        st.just("escape"),
    ),
    st.tuples(st.just("date"), st.integers(-1, 10), _DATES),
    st.tuples(st.just("date"), st.just(-1), _DATES),  # the activity's own date, more often
)


def _fast_path_mutation(value: bytes, mutation: tuple[Any, ...]) -> bytes:
    """Mutations aimed at the native decoder's choices (what it reads itself, what it
    leaves to Python): member values of every JSON type, attribute values, attributes by
    display name, repeated and unknown members, escaped text."""
    kind = mutation[0]
    if kind == "text":
        return value.replace(b"{", b"{" + mutation[1].encode(), 1)
    if kind == "escape":
        return value.replace(b'"2026', b'"\\u0032026', 1)
    record = orjson.loads(value)
    attributes = record.get("attributes") or []
    if kind == "date":  # the activity's date (-1), or an attribute's value
        if mutation[1] < 0 or not attributes:
            record["activityDate"] = mutation[2]
        else:
            attributes[mutation[1] % len(attributes)]["value"] = mutation[2]
    elif kind == "member":
        record[mutation[1]] = mutation[2]
    elif kind == "value" and attributes:
        attributes[mutation[1] % len(attributes)]["value"] = mutation[2]
    elif kind == "by name" and attributes:
        entry = attributes[mutation[1] % len(attributes)]
        entry["name"] = entry.pop("apiName", entry.get("name"))
    return orjson.dumps(record)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["sample", "bench"]),
    picks=st.lists(st.tuples(st.integers(0, 199), _FAST_PATH), max_size=30),
)
def test_the_native_core_answers_as_the_python_engine_on_hostile_records(
    native: Any, kind: str, picks: list[tuple[int, tuple[Any, ...]]]
) -> None:
    """In this process, a `Processor` with the core against one without it, over the sample
    rules and a generated catalog with records mutated where the core's decoder decides
    (the differential harness mutates records at random; these aim at the fast path's
    choices): the same events, dead letters (codes, messages), counters and stored bytes."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan, values = _plan_and_values(kind)
    values = list(values)
    for index, mutation in picks:
        mutated = values[index]
        try:
            mutated = _fast_path_mutation(mutated, mutation)
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            continue  # an earlier mutation left no object to mutate
        values[index] = mutated
    records = [Record(v, "t", 0, i) for i, v in enumerate(values)]
    _assert_the_core_answers_as_python(plan, records, batch=50)


_MISSING = object()
"""No `primaryAttributeValue` member at all."""

# Names around the mobile SDK's limit (`MOBILE_ACTION_NAME_MAX`, 19 characters counted as
# Python counts them: code points, not UTF-8 bytes nor UTF-16 units), escaped or not.
_ACTION_NAMES = st.one_of(
    st.sampled_from(
        [
            _MISSING,
            None,
            "",
            "Bought Shirt",  # a name the sample campaigns trigger on
            "a" * 19,
            "a" * 20,
            "é" * 19,  # 38 UTF-8 bytes
            "é" * 20,
            "😀" * 10,  # 20 UTF-16 units, 40 UTF-8 bytes: 10 characters
            "😀" * 19,
            "😀" * 20,
            "Bought Shirt" + "😀" * 7,
            "Bought Shirt" + "😀" * 8,
            0,
            19,
            1.5,
            True,
            ["Refund"],
            {"name": "Refund"},
        ]
    ),
    st.text(st.characters(codec="utf-8"), min_size=17, max_size=22),
    st.text(st.sampled_from('aé😀"\\\n'), min_size=18, max_size=21),
)


def _with_action_name(value: bytes, name: object, escaped: bool, guid: str | None) -> bytes:
    """The record with this name (and this `marketoGUID`; None: none, its content hash)."""
    record = orjson.loads(value)
    record.pop("marketoGUID", None)
    if guid is not None:
        record["marketoGUID"] = guid
    if name is _MISSING:
        record.pop("primaryAttributeValue", None)
    else:
        record["primaryAttributeValue"] = name
    if escaped and isinstance(name, str) and name:  # the name as \u escapes (an owned str)
        text = orjson.dumps(record).decode()
        return text.replace(orjson.dumps(name).decode(), ascii_json(name), 1).encode()
    return orjson.dumps(record)


def ascii_json(text: str) -> str:
    """`text` as a JSON string of \\u escapes only (astral characters as surrogate pairs)."""
    units = text.encode("utf-16-be")
    return (
        '"' + "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)) + '"'
    )


def _mobile_actions() -> list[bytes]:
    _, values = _plan_and_values("sample")
    return [v for v in values if orjson.loads(v)["activityTypeId"] == 400]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(
        st.tuples(st.integers(0, 27), _ACTION_NAMES, st.booleans(), st.booleans()),
        min_size=1,
        max_size=28,
    )
)
def test_mobile_actions_with_hostile_names_are_what_python_makes_of_them(
    native: Any, names: list[tuple[int, object, bool, bool]]
) -> None:
    """Type 400, which the core decodes itself when its name is a string of 1 to 19
    characters: names missing, empty, of 19 and 20 characters (one-byte, two-byte and
    astral), escaped, not strings: the same events, dead letters (reasons), states."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan, values = _plan_and_values("sample")
    actions = _mobile_actions()
    mutated: dict[int, bytes] = {}  # only these are added: the others would be duplicates
    for n, (index, name, escaped, hashed) in enumerate(names):
        guid = None if hashed else f"m{n}"  # not a duplicate of the sample's record
        mutated[index % len(actions)] = _with_action_name(
            actions[index % len(actions)], name, escaped, guid
        )
    records = [Record(v, "t", 0, i) for i, v in enumerate([*values, *mutated.values()])]
    _assert_the_core_answers_as_python(plan, records, batch=50)


@pytest.mark.parametrize("escaped", [False, True])
def test_the_core_decodes_mobile_actions_up_to_19_characters_itself(
    native: Any, escaped: bool
) -> None:
    """The fast path's rule is the reference's, to the character: names of 1 to 19
    characters (however many bytes or UTF-16 units) never reach the Python decoder; a name
    of 20, an empty or missing one, or one not a string does, and is dead-lettered there."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan, _ = _plan_and_values("sample")
    action = _mobile_actions()[0]
    assert MOBILE_ACTION_NAME_MAX == 19, "native/src/decode.rs holds the same constant"
    taken = ["B", "a" * 19, "é" * 19, "😀" * 19, "😀" * 10, "Bought Shirt"]
    handed = ["a" * 20, "é" * 20, "😀" * 20, "", None, _MISSING, 19]
    records = [
        Record(_with_action_name(action, name, escaped, f"m{i}"), "t", 0, i)
        for i, name in enumerate(taken + handed)
    ]
    now_us = datetime_to_us(datetime(2026, 9, 1, tzinfo=UTC))
    processor = Processor(plan, MemoryStore(), native=True)
    asked: list[int] = []

    async def run() -> Any:
        await processor.process(records[:1], now_us)  # attaches the core
        assert processor.native is not None
        fallback = processor.native._fallback

        def counting(now: int) -> Any:
            decode_one = fallback(now)

            def counted(record: Any) -> Any:
                asked.append(record.offset)
                return decode_one(record)

            return counted

        processor.native._fallback = counting  # type: ignore[method-assign]
        return await processor.process(records, now_us)

    got = asyncio.run(run())
    assert asked == list(range(len(taken), len(records)))
    too_long = (
        "primaryAttributeValue (Action) is 20 characters long; a mobile action name has "
        "fewer than 20 (the mobile SDK's rule)"
    )
    unnamed = "a mobile action needs a name (primaryAttributeValue)"
    assert [(d["offset"], d["error"]["code"], d["error"]["message"]) for d in got.dead_letters] == [
        (len(taken) + i, "invalid_value", message)
        for i, message in enumerate([too_long] * 3 + [unnamed] * 3)
    ]  # and the number 19 is the name "19", as the reference coerces it


@pytest.mark.parametrize(
    ("index_from", "max_history", "late_every", "late_by", "hours"),
    [
        (64, 20_000, 10, 37, 3),
        (None, 20_000, 10, 37, 3),
        (64, 100, 10, 37, 3),
        (64, 20_000, 2, 150, 12),
        (64, 300, 2, 150, 12),
    ],
)
def test_a_busy_lead_through_the_core_is_the_reference(
    native: Any,
    tmp_path: Path,
    index_from: int | None,
    max_history: int,
    late_every: int,
    late_by: int,
    hours: int,
) -> None:
    """test_history_index's busy lead (2,000 purchases over 2,000 minutes, a tenth late,
    a retention of 3 hours: pruning on most activities, late windows and windowless filters
    reaching below what was pruned; with `max_history` 100, trimmed by the bounds too;
    half late by up to 150 minutes with a retention of 12 hours: the `in past` filters'
    late points spill into runs that merge) through the core, with its history index (from
    64 entries) and scanning, against the scanning Python reference."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan = load(write_index_rules(tmp_path), hours)
    shaped = [
        (0, 1, i - (late_by - i % 7 if i % late_every == 1 else 0), "xyz"[i % 3], i % 10, i)
        for i in range(2000)
    ]
    records = [Record(record(op), "t", 0, i) for i, op in enumerate(shaped)]

    async def run(native_core: bool) -> tuple[list[Any], dict[int, bytes]]:
        store = MemoryStore()
        limits = Limits(max_history=max_history)
        processor = Processor(plan, store, limits=limits, native=native_core)
        processor.engine = Engine(plan, index_from=index_from if native_core else None)
        events: list[Any] = []
        for i in range(0, len(records), 100):
            events += (await processor.process(records[i : i + 100], NOW_US)).events
            if processor.native is not None:  # the index kept up is the index rebuilt
                assert processor.native.core.index_is_fresh(1)
                assert processor.native.core.indexed(1) == (index_from is not None)
        assert (processor.native is not None) == native_core
        return events, _encoded(store)

    want = asyncio.run(run(False))
    assert len({e["campaignId"] for e in want[0]}) >= 2
    assert any(e["campaignId"] == 6 for e in want[0])  # the `in past` filters' campaign
    assert asyncio.run(run(True)) == want


LIMITS = st.builds(
    Limits,
    future_horizon_us=st.sampled_from([Limits().future_horizon_us, 0, 3_600_000_000]),
    max_history=st.integers(1, 30) | st.just(100),
    max_history_bytes=st.integers(40, 20_000) | st.just(100_000),
    max_seen=st.integers(1, 30) | st.just(100),
    max_fields=st.integers(1, 12),
    max_fields_chars=st.integers(1, 400) | st.just(10_000),
)
"""The per-lead bounds (`settings.limits`), down to where every one of them bites on a
stream of a few hundred records (the settings' floors included)."""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["sample", "bench"]), limits=LIMITS, batch=st.sampled_from([7, 50]))
def test_the_native_core_bounds_a_lead_as_the_python_engine_does(
    native: Any, kind: str, limits: Limits, batch: int
) -> None:
    """The core against the Python engine under bounds drawn small (history entries and
    bytes, `seen`, fields and their characters, the future horizon): the same events,
    dead letters, counters and stored bytes, batch by batch."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan, values = _plan_and_values(kind)
    records = [Record(v, "t", 0, i) for i, v in enumerate(values)]
    records += records[::5]  # redeliveries, some past a trimmed `seen`
    _assert_the_core_answers_as_python(plan, records, batch=batch, limits=limits)


@pytest.mark.parametrize("stored_as", ["float", "bool", "some floats", "extreme ints"])
@pytest.mark.parametrize("index_from", [0, None])
def test_a_date_stored_as_another_type_is_compared_as_python_compares_it(
    native: Any, tmp_path: Path, stored_as: str, index_from: int | None
) -> None:
    """A state read from the store whose `at` (a datetime now) was written while it had
    another dataType: Python's `in past` compares a float (or a bool) with T as numbers,
    so the core must too, scanning or through its interval slots (which then scan, `odd`),
    on that state and on the activities that follow it; and integers at 64 bits' ends."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan = load(write_index_rules(tmp_path))
    minute = 60_000_000
    base = NOW_US - 3 * 86_400_000_000

    def at(m: int) -> Any:
        date = base + m * minute
        if stored_as == "float" or (stored_as == "some floats" and m % 3 == 0):
            return float(date)
        if stored_as == "extreme ints" and m % 3 != 0:  # 64 bits' ends: the bounds saturate
            return 2**63 - 1 if m % 3 == 1 else -(2**63)
        return date if stored_as in ("some floats", "extreme ints") else bool(m % 2)

    entries: list[Any] = [[base + m * minute, "x", {"qty": 1, "at": at(m)}] for m in range(100)]
    raw = encode_state(LeadState({100001: entries}, max_ts=entries[-1][0]))
    records = [Record(record((0, 1, 100 + i * 7, "xy"[i % 2], i, i)), "t", 0, i) for i in range(12)]

    async def run(native_core: bool) -> list[Any]:
        store = MemoryStore()
        processor = Processor(plan, store, native=native_core)
        processor.engine = Engine(plan, index_from=index_from if native_core else None)
        if native_core:
            await processor.process([], NOW_US)
            assert processor.native is not None
            processor.native.core.put_state(1, raw, 0, 0)
        else:
            store.leads[1] = decode_state(raw)
        return [(await processor.process([r], NOW_US)).events for r in records]

    want = asyncio.run(run(False))
    if stored_as in ("float", "some floats"):  # the first activity's filters count old ones
        assert 6 in {e["campaignId"] for e in want[0]}
    assert asyncio.run(run(True)) == want
