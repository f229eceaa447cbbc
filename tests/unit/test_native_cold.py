"""Cold leads read natively (`native/src/cold.rs`, `Core.read_stored`) against the reference
(`codec.decode_state` then `journal.apply_delta`), over hypothesis-generated states and
journals (drops from the head and from further in, types gone, `seen` identities moved,
fields, runs, max_ts), as written, in earlier format versions, and made hostile.

The rule: what the core accepts it reads into the state the reference reads (the same
`encode_state` bytes, and the same next save: sizes and checkpoint), what it is not sure
of it declines (False, nothing held, never an exception), and a well-formed current
snapshot with its journal is accepted (so the test fails if the core always declines)."""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.engine.compiler import load_plan
from streams.engine.leadstate import LeadState
from streams.engine.native import _limits, _parse, describe_plan, load_module
from streams.engine_select import ROOT, check_native
from streams.pipeline import Processor
from streams.state.codec import decode_state, encode_state, is_current
from streams.state.journal import apply_delta, remember, write
from streams.state.memory import MemoryStore

INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=8)
VALUE = (
    TEXT
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.lists(TEXT, max_size=3)
)


def cores() -> Any:
    """A function that makes an empty core over the sample rules (the test is skipped, or
    fails on CI, without a core)."""
    path, reason, _ = check_native()
    if path is None:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"the native core cannot run: {reason}", pytrace=False)
        pytest.skip(f"the native core cannot run: {reason}")
    module = load_module(path)
    processor = Processor(load_plan(ROOT / "rules"), MemoryStore())
    description = describe_plan(processor.plan, processor.decoder.catalog)
    return lambda: module.Core(description, _limits(processor), _parse)


@pytest.fixture(scope="module")
def core_factory() -> Any:
    return cores()


@st.composite
def entries(draw: st.DrawFn) -> list[Any]:
    primary = draw(st.none() | VALUE)
    attrs = draw(st.dictionaries(TEXT, VALUE, max_size=3))
    return [draw(INT64), primary, attrs]


@st.composite
def seen_entries(draw: st.DrawFn) -> list[Any]:
    entry: list[Any] = [draw(INT64), draw(TEXT), draw(st.lists(INT64, max_size=3))]
    if draw(st.booleans()):
        entry.append(draw(st.dictionaries(TEXT, TEXT, max_size=2)))
    return entry


TYPES = st.integers(-3, 12) | INT64


@st.composite
def stored_leads(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A v3 snapshot and its journal, as `journal.write` writes them for a lead whose
    batches append, drop (from the head, from further in), remove types and move `seen`
    identities (or process them again: a new entry, which for the last one is in place)."""
    state = LeadState(
        history={
            t: [draw(entries()) for _ in range(draw(st.integers(0, 4)))]
            for t in draw(st.lists(TYPES, max_size=3, unique=True))
        },
        fields=draw(st.dictionaries(TEXT, TEXT, max_size=3)),
        runs=draw(st.dictionaries(INT64, INT64, max_size=3)),
        seen=draw(st.dictionaries(TEXT, seen_entries(), max_size=4)),
        max_ts=draw(st.none() | INT64),
    )
    raw = encode_state(state)
    stored = remember(state, 10**9, 0)  # every save a delta
    journal: list[bytes] = []
    for _ in range(draw(st.integers(0, 4))):
        state = LeadState(
            history={t: list(es) for t, es in state.history.items()},
            fields=dict(state.fields),
            runs=dict(state.runs),
            seen=dict(state.seen),
            max_ts=state.max_ts,
        )
        for _ in range(draw(st.integers(0, 4))):
            step = draw(st.sampled_from(["append", "head", "inside", "gone", "seen", "hot"]))
            types = sorted(state.history)
            if step == "append":
                t = draw(TYPES)
                state.history.setdefault(t, []).extend(draw(st.lists(entries(), max_size=3)))
            elif step in ("head", "inside", "gone") and types:
                t = draw(st.sampled_from(types))
                es = state.history[t]
                if step == "gone":
                    del state.history[t]
                elif step == "head":
                    del es[: draw(st.integers(0, len(es)))]
                elif es:
                    del es[draw(st.integers(0, len(es) - 1))]
            elif step == "seen":
                keys = list(state.seen)
                if keys and draw(st.booleans()):
                    key = draw(st.sampled_from(keys))
                    moved = draw(st.sampled_from(["drop", "move", "again"]))
                    entry = state.seen.pop(key)
                    if moved == "move":
                        state.seen[key] = list(entry)
                    elif moved == "again":  # processed again: a new entry, placed last
                        state.seen[key] = draw(seen_entries())
                else:
                    state.seen.setdefault(draw(TEXT), draw(seen_entries()))
            elif step == "hot":
                state.fields = draw(st.dictionaries(TEXT, TEXT, max_size=3))
                state.runs = draw(st.dictionaries(INT64, INT64, max_size=3))
                state.max_ts = draw(st.none() | INT64)
        is_delta, payload, stored = write(stored, state)
        assert is_delta
        journal.append(payload)
    return raw, journal


def _hostile(raw: bytes, how: str, at: int, byte: int) -> bytes:
    """`raw` changed as junk, a truncated write, another writer or an older one would."""
    at %= len(raw) + 1
    if how == "flip":
        return raw[:at] + bytes([byte]) + raw[at + 1 :]
    if how == "cut":
        return raw[:at]
    if how == "space":
        return raw[:at] + b" " + raw[at:]
    if how == "insert":
        return raw[:at] + bytes([byte]) + raw[at:]
    if how == "v1":
        return raw.replace(b'"v":3,', b"", 1)
    if how == "v2":
        return raw.replace(b'"v":3', b'"v":2', 1)
    if how == "unknown":
        return raw[:-1] + b',"x":1}'
    if how == "repeat":  # a member again: the reference takes the last one
        return raw[:-1] + b',"m":5}'
    if how == "bignum":
        return raw.replace(b"1", b"99999999999999999999", 1)
    if how == "float":
        return raw.replace(b"0", b"0.0", 1)
    if how == "escape":
        return raw.replace(b'"', b'"\\ud800', 2)
    if how == "wide":
        return raw.replace(b'"', b'"\xff', 2)
    raise AssertionError(how)


HOW = st.sampled_from(
    [
        "flip",
        "cut",
        "space",
        "insert",
        "v1",
        "v2",
        "unknown",
        "repeat",
        "bignum",
        "float",
        "escape",
        "wide",
    ]
)


def reference(raw: bytes, journal: list[bytes]) -> LeadState | Exception:
    """What the Python path reads (any exception is a refusal, whoever decides it)."""
    try:
        state = decode_state(raw)
        for delta in journal:
            apply_delta(state, delta)
    except Exception as exc:  # every refusal counts as one
        return exc
    return state


def check(core: Any, raw: bytes, journal: list[bytes]) -> bool:
    """The rule (module doc) for one lead; returns whether the core took it."""
    want = reference(raw, journal)
    taken = core.read_stored(1, raw, journal)
    assert taken in (True, False)
    if not taken:
        assert 1 not in core
        return False
    assert isinstance(want, LeadState), f"the core took what the reference refuses: {want!r}"
    assert is_current(raw)
    assert core.encode_state(1) == encode_state(want)
    stored = remember(want, len(raw), sum(map(len, journal)))
    is_delta, payload, _ = write(stored, want)
    assert core.payloads([1]) == [(1, is_delta, payload)]
    core.evict([1])
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored_leads())
def test_a_stored_lead_as_written_is_read_natively_as_python_reads_it(
    core_factory: Any, lead: tuple[bytes, list[bytes]]
) -> None:
    raw, journal = lead
    assert check(core_factory(), raw, journal), "a well-formed v3 lead was declined"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stored_leads(),
    HOW,
    st.integers(-1, 10**6),
    st.integers(0, 255),
    st.integers(0, 1),
)
def test_a_hostile_lead_is_read_as_python_reads_it_or_declined(
    core_factory: Any,
    lead: tuple[bytes, list[bytes]],
    how: str,
    at: int,
    byte: int,
    where: int,
) -> None:
    raw, journal = lead
    if where == 0 or not journal:
        raw = _hostile(raw, how, at, byte)
    else:
        n = at % len(journal)
        journal = [*journal[:n], _hostile(journal[n], how, at, byte), *journal[n + 1 :]]
    taken = check(core_factory(), raw, journal)
    if how in ("v1", "v2") and where == 0:
        assert not taken


@pytest.mark.parametrize(
    "raw, journal",
    [
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{}}', []),  # no m: the reference reads None
        (b'{"v":3,"h":{"07":[]},"f":{},"r":{},"s":{},"m":null}', []),
        (b'{"v":3,"h":{"7":[],"7":[]},"f":{},"r":{},"s":{},"m":null}', []),
        (b'{"v":3,"h":{"7":[[1,null,{"a":1,"a":2}]]},"f":{},"r":{},"s":{},"m":null}', []),
        (b'{"v":3,"h":{"7":[[1,{},{}]]},"f":{},"r":{},"s":{},"m":null}', []),
        (b'{"v":3,"h":{"7":[[1,null,{"a":null}]]},"f":{},"r":{},"s":{},"m":null}', []),
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{},"m":-0}', []),
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{},"m":1}x', []),
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{},"m":1}', [b'{"d":true,"h":{}}']),
        (
            b'{"v":3,"h":{"7":[[1,null,{}]]},"f":{},"r":{},"s":{},"m":1}',
            [b'{"d":1,"h":{"7":[5,[]]},"s":[0,{}],"f":{},"r":{},"m":1}'],
        ),
        (
            b'{"v":3,"h":{"7":[[1,null,{}],[2,null,{}]]},"f":{},"r":{},"s":{},"m":1}',
            [b'{"d":1,"h":{"7":[[1,0],[]]},"s":[0,{}],"f":{},"r":{},"m":1}'],
        ),
        (
            b'{"v":3,"h":{},"f":{},"r":{},"s":{"a":[1,"p",[]]},"m":1}',
            [b'{"d":1,"h":{},"s":[0,{"a":[2,"q",[]]}],"f":{},"r":{},"m":1}'],
        ),
    ],
)
def test_what_the_core_is_not_sure_of_is_declined(
    core_factory: Any, raw: bytes, journal: list[bytes]
) -> None:
    """Each of these the reference reads (or refuses) in its own way: a missing or repeated
    member, a key not canonical, a value the core does not hold, a drop beyond the list
    or out of order, a `seen` identity appended without being dropped first."""
    assert not check(core_factory(), raw, journal)


def test_the_snapshot_size_and_journal_size_are_what_the_store_keeps(
    core_factory: Any,
) -> None:
    """Whitespace the reference reads is counted as stored (its sizes drive the journal
    policy: snapshot once the journal would outgrow it)."""
    raw = orjson.dumps(
        {"v": 3, "h": {"7": [[1, "x", {"a": 1.5}]]}, "f": {}, "r": {}, "s": {}, "m": 1}
    )
    prefix = b'{"v":3,'
    spaced = prefix + raw[len(prefix) :].replace(b",", b" ,\n")
    assert check(core_factory(), spaced, [])
    assert not check(core_factory(), raw.replace(b",", b" ,", 1), [])  # not `is_current`
    assert check(core_factory(), raw, [])


# ---- hostile spellings: the core's reading of numbers and strings against orjson's ----

NUMBERS = [
    b"0", b"-0", b"00", b"01", b"-01", b"+1", b"1.", b".5", b"1e", b"1e+", b"0x10", b"1_0",
    b"-", b"--1", b"1.0", b"-0.0", b"0.0e-0", b"-0e0", b"1E2", b"1e+2", b"1e-2", b"1e0",
    b"1e309", b"-1e309", b"1e-400", b"-1e-400", b"0e999999", b"1e99999999999999999999",
    b"0.1e-999999999999999999", b"4.9e-324", b"2.4703282292062327e-324",
    b"2.4703282292062328e-324", b"1.7976931348623157e308", b"1.7976931348623159e308",
    b"2.2250738585072011e-308", b"9007199254740993", b"9007199254740993.0",
    b"0.30000000000000004441", b"123456789012345678901234567890.0",
    b"1.000000000000000111022302462515654042363166809082031250000001",
    b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
    b"-9223372036854775809", b"18446744073709551615", b"18446744073709551616",
    b"1" * 30, b"1" * 400, b"0." + b"0" * 400 + b"1", b"NaN", b"Infinity", b"-Infinity",
    b"true", b"false", b"null", b"tru", b"nul", b"[]", b"{}",
]  # fmt: skip
"""Number spellings, well formed or not, within 64 bits or beyond, exact or rounded."""

STRINGS = [
    b'""', b'"\\ud800"', b'"\\udc00"', b'"\\ud800\\u0041"', b'"\\ud800\\udbff"',
    b'"\\ud83d\\ude00"', b'"\\uD83D\\uDE00"', b'"\\u0000"', b'"\\u00e9"', b'"\\u00E9"',
    b'"\\u00g9"', b'"\\u00e"', b'"\xed\xa0\x80"', b'"\xc3"', b'"\xf4\x90\x80\x80"', b'"\x7f"',
    b'"\x1f"', b'"\x00"', b'"\\/"', b'"\\x"', b"'a'", b'"\\"', b'"a\\"b"', b'"\\b\\f\\n\\r\\t"',
    b'"\xef\xbb\xbf"', b'"\xef\xbf\xbf"',
]  # fmt: skip
"""String spellings: escapes (surrogate pairs, lone surrogates, bad hex), raw bytes
(invalid UTF-8, encoded surrogates, controls, noncharacters)."""

_EMPTY = b'{"v":3,"h":{},"f":{},"r":{},"s":{},"m":1}'


def _places(spelling: bytes) -> list[tuple[bytes, list[bytes]]]:
    """`spelling` in each place of a snapshot and a delta where a value, a date or a key
    goes."""
    s = spelling
    delta = b'{"d":1,"h":{%s},"s":[0,{%s}],"f":{%s},"r":{%s},"m":%s}'
    key = s if s.startswith(b'"') else b'"' + s + b'"'
    return [
        (b'{"v":3,"h":{"7":[[1,null,{"a":%s}]]},"f":{},"r":{},"s":{},"m":1}' % s, []),
        (b'{"v":3,"h":{"7":[[1,%s,{}]]},"f":{},"r":{},"s":{},"m":1}' % s, []),
        (b'{"v":3,"h":{"7":[[%s,null,{}]]},"f":{},"r":{},"s":{},"m":1}' % s, []),
        (b'{"v":3,"h":{%s:[]},"f":{},"r":{},"s":{},"m":1}' % key, []),
        (b'{"v":3,"h":{"7":[[1,null,{%s:1}]]},"f":{},"r":{},"s":{},"m":1}' % key, []),
        (b'{"v":3,"h":{},"f":{"a":%s},"r":{},"s":{},"m":1}' % s, []),
        (b'{"v":3,"h":{},"f":{%s:"x"},"r":{},"s":{},"m":1}' % key, []),
        (b'{"v":3,"h":{},"f":{},"r":{"5":%s},"s":{},"m":1}' % s, []),
        (b'{"v":3,"h":{},"f":{},"r":{%s:1},"s":{},"m":1}' % key, []),
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{"a":[%s,"p",[]]},"m":1}' % s, []),
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{"a":[1,%s,[%s]]},"m":1}' % (s, s), []),
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{%s:[1,"p",[],{"k":%s}]},"m":1}' % (key, s), []),
        (b'{"v":3,"h":{},"f":{},"r":{},"s":{},"m":%s}' % s, []),
        (_EMPTY, [delta % (b'"7":[0,[[1,%s,{"a":%s}]]]' % (s, s), b"", b"", b"", b"1")]),
        (_EMPTY, [delta % (b'"7":[%s,[]]' % s, b"", b"", b"", b"1")]),
        (_EMPTY, [delta % (b"", b'%s:[1,"p",[]]' % key, b"", b"", b"1")]),
        (_EMPTY, [delta % (b"", b"", b'"a":%s' % s, b'"5":%s' % s, s)]),
    ]


def python_path(core: Any, raw: bytes, journal: list[bytes]) -> bytes | str:
    """What the store does without the native reader: `decode_state` and `apply_delta`
    (a refusal: quarantined), then `put_state` of its `encode_state` bytes (a refusal:
    `CannotHold`); the state the core then holds, as it encodes it."""
    want = reference(raw, journal)
    if not isinstance(want, LeadState):
        return f"refused: {want!r}"
    try:
        encoded = encode_state(want)
    except TypeError as exc:  # orjson: a string it cannot write
        return f"unwritable: {exc!r}"
    try:
        core.put_state(1, encoded, 0, 0)
    except ValueError as exc:
        return f"cannot hold: {exc}"
    held: bytes = core.encode_state(1)
    core.evict([1])
    assert held == encoded, "put_state did not read back what encode_state wrote"
    return held


def same_reading(core: Any, raw: bytes, journal: list[bytes]) -> bool:
    """The rule for a spelling: the native reader declines it, or reads the state the
    Python path ends with (never a different value, never what the Python path refuses);
    returns whether it took it."""
    want = python_path(core, raw, journal)
    if not core.read_stored(1, raw, journal):
        assert 1 not in core
        return False
    got = core.encode_state(1)
    core.evict([1])
    assert isinstance(want, bytes), f"the core took {raw!r} {journal!r}; Python: {want}"
    assert got == want, f"{raw!r} {journal!r}"
    return True


@pytest.mark.parametrize("spelling", NUMBERS + STRINGS)
def test_a_hostile_spelling_is_read_as_python_reads_it_or_declined(
    core_factory: Any, spelling: bytes
) -> None:
    core = core_factory()
    for raw, journal in _places(spelling):
        same_reading(core, raw, journal)


def test_the_spellings_the_core_reads_are_not_all_declined(core_factory: Any) -> None:
    """The table's well-formed spellings (the test above could pass by declining all)."""
    core = core_factory()
    for spelling in (b"-0.0", b"1e-400", b"1E2", b"9223372036854775807", b'"\\ud83d\\ude00"'):
        assert same_reading(core, *_places(spelling)[0]), spelling
    for place in (13, 15):  # a delta's appended entry, its `seen` identity
        assert same_reading(core, *_places(b'"\\u00e9"')[place])


@st.composite
def number_spellings(draw: st.DrawFn) -> bytes:
    """A number as JSON spells it, or nearly: sign, leading zeros, many digits, a
    fraction, an exponent of any size."""
    out = draw(st.sampled_from([b"", b"-", b"+"]))
    out += draw(st.sampled_from([b"", b"0", b"00"])) + draw(st.from_regex(rb"\A[0-9]{0,25}\Z"))
    if draw(st.booleans()):
        out += b"." + draw(st.from_regex(rb"\A[0-9]{0,25}\Z"))
    if draw(st.booleans()):
        out += draw(st.sampled_from([b"e", b"E"])) + draw(st.sampled_from([b"", b"+", b"-"]))
        out += str(draw(st.integers(0, 400) | st.integers(0, 10**25))).encode()
    return out


@st.composite
def string_spellings(draw: st.DrawFn) -> bytes:
    """A JSON string of escapes (any `\\uXXXX`, surrogates included) and raw bytes."""
    parts = draw(
        st.lists(
            st.sampled_from([b'\\"', b"\\\\", b"\\/", b"\\n", b"\\q", b"a", b"\xc3\xa9"])
            | st.integers(0xD7F0, 0xE010).map(lambda c: b"\\u%04x" % c)
            | st.integers(0, 0xFFFF).map(lambda c: b"\\u%04X" % c)
            | st.binary(min_size=1, max_size=2),
            max_size=6,
        )
    )
    return b'"' + b"".join(parts) + b'"'


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number_spellings() | string_spellings(), st.integers(0, 16))
def test_any_spelling_is_read_as_python_reads_it_or_declined(
    core_factory: Any, spelling: bytes, place: int
) -> None:
    same_reading(core_factory(), *_places(spelling)[place])


@pytest.mark.parametrize("spelling", [*NUMBERS, *STRINGS, b'1,"m":2', b"1}x"])
def test_put_state_reads_a_snapshot_as_python_reads_it_or_refuses_it(
    core_factory: Any, spelling: bytes
) -> None:
    """`put_state` (the bytes of a lead Python read) reads with the crate's one reader of
    stored states: what it holds is what `decode_state` reads, else a ValueError. The lax
    second reader it had read a high surrogate followed by another escape as a made-up
    character, `01` and `+1` as 1, a member twice as both, and ignored what followed."""
    core = core_factory()
    for raw, journal in _places(spelling):
        if journal:
            continue
        want = reference(raw, [])
        try:
            core.put_state(1, raw, 0, 0)
        except ValueError:
            assert 1 not in core
            continue
        assert isinstance(want, LeadState), f"put_state took {raw!r}; Python: {want!r}"
        assert core.encode_state(1) == encode_state(want), raw
        core.evict([1])


def _snapshot(
    h: bytes = b"{}", f: bytes = b"{}", r: bytes = b"{}", s: bytes = b"{}", m: bytes = b"null"
) -> bytes:
    return b'{"v":3,"h":%s,"f":%s,"r":%s,"s":%s,"m":%s}' % (h, f, r, s, m)


def _in_history(entry: bytes, where: str) -> tuple[bytes, str]:
    """A state whose history of type 7 holds one `entry`, and the reason naming `where`
    in it."""
    return _snapshot(h=b'{"7":[%s]}' % entry), f"the history of type 7, entry 0, {where}"


_LONG = "n" * 500 + '"'
CANNOT_HOLD = [
    (
        _snapshot(h=b'{"100001":[[1,"x",{"qty":1}],[2,"x",{"qty":9223372036854775808}]]}'),
        'the history of type 100001, entry 1, attribute "qty": an integer beyond 64 bits',
    ),
    _in_history(b'[1,"x",{"a":1,"b":null}]', 'attribute "b": null'),
    _in_history(b'[1,"x",{"a":{"b":1}}]', 'attribute "a": an object'),
    _in_history(b'[1,"x",{"a":["b",2]}]', 'attribute "a": a list holding other than text'),
    _in_history(b"[1,-18446744073709551616,{}]", "its primary: an integer beyond 64 bits"),
    _in_history(b'[1.5,"x",{}]', "its date: a fraction where an integer belongs"),
    _in_history(b'[1,"x",{"a":1e400}]', 'attribute "a": a number beyond 64-bit floats'),
    (_snapshot(f=b'{"email":1}'), 'the lead fields, "email": a value other than text'),
    (
        _snapshot(r=b'{"12":99999999999999999999}'),
        'the runs, campaign "12": an integer beyond 64 bits',
    ),
    (
        _snapshot(s=b'{"g1":[1,"t/0/1",[],{"x":2}]}'),
        'the seen activity "g1", its carried fields, "x": a value other than text',
    ),
    (
        _snapshot(s=b'{"g1":[1,"t/0/1",[1.5]]}'),
        'the seen activity "g1", its campaigns: a fraction where an integer belongs',
    ),
    (_snapshot(m=b"9223372036854775808"), "the latest date: an integer beyond 64 bits"),
    _in_history(b'[1,"x",%s]' % orjson.dumps({_LONG: None}), 'attribute "' + "n" * 40 + '…": null'),
    (_snapshot()[:-1] + b',"x":1}', "not in the shape the core reads (at byte "),
]


@pytest.mark.parametrize(("raw", "reason"), CANNOT_HOLD)
def test_put_state_names_what_the_core_cannot_hold(
    core_factory: Any, raw: bytes, reason: str
) -> None:
    """A state `put_state` refuses (`CannotHold`: its batches run on the Python engine)
    is refused with what the core cannot hold and where, the names from the state cut
    short (the message is bounded); a decline for another cause says where the reader
    stopped. The log line of `native.CannotHoldLog` shows these messages."""
    core = core_factory()
    with pytest.raises(ValueError) as refused:
        core.put_state(1, raw, 0, 0)
    assert 1 not in core
    message = str(refused.value)
    assert message.startswith(f"lead 1: a state the core cannot hold: {reason}"), message
    assert len(message) < 200
