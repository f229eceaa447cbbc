"""The native engine core (the Rust crate in `native/`) beneath `pipeline.Processor`.

What crosses the boundary, once per plan: a plain JSON description of the plan
(`describe_plan`: the catalog's decoding tables, campaigns, triggers and filter items with
their conditions as named operators over constants, the filter logic as a tree); per batch:
the records (bytes and positions) in, the events as the pipeline's dicts, the dead letters
and the counters out. The lead states stay in the core. Over a `MemoryStore` (the backtest,
the benchmarks) the core owns them (`NativeLeads` shows them to the store's readers as
`LeadState`s, decoded from the bytes the core writes in the format of
`streams.state.codec`). Over the workers' `RedisStore` (`RedisStore.adopt_core`) the store
decides what the core holds: a lead it saved last stays in the core between batches (the
store's cache, `cache_leads`), nothing of it crosses; a lead read cold (snapshot of any
format version + journal, quarantine: `RedisStore.load` as ever) is handed over as
`codec.encode_state`'s bytes, which the core reads; per lead saved the core hands back
what `journal.write` would store (a delta of what changed since the lead's checkpoint, or a
snapshot once the journal would outgrow it: `native/src/stored.rs`), which the store's one
script stores (compare-and-set, generation, TTL, WAIT, one call per lead on a Cluster).

The core decodes the common shape itself and hands every other record to the Python
decoder (`Decoder.decode`), so every rejection and its message is the reference's; it
evaluates with the reference's semantics; history filters count through a native history
index once a type holds the engine's `index_from` entries (`history_index.py`'s: per
filter slot, the sorted dates of the entries it accepts, or for a filter whose `in past`s
bound attributes of the entry the interval of dates at which it counts each one,
`intervals.rs` after `intervals.py`), else scan, as the reference.
`tests/unit/test_compiled_engine.py` holds it to the pure engine: the same events, dead
letters, counters and stored bytes; `tests/integration/test_native_worker.py` holds it,
beneath a `RedisStore`, to the Python engine on the same store: the same outcomes and the
same states in Redis.

A failure of the core on a batch (an exception: a Python callback it calls raising, a
record whose lead's `seen` marks it as faulted by the Python engine's isolation; or a Rust
panic) never stops the partition: over a `RedisStore` the batch's leads are evicted from
the core (Redis holds them as before the batch: nothing was saved) and the Python engine
redoes the batch with its per-record isolation (`Processor._isolate`); over a
`MemoryStore`, which has no copy of the states before the batch, it is
`StatesNotIsolated`, and the backtest runs again with copies on the Python engine. Over a
`RedisStore` each batch handed over is counted by its reason (`FALLBACK_REASONS`,
`RedisStore.on_core_fallback`: the worker's `streams_native_fallbacks_total`); a lead
whose state the core cannot hold is named in the log once per `CANNOT_HOLD_LOG_EVERY_S`,
a fault in one WARNING per batch. A failure of the core after a save Redis answered
(`commit`, `evict`: `RedisStore.save_core`) leaves the batch as saved and evicts its
leads, counted as a `fault` too. A failure while leads are evicted drops every lead of
the core (`RedisStore.evict_core`). `Core.test_only_panic_in` (a site, a count) is the
core's fault-injection seam for the tests (a Rust panic at any step: decoding, reading a
stored state, evaluating, building events or payloads, committing, evicting); nothing
here calls it.

The subset (a plan or store outside it runs on the compiled or pure modules, said once in
a log line at the `Processor`'s first batch, `unsupported`; the line saying the core runs
is logged once too):
- the store is a `MemoryStore` that is empty when the `Processor` is built (the core owns
  the states from then on), or a `RedisStore` (directly or in the worker's `TimedStore`);
- a field filter that reads a field as a number or a date calls the Python function that
  reads it (`operators.parsed`), so its reading is the reference's;
- durations up to `MAX_SPAN_US`; every condition template of `operators` in `_OPS`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

from streams.engine.activity import MAX_STRING_CHARS, MAX_TEXT_CHARS, Activity, Decoder
from streams.engine.catalog import Catalog
from streams.engine.compiler import FieldLeaf, HistoryLeaf, Plan
from streams.engine.datatypes import DataType, parse_moment_us, parse_number
from streams.engine.evaluator import Engine
from streams.engine.logic import And, Item, Node, Not, parse_logic
from streams.engine.operators import TEXT_IS_TEMPLATE, Condition, parsed
from streams.engine.standard_types import DELETE_LEAD
from streams.state.codec import decode_state
from streams.state.memory import MemoryStore

if TYPE_CHECKING:
    from streams.engine.leadstate import LeadState
    from streams.pipeline import Processor, RecordLike

ABI: Final = 4
"""The description's format: the core's `ABI` must be the same (a stale build is refused
by the manifest already; this catches a description changed without the crate)."""

log = logging.getLogger(__name__)

_OPS: Final = {
    "v is None": "empty",
    "v is not None": "not_empty",
    TEXT_IS_TEMPLATE: "text_in",
    "v is None or v.casefold() not in {0}": "text_not_in",
    "v is not None and {0} in v.casefold()": "contains",
    "v is not None and any(x in v.casefold() for x in {0})": "contains",
    "v is None or not ({0} in v.casefold())": "not_contains",
    "v is None or not (any(x in v.casefold() for x in {0}))": "not_contains",
    "v is not None and v.casefold().startswith({0})": "starts",
    "v is not None and v.casefold().endswith({0})": "ends",
    "v is not None and v in {0}": "in",
    "v is None or v not in {0}": "not_in",
    "v is not None and {0} <= v <= {1}": "between",
    "v is not None and v > {0}": "gt",
    "v is not None and v < {0}": "lt",
    "v is not None and v >= {0}": "ge",
    "v is not None and v <= {0}": "le",
    "v is not None and t - {0} <= v <= t": "in_past",
}
"""Every condition template of `operators` the core implements, by the name it knows."""


_PARSERS: Final = (parse_number, parse_moment_us)
"""How a field filter reads a field's text (`Condition.parse`), by the core's number."""
_PARSE_NAMES: Final = ("number", "moment")


def _parse(kind: int, text: str) -> float | int | None:
    """The core's call for a field read as a number or a moment: `operators.parsed`."""
    return parsed(_PARSERS[kind], text)


class Unsupported(Exception):
    """The plan uses something the native core does not implement; the message says what."""


def _condition(cond: Condition, where: str) -> dict[str, Any]:
    op = _OPS.get(cond.template)
    if op is None:
        raise Unsupported(f"{where}: the condition {cond.template!r}")
    parse = _PARSERS.index(cond.parse) if cond.parse in _PARSERS else None
    if cond.parse is not None and parse is None:
        raise Unsupported(f"{where}: a field read by {cond.parse!r}")
    values: list[Any] = []
    for constant in cond.constants:
        if isinstance(constant, frozenset | tuple | list):
            values.extend(sorted(constant, key=repr))
        else:
            values.append(_span(constant, where) if op == "in_past" else constant)
    return {"op": op, "values": values, "parse": None if parse is None else _PARSE_NAMES[parse]}


MAX_SPAN_US: Final = 2**62
"""The longest window, period or retention the core takes (µs, ~146,000 years): dates are
within the years 1-9999, so a date minus a span stays within 64 bits. Durations have no
bound in the rules (`parse_duration_us`): a longer one runs on the Python engine."""


def _span(us: int, where: str) -> int:
    if not 0 <= us <= MAX_SPAN_US:
        raise Unsupported(f"{where}: a duration of {us} µs (the core takes up to 2**62)")
    return us


def _checks(checks: tuple[Any, ...], where: str) -> list[dict[str, Any]]:
    return [
        {"key": key or None, "any_of": any_of, "cond": _condition(cond, where)}
        for key, cond, any_of in checks
    ]


def _logic(node: Node) -> list[Any]:
    if isinstance(node, Item):
        return ["item", node.number]
    if isinstance(node, Not):
        return ["not", _logic(node.operand)]
    return ["and" if isinstance(node, And) else "or", _logic(node.left), _logic(node.right)]


def _data_type(data_type: DataType) -> list[Any]:
    return [str(data_type), MAX_TEXT_CHARS if data_type is DataType.TEXT else MAX_STRING_CHARS]


def describe_plan(plan: Plan, catalog: Catalog) -> bytes:
    """The plan as the core reads it (`native/src/plan.rs`), with the decoding tables of
    `catalog` (the `Processor`'s decoder's, which a reload of the engine keeps);
    `Unsupported` says why not."""
    types = [
        {
            "id": t.id,
            "standard": t.standard,
            "primary": _data_type(t.primary.data_type),
            "attrs": [[k, s.api_name, _data_type(s.data_type)] for k, s in t.by_key.items()],
        }
        for t in catalog.types.values()
    ]
    campaigns = []
    for c in plan.campaigns:
        where = f"campaign {c.id} ({c.path})"
        leaves: list[dict[str, Any]] = []
        for leaf in c.leaves:
            if isinstance(leaf, HistoryLeaf):
                leaves.append(
                    {
                        "kind": "history",
                        "type_id": leaf.type_id,
                        "window_us": None
                        if leaf.window_us is None
                        else _span(leaf.window_us, where),
                        "min_times": leaf.min_times,
                        "negate": leaf.negate,
                        "checks": _checks(leaf.checks, where),
                    }
                )
            elif isinstance(leaf, FieldLeaf) and leaf.condition is not None:
                leaves.append(
                    {"kind": "field", "key": leaf.key, "cond": _condition(leaf.condition, where)}
                )
            else:
                raise Unsupported(f"{where}: a filter item without its condition")
        logic = None if c.test is None else _logic(parse_logic(c.logic, len(c.leaves)))
        campaigns.append(
            {
                "id": c.id,
                "name": c.name,
                "qualification": c.qualification,
                "period_us": _span(c.period_us, where),
                "triggers": [
                    [type_id, [{"name": t.name, "checks": _checks(t.checks, where)} for t in ts]]
                    for type_id, ts in c.triggers.items()
                ],
                "leaves": leaves,
                "logic": logic,
                "carries": None if c.carries is None else list(c.carries),
            }
        )
    description = {
        "rules_version": plan.rules_version,
        "retention_us": _span(plan.retention_us, "the retention"),
        "recorded": sorted(plan.recorded_types),
        "delete_lead": DELETE_LEAD,
        "types": types,
        "event_types": [
            {
                "id": t.id,
                "primary": _data_type(t.primary.data_type),
                "attrs": [[k, _data_type(s.data_type)] for k, s in t.by_key.items()],
            }
            for t in plan.catalog.types.values()
        ],
        "campaigns": campaigns,
        "by_type": [[t, [c.id for c in cs]] for t, cs in plan.by_type.items()],
    }
    try:
        return orjson.dumps(description)
    except TypeError as exc:  # a constant JSON cannot hold
        raise Unsupported(f"a constant the description cannot hold ({exc})") from None


def load_module(path: Path) -> Any:
    """The native extension at `path` (a build's `streams_native<suffix>`)."""
    loader = importlib.machinery.ExtensionFileLoader("streams_native", str(path))
    spec = importlib.util.spec_from_file_location("streams_native", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    if getattr(module, "ABI", None) != ABI:
        raise ImportError(f"the native build speaks ABI {getattr(module, 'ABI', None)}, not {ABI}")
    return module


_MODULE: list[Any] = []
_SAID: set[str] = set()
"""The reasons not to run the core already logged."""


def _module() -> Any:
    """The extension the selection chose (`streams.ENGINE.native`), loaded once, or None."""
    from streams import ENGINE

    if not _MODULE:
        _MODULE.append(None if ENGINE.native is None else load_module(ENGINE.native))
    return _MODULE[0]


class NativeLeads(MutableMapping[int, "LeadState"]):
    """The core's lead states as a `MemoryStore` holds them, read-only: each read decodes
    the bytes the core writes (`codec.encode_state`'s), so readers get a `LeadState` of
    what is stored. `encoded(lead)` gives the bytes themselves."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def encoded(self, lead_id: int) -> bytes | None:
        raw: bytes | None = self.core.encode_state(lead_id)
        return raw

    def __getitem__(self, lead_id: int) -> LeadState:
        raw = self.encoded(lead_id)
        if raw is None:
            raise KeyError(lead_id)
        return decode_state(raw)

    def __iter__(self) -> Iterator[int]:
        return iter(self.core.lead_ids())

    def __len__(self) -> int:
        return len(self.core)

    def __setitem__(self, lead_id: int, state: LeadState) -> None:
        raise TypeError("the native core owns these states: materialize() them first")

    def __delitem__(self, lead_id: int) -> None:
        raise TypeError("the native core owns these states: materialize() them first")

    def materialize(self) -> dict[int, LeadState]:
        return {lead_id: self[lead_id] for lead_id in self}


def core_fault(exc: BaseException) -> bool:
    """Whether `exc`, raised by the core, is the core's failure on the batch (an exception,
    a Python callback's included, or a Rust panic, which PyO3 raises as a `BaseException`)
    rather than an interruption to pass on (cancellation, KeyboardInterrupt, SystemExit)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


@dataclass(repr=False)
class NativeProcessor:
    """The core for one `Processor`: `process` is `Processor.process` for its plan.

    With a store that holds the core's leads (`RedisStore.adopt_core`), a batch is: the
    core decodes it, the store loads the leads the core does not hold as stored
    (`load_core`), the core evaluates, the store saves what the core hands it per lead
    (`save_core`). When the core fails on the batch (`core_fault`), its leads are evicted
    (the store holds them as before the batch) and `process` returns None: the Python
    engine redoes the batch, with its isolation of the record at fault. With a
    `MemoryStore` (no copy of the states before the batch) the failure is
    `StatesNotIsolated`: the backtest runs again with copies, on the Python engine."""

    processor: Processor
    core: Any
    plan: Plan
    stored: bool = False
    """The store loads and saves the core's leads (`load_core`, `save_core`)."""

    def process(self, records: Sequence[RecordLike], now_us: int) -> tuple[Any, ...]:
        """The batch on a `MemoryStore` (the core owns its states)."""
        self._prepare()
        try:
            result: tuple[Any, ...] = self.core.process(records, now_us, self._fallback(now_us))
        except BaseException as exc:
            if not core_fault(exc):
                raise
            from streams.pipeline import StatesNotIsolated

            raise StatesNotIsolated(f"the native core raised on the batch: {exc!r}") from exc
        return result

    async def process_stored(
        self, records: Sequence[RecordLike], now_us: int
    ) -> tuple[Any, ...] | None:
        """The batch on a store that loads and saves the core's leads; None: the core
        failed on it, its leads are evicted, the Python engine is to redo it. An error of
        the store (or an interruption) evicts them too before it is raised."""
        self._prepare()
        store: Any = self.processor.store
        holder = _holding_store(store)
        core = self.core
        leads: list[int] = []
        try:
            leads, letters, decoded = core.decode(records, now_us, self._fallback(now_us))
            if not leads:
                return ([], letters, 0, 0, 0)
            await store.load_core(leads)
            events, accepted, duplicates, redelivered = core.evaluate(decoded, now_us, False)
            payloads = core.payloads(leads)  # the core's last step: a fault in it is the core's
        except BaseException as exc:
            # Nothing of them was saved: Redis holds them as before. If evicting fails too,
            # the core drops every lead (`RedisStore.evict_core`): still this batch's fault
            # if the core failed on it; else (the store's error, an interruption, a state
            # the core cannot hold) a `fault` of its own (as `RedisStore.save_core` counts).
            dropped = holder.evict_core(core, leads)
            if not core_fault(exc) or _of_the_store(exc):
                if dropped:
                    holder.count_core_fallback("fault")
                raise
            from streams.state.redis_store import CannotHold

            if isinstance(exc, CannotHold):
                CANNOT_HOLD_LOG.note(exc)
            else:
                log.warning(
                    "engine: the native core failed on a batch of %d records (%s); the "
                    "Python engine redoes it",
                    len(records),
                    f"{type(exc).__name__}: {exc}"[:300],
                )
            if isinstance(exc, CannotHold):
                holder.count_core_fallback("cannot_hold")
                if dropped:  # the core did fail, evicting: not hidden in `cannot_hold`
                    holder.count_core_fallback("fault")
            else:
                holder.count_core_fallback("fault")
            return None
        await store.save_core(leads, payloads)
        return (events, letters, accepted, duplicates, redelivered)

    def _prepare(self) -> None:
        processor = self.processor
        engine = processor.engine
        if engine.plan is not self.plan:  # a reload (a new Engine on the Processor)
            # Recorded once the core took it: if describing or setting it raises, the next
            # batch tries again rather than running the old plan as if it were the new.
            self.core.set_plan(describe_plan(engine.plan, processor.decoder.catalog))
            self.plan = engine.plan
        self.core.set_index_from(engine.index_from)  # None: the scanning reference

    def _fallback(self, now_us: int) -> Callable[[RecordLike], Activity | dict[str, Any]]:
        decode_one = self.processor.decode_one

        def fallback(record: RecordLike) -> Activity | dict[str, Any]:
            return decode_one(record, now_us)

        return fallback


FALLBACK_REASONS: Final = ("cannot_hold", "fault")
"""Why the core handed a batch to the Python engine (`RedisStore.on_core_fallback`): a
lead's stored state holds a value the core does not (`CannotHold`), or the core failed on
the batch (`core_fault`: an exception, a Python callback's, or a Rust panic); `fault` also
counts a failure after the batch's save, which is not redone, its leads evicted
(`RedisStore.save_core`), and a failure evicting the leads of a revocation
(`RedisStore.forget_cached`), of a save that failed, of a batch that failed on Redis
or went over for `cannot_hold`, or beyond the cache after a save: the core drops every
lead. One fault is counted once, even when evicting its leads fails too."""

CANNOT_HOLD_LOG_EVERY_S: Final = 600.0
"""A lead whose state the core cannot hold is named in the log at most once per this many
seconds: each of its batches goes to the Python engine, and is counted, but a busy lead
would otherwise log a WARNING per batch."""


REASONS_SHOWN: Final = 5
"""Leads whose reason (`CannotHold.reasons`) a `CannotHoldLog` line gives; the others
named in it are only listed."""
REASON_CHARS: Final = 200
"""At most this many characters of each reason in the line (the core's are shorter)."""


class CannotHoldLog:
    """The WARNING for leads whose state the core cannot hold (`CannotHold`): a lead is
    named at most once per `every_s`, with what the core could not hold (the core's
    reason: the value and where, e.g. `the history of type 100001, entry 0, attribute
    "qty": an integer beyond 64 bits`; for the first `REASONS_SHOWN` leads of the line,
    each cut to `REASON_CHARS`), the line saying how many batches went to the Python
    engine since the last one; batches whose leads were all named within `every_s` log
    nothing (the worker counts every batch: `streams_native_fallbacks_total`). At most
    `bound` leads are remembered, the longest named first forgotten."""

    def __init__(
        self,
        every_s: float = CANNOT_HOLD_LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        bound: int = 10_000,
    ) -> None:
        self.every_s = every_s
        self.clock = clock
        self.bound = bound
        self.named: dict[int, float] = {}
        """Lead id -> when it was last named, the longest named first."""
        self.unsaid = 0
        """Batches handed over since the last line."""

    def note(self, exc: BaseException) -> bool:
        """One batch handed over for `exc` (a `CannotHold`); whether a line was logged."""
        self.unsaid += 1
        now = self.clock()
        named = self.named
        fresh = [
            lead
            for lead in getattr(exc, "lead_ids", ())
            if lead not in named or now - named[lead] >= self.every_s
        ]
        if not fresh:
            return False
        for lead in fresh:
            named.pop(lead, None)
            named[lead] = now
        while len(named) > self.bound:
            del named[next(iter(named))]
        reasons: dict[int, str] = getattr(exc, "reasons", {})
        said = [_cut(reasons.get(lead) or str(exc)) for lead in fresh[:REASONS_SHOWN]]
        log.warning(
            "engine: lead(s) %s hold a state the native core cannot (%s); the batches that "
            "touch them run on the Python engine (%d batch(es) since the last such line; "
            "each lead named at most once per %d s; every batch is counted in "
            'streams_native_fallbacks_total{reason="cannot_hold"})',
            ", ".join(map(str, fresh[:20]))
            + (f" and {len(fresh) - 20} more" if len(fresh) > 20 else ""),
            "; ".join(dict.fromkeys(said)),
            self.unsaid,
            self.every_s,
        )
        self.unsaid = 0
        return True


def _cut(reason: str) -> str:
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"


CANNOT_HOLD_LOG: Final = CannotHoldLog()
"""The process's (a worker's leads are its own)."""


def _of_the_store(exc: BaseException) -> bool:
    """Whether `exc` is the store's (Redis, a conflict): it fails the batch, as the Python
    engine's path lets it; a state the core cannot hold (`CannotHold`) is the core's."""
    from streams.state.redis_store import CannotHold

    module = type(exc).__module__ or ""
    return not isinstance(exc, CannotHold) and module.startswith(("redis", "streams.state"))


def _holding_store(store: Any) -> Any:
    """The store beneath `store` (the worker's `TimedStore` wraps its `RedisStore`) if it
    can hold the core's leads (`adopt_core`), else None."""
    inner = getattr(store, "store", store)
    return inner if hasattr(inner, "adopt_core") and hasattr(store, "load_core") else None


def unsupported(processor: Processor, shared: bool = False) -> str | None:
    """Why the core cannot run beneath `processor`, or None. `shared`: the store's states
    are already a core's (an earlier `Processor` on the same store)."""
    store = processor.store
    if type(processor.engine) is not Engine or type(processor.decoder) is not Decoder:
        return "the Processor's engine or decoder is not the Python engine's own"
    if _holding_store(store) is not None:
        pass
    elif type(store) is not MemoryStore:
        return f"the store is a {type(store).__name__}, neither a MemoryStore nor a RedisStore"
    elif store.copies:
        return "the MemoryStore hands out copies (a backtest redone after an engine error)"
    elif store.leads and not shared:
        return "the MemoryStore held states before the first batch"
    try:
        describe_plan(processor.plan, processor.decoder.catalog)
    except Unsupported as exc:
        return str(exc)
    return None


def _limits(processor: Processor) -> tuple[int, ...]:
    limits = processor.limits
    return (
        limits.future_horizon_us,
        limits.max_history,
        limits.max_history_bytes,
        limits.max_seen,
        limits.max_fields,
        limits.max_fields_chars,
        processor.engine.dedup_horizon_us,
    )


def attach(processor: Processor) -> NativeProcessor | None:
    """The core beneath `processor` (at its first batch) when the selection chose it and
    it supports the plan and the store; else None, with one line saying why (logged).

    A `Processor` built on the store of an earlier one (the backtest's plan switches)
    takes over its core and states; if the new plan is not supported, the states are
    handed to the Python engine (decoded from the core's bytes) and the core is dropped."""
    module = _module()
    if module is None:
        return None
    store = processor.store
    holder = _holding_store(store)
    leads = store.leads if isinstance(store, MemoryStore) else None
    shared = leads if isinstance(leads, NativeLeads) else None
    reason = unsupported(processor, shared is not None)
    plan_reason = reason is not None and not reason.startswith(
        ("the Processor", "the store", "the MemoryStore")
    )
    if reason is not None:
        if shared is not None and isinstance(store, MemoryStore):
            store.leads = shared.materialize()
        if holder is not None and holder.core is not None:
            holder.release_core()
        _say(
            logging.WARNING if plan_reason else logging.INFO,
            f"engine: the native core does not run this: {reason}; the Python engine does",
        )
        return None
    description = describe_plan(processor.plan, processor.decoder.catalog)
    if holder is not None:
        core = holder.core
        if core is None:
            core = module.Core(description, _limits(processor), _parse)
            holder.adopt_core(core)
        else:
            core.set_plan(description)
            core.set_limits(_limits(processor))
        _say(
            logging.INFO,
            f"engine: the native core runs beneath the {type(holder).__name__}: it holds "
            "the leads between batches, reads cold ones from their stored bytes and saves "
            "deltas",
        )
        return NativeProcessor(processor, core, processor.plan, stored=True)
    if shared is not None:
        core = shared.core
        core.set_plan(description)
        core.set_limits(_limits(processor))
    else:
        core = module.Core(description, _limits(processor), _parse)
        assert isinstance(store, MemoryStore)
        store.leads = NativeLeads(core)
    return NativeProcessor(processor, core, processor.plan)


def _say(level: int, line: str) -> None:
    """Log `line` once per process (a worker builds a `Processor` per plan)."""
    if line not in _SAID:
        _SAID.add(line)
        log.log(level, "%s", line)
