"""Per-lead state in Redis: the workers' store.

Key schema (also in the header of `lua/save_leads.lua`, the only writer):

    <app_id>:lead:{<lead_id>}      hash
        state   a snapshot: the LeadState as `codec.encode_state` writes it (history,
                fields, campaign runs, dedup record `seen`, max_ts)
        ver     integer generation: 1 after the first save, +1 on every save
    <app_id>:journal:{<lead_id>}   list
        deltas to replay on the snapshot, oldest first (`streams.state.journal`): what
        each batch changed, so that a busy lead's batch writes a few entries, not its whole
        history; a snapshot replaces them once they would outgrow it

The braces around the lead id are the Redis Cluster hash tag: both keys hash to the slot of
`<lead_id>`. Hence an app id must not contain `{` or `}`. Every save sets both keys' TTL to
`ttl_ms` (0: no expiry), so a lead without activity for that long is forgotten.

A batch costs two round trips, whatever its number of leads:

1. `load`: one non-transactional pipeline. A lead this store saved last (kept in its cache
   of `cache_leads` states, least recently saved evicted first) costs `HGET key ver`: if
   the generation is the one it saved, the cached state is used as it is; if someone else
   saved the lead since (a rebalance moved it and back), it is read in full in a third
   round trip. Any other lead costs `HMGET key state ver` and `LRANGE journal`: the
   snapshot is read by `codec.decode_state` (any format version written so far) and the
   journal replayed on it. A lead not found gets an empty `LeadState` and generation 0; a
   journal without its snapshot (left by a quarantine) is ignored. The store remembers
   each lead's generation and what is stored (`journal.Stored`) in `_loaded`, a token
   that lives from `load` to the `save` of the same batch: the `Store` protocol stays as
   it is. A cached state is taken out of the cache by `load` and put back by a
   successful `save`, so a batch that fails leaves nothing half-applied in the cache.
   With `check_cached=False` (the worker) a cached lead costs nothing at all: the cache
   is trusted while the worker owns the lead's partition, and emptied when its partitions
   are revoked (`forget_cached`; a lead checked out or being read then is not cached by
   its save either); a lead that someone else saved meanwhile (a zombie that
   has not noticed the revocation yet) fails the save's compare-and-set, which raises
   `StateConflict` and leaves it out of the cache, so the batch, evaluated again, reads
   it in full. A batch of cached leads then costs one round trip, the save.
2. `save`: one non-transactional pipeline of `EVALSHA save_leads.lua`: on one Redis one
   call per `SAVE_CHUNK` leads (a command per lead cost the client and the server a
   command's overhead each: the round trip of a 35-lead save took 2.1-2.9 ms that way and
   1.1-2.1 ms chunked, measured alternately on the store alone), on a Redis Cluster one
   per lead, so that the client may split the pipeline by slot. Per lead, a
   compare-and-set: it writes only if the lead's generation is still the one loaded (for
   a lead that was not loaded through this store: only if the key does not exist). It
   appends the batch's delta to the journal, or writes a snapshot and empties the journal
   (`journal.write` decides; a snapshot of an earlier format version always gets
   rewritten first). Each lead is decided on its own (a conflict on one writes nothing of
   it and does not stop the others); there is no MULTI/EXEC across leads. While a save is
   in flight, a `load` of one of its leads waits until it returns or raises, so a batch
   evaluated meanwhile (the worker's `STREAMS_SAVE_OVERLAP`) reads each lead after it.

A conflict means that another writer saved the lead in between, typically the new owner
of the partition after a rebalance while this worker is a zombie that has not noticed yet.
`save` then raises `StateConflict` after the whole pipeline ran: the conflicting leads are
untouched, the others of the batch are stored (each is a valid state: the batch's records
are in its `seen`). The worker must not emit the batch's events nor commit its offsets; it
crashes, and the replay finds the records in `seen` (a redelivery: same events, same
`eventId`s) or processes them against the newer state.

The script is sent by its SHA; a server that lost its script cache (restart, failover,
SCRIPT FLUSH) answers NOSCRIPT, and `save` then loads the script and resends only those
leads: three round trips, once. redis-py's own `Script` in a pipeline would instead ask
SCRIPT EXISTS before every pipeline, a second round trip on every batch.

A lead whose stored state cannot be read (junk in `state`, a `ver` that is not an integer,
a key of another Redis type, a format version newer than this code) would otherwise fail
every batch that touches it, and so stop the worker's partitions for good. `load`
quarantines it instead: `lua/quarantine.lua` renames the key to
`<app_id>:quarantine:{<lead_id>}:<unix ms>` (kept, without a new TTL, for someone to look
at), the store logs one WARNING naming the lead, both keys and the reason, calls
`on_quarantine`, and the lead goes on from an empty state (generation 0, so its save
creates the key afresh). If the key changed between the read and the rename (another
writer saved it), nothing is moved and `load` raises `StateConflict`: the batch is
evaluated again from a fresh load. Beneath the native core (`load_core`) the core reads a
cold lead's current-format snapshot and journal from the replies itself, and declines
anything it is not certain of (`native/src/cold.rs`): a declined lead is read here as
above, so the quarantine and its reasons stay this module's; the core never refuses one.

A pipeline that redis-py retries after a connection error may run twice on the server; the
script recognises its own write (generation + 1 holding the same snapshot, or the same
delta at the end of the journal) and reports it as stored, so a retry is not mistaken for a
conflict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from streams.engine.leadstate import LeadState
from streams.state.codec import UnreadableState, decode_state, encode_state, is_current
from streams.state.journal import Stored, apply_delta, remember, write
from streams.state.redis_client import StateClient, check_replica_acks, queue_replica_waits

log = logging.getLogger(__name__)

SAVE_LEADS_LUA: Final = (files("streams.state") / "lua" / "save_leads.lua").read_text("utf-8")
"""The compare-and-set script; its header documents the key schema."""
QUARANTINE_LUA: Final = (files("streams.state") / "lua" / "quarantine.lua").read_text("utf-8")
"""Moves an unreadable lead key aside, unless it changed since it was read."""

OnQuarantine = Callable[[int, bytes, bytes, str], None]
"""Called with (lead id, key, the key it was moved to, reason) for each quarantined lead."""

_LOAD_FIELDS: Final = (b"state", b"ver")
SAVE_CHUNK: Final = 256
"""Leads per EVALSHA of the save script on one Redis: a batch's save is a few calls, not
one per lead (each call costs the client and the server a command's overhead), and no
call's arguments grow without bound."""


CONFLICT_LOADS: Final = 3
"""Attempts of `load_core` when a revocation evicts leads of the batch while it loads."""


class CannotHold(Exception):
    """A lead's state holds something the native core does not (`load_core`): the batch
    runs on the Python engine. `reasons`: per lead, the core's message (`Core.put_state`:
    the value it cannot hold and where, bounded)."""

    def __init__(self, reasons: Mapping[int, str]) -> None:
        self.lead_ids: tuple[int, ...] = tuple(sorted(reasons))
        self.reasons: dict[int, str] = dict(reasons)
        super().__init__("; ".join(reasons.values())[:300])


class StateConflict(Exception):
    """Some leads were saved by someone else since this store loaded them; their stored
    state is the other writer's, untouched."""

    def __init__(self, lead_ids: Iterable[int]) -> None:
        self.lead_ids: tuple[int, ...] = tuple(sorted(lead_ids))
        super().__init__(
            f"state of lead(s) {', '.join(map(str, self.lead_ids))} changed since they were "
            "loaded: another worker owns them now; this batch must be replayed"
        )


def lead_ttl_ms(retention_us: int, dedup_horizon_us: int) -> int:
    """How long a lead's key lives after its last save: the history retention (the plan's,
    which may exceed the setting) plus the dedup horizon, in ms rounded up."""
    return -(-(retention_us + dedup_horizon_us) // 1000)


def _generation(ver: bytes | None) -> int:
    if ver is None:
        return 0
    if not ver.isdigit() or len(ver) > 18:
        raise UnreadableState(f"ver {ver[:40]!r} is not a generation")
    return int(ver)


class RedisStore:
    """The `Store` over one Redis or a Redis Cluster (`streams.state.redis_client`).

    Use it as the pipeline does: `load` a batch's leads, then `save` them; a lead saved
    without having been loaded through this instance is expected not to exist yet."""

    def __init__(
        self,
        client: StateClient,
        app_id: str,
        ttl_ms: int,
        *,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 5000,
        on_quarantine: OnQuarantine | None = None,
        cache_leads: int = 0,
        check_cached: bool = True,
        on_core_fallback: Callable[[str], None] | None = None,
    ) -> None:
        if not app_id or "{" in app_id or "}" in app_id:
            raise ValueError(f"app id {app_id!r} must be non-empty, without '{{' or '}}'")
        if ttl_ms < 0:
            raise ValueError(f"ttl_ms must be >= 0 (0: no expiry), not {ttl_ms}")
        if cache_leads < 0:
            raise ValueError(f"cache_leads must be >= 0 (0: no cache), not {cache_leads}")
        self.client = client
        self.app_id = app_id
        self.ttl_ms = ttl_ms
        self.wait_replicas = wait_replicas
        """Replicas each master must confirm after a save (WAIT, in the same pipeline)."""
        self.wait_timeout_ms = wait_timeout_ms
        self._prefix = f"{app_id}:lead:".encode()
        self._script = client.register_script(SAVE_LEADS_LUA)
        self._quarantine = client.register_script(QUARANTINE_LUA)
        self.on_quarantine = on_quarantine
        self.cache_leads = cache_leads
        self.check_cached = check_cached
        """False: a cached lead is used without asking Redis (module doc, 1.)."""
        self.on_core_fallback = on_core_fallback
        """Called with the reason (`native.FALLBACK_REASONS`) of each batch the native core
        beneath this store hands to the Python engine (the worker counts them)."""
        self._loaded: dict[int, tuple[int, Stored | None]] = {}
        """Lead id -> (generation loaded, 0: not found; what is stored), from `load` until
        `save`."""
        self._saving: dict[int, asyncio.Future[None]] = {}
        """Lead id -> what completes when its save in flight returns or raises."""
        self._cache: dict[int, tuple[int, Stored, LeadState]] = {}
        """Lead id -> (generation, what is stored, the state): leads saved by this store,
        least recently saved first, at most `cache_leads`; a lead is taken out by `load`
        and put back (newer) by a successful `save`."""
        self.core: Any = None
        """The native engine core whose leads this store loads and saves (`load_core`,
        `save_core`; `streams.engine.native`), or None."""
        self._held: dict[int, int] = {}
        """What `_cache` is for the core's leads: lead id -> generation of the state the
        core holds, least recently saved first, at most `cache_leads`."""
        self.read_natively = 0
        """Cold leads the core read from Redis's replies itself (`_read_native`)."""
        self._revocations = 0
        """How many times `forget_cached` ran."""
        self._revoked: set[int] = set()
        """Leads checked out or being loaded when `forget_cached` ran: their save, if it
        returns after, neither caches them nor leaves them held by the core."""

    def key(self, lead_id: int) -> bytes:
        return b"%s{%d}" % (self._prefix, lead_id)

    def forget_cached(self) -> int:
        """Drop every cached state (the worker calls it when its partitions are revoked:
        their leads may be saved by another worker from now on); returns how many. Leads
        checked out by a batch in progress (or being loaded) are not in the cache: they
        are marked (`_revoked`), so that their save does not cache them either (with the
        trusted cache nothing would tell that another worker saved them since)."""
        self._revocations += 1
        self._revoked.update(self._loaded)
        dropped = len(self._cache) + len(self._held)
        self._cache.clear()
        if self._held and self.evict_core(self.core, list(self._held)):
            self.count_core_fallback("fault")
        return dropped

    def evict_core(self, core: Any, lead_ids: list[int]) -> bool:
        """Evicts these leads from `core` (no longer held: read again cold). If the core
        fails at that (`native.core_fault`: a Rust panic included), what it holds is no
        longer known: every lead goes (`clear`; it cannot fail: no type of the core has a
        `Drop` of its own, and it calls no Python), one WARNING says so, and True is
        returned (the caller counts the fault). An interruption is raised."""
        from streams.engine.native import core_fault

        held = self._held if self.core is core else {}
        for lead_id in lead_ids:
            held.pop(lead_id, None)
        try:
            core.evict(lead_ids)
        except BaseException as exc:
            if not core_fault(exc):
                raise
            log.warning(
                "state: the native core failed evicting %d lead(s) (%s); it drops every lead "
                "it holds (%d), each read again from Redis",
                len(lead_ids),
                f"{type(exc).__name__}: {exc}"[:300],
                len(core),
            )
            held.clear()
            core.clear()
            return True
        return False

    def count_core_fallback(self, reason: str) -> None:
        """One fallback of the core, for `reason` (`native.FALLBACK_REASONS`)."""
        if self.on_core_fallback is not None:
            self.on_core_fallback(reason)

    def adopt_core(self, core: Any) -> None:
        """From now on the native `core` holds this store's leads (`load_core`,
        `save_core`): the states cached for the Python engine are dropped."""
        self._cache.clear()
        self._held.clear()
        self.core = core

    def release_core(self) -> None:
        """Back to the Python engine: the core's states are dropped (every lead is read
        again from Redis, where each is stored)."""
        if self.core is not None:
            self.core.clear()
        self._held.clear()
        self.core = None

    def quarantine_key(self, lead_id: int, unix_ms: int) -> bytes:
        return b"%s:quarantine:{%d}:%d" % (self.app_id.encode(), lead_id, unix_ms)

    def journal_key(self, lead_id: int) -> bytes:
        return b"%s:journal:{%d}" % (self.app_id.encode(), lead_id)

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        """Cached leads cost one `HGET ver` (their state is used if no one saved since);
        the others, and cached ones someone else saved, are read in full."""
        ids = list(lead_ids)
        if not ids:
            return {}
        await self._saved(ids)
        self._revoked.difference_update(ids)
        revocations = self._revocations
        cache = self._cache
        warm = [lead_id for lead_id in ids if lead_id in cache]
        cold = [lead_id for lead_id in ids if lead_id not in cache]
        out: dict[int, LeadState] = {}
        if not self.check_cached:  # trusted: a stale one fails the save's compare-and-set
            for lead_id in warm:
                generation, stored, state = cache.pop(lead_id)  # checked out until saved
                out[lead_id] = state
                self._loaded[lead_id] = (generation, stored)
            warm = []
            if not cold:
                return out
        async with self.client.pipeline(transaction=False) as pipe:
            for lead_id in warm:
                pipe.hget(self.key(lead_id), b"ver")
            self._queue_full_reads(pipe, cold)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        stale: list[int] = []
        for lead_id, reply in zip(warm, replies, strict=False):
            cached = cache.pop(lead_id, None)  # checked out until saved
            if cached is not None and reply == b"%d" % cached[0]:
                generation, stored, state = cached
                out[lead_id] = state
                self._loaded[lead_id] = (generation, stored)
            else:  # someone saved it since, or `forget_cached` emptied the cache meanwhile
                stale.append(lead_id)
        await self._read_full(cold, replies[len(warm) :], out)
        if stale:
            async with self.client.pipeline(transaction=False) as pipe:
                self._queue_full_reads(pipe, stale)
                replies = await pipe.execute(raise_on_error=False)
            await self._read_full(stale, replies, out)
        if self._revocations != revocations:  # revoked while they were being read
            self._revoked.update(ids)
        return out

    async def _saved(self, lead_ids: list[int]) -> None:
        """Once no save of these leads is in flight (it returned or raised)."""
        if self._saving:  # a lead whose save is in flight is read once it is stored
            pending = {self._saving[i] for i in lead_ids if i in self._saving}
            if pending:
                await asyncio.wait(pending)

    async def load_core(self, lead_ids: list[int]) -> None:
        """`load` for the native core (`adopt_core`): a lead the core holds as last saved
        (`_held`) costs nothing (or `HGET ver` with `check_cached`); any other is read in
        full: the core reads a current-format snapshot and its journal from the replies
        itself (`_read_native`); what it declines is read as `load` reads it (quarantine
        included) and handed to the core as `codec.encode_state`'s bytes with what is
        stored. Every lead is held on return."""
        core = self.core
        held = self._held
        loaded = self._loaded
        for _ in range(CONFLICT_LOADS):
            await self._saved(lead_ids)
            self._revoked.difference_update(lead_ids)
            revocations = self._revocations
            warm = [i for i in lead_ids if i in held and i in core]
            cold = [i for i in lead_ids if i not in held or i not in core]
            if self.check_cached and warm:
                async with self.client.pipeline(transaction=False) as pipe:
                    for lead_id in warm:
                        pipe.hget(self.key(lead_id), b"ver")
                    replies: list[Any] = await pipe.execute(raise_on_error=False)
                for lead_id, reply in zip(warm, replies, strict=True):
                    if reply != b"%d" % held.get(lead_id, -1):
                        held.pop(lead_id, None)
                        cold.append(lead_id)
                warm = [i for i in warm if i in held]
            for lead_id in warm:  # checked out until saved
                loaded[lead_id] = (held.pop(lead_id), None)
            if cold:
                async with self.client.pipeline(transaction=False) as pipe:
                    self._queue_full_reads(pipe, cold)
                    replies = await pipe.execute(raise_on_error=False)
                slow, slow_replies = self._read_native(core, cold, replies)
                states: dict[int, LeadState] = {}
                await self._read_full(slow, slow_replies, states)
                refused: dict[int, str] = {}
                for lead_id, state in states.items():
                    stored = loaded[lead_id][1]
                    try:
                        core.put_state(
                            lead_id,
                            encode_state(state),
                            0 if stored is None else stored.snapshot_bytes,
                            0 if stored is None else stored.journal_bytes,
                        )
                    except ValueError as exc:
                        refused[lead_id] = str(exc)
                if refused:
                    raise CannotHold(refused)
            if self._revocations != revocations:  # revoked while they were being read
                self._revoked.update(lead_ids)
            if all(i in core for i in lead_ids):  # none evicted meanwhile (a revocation)
                return
        raise RuntimeError(f"leads of a batch were evicted {CONFLICT_LOADS} times while loading")

    def _read_native(
        self, core: Any, lead_ids: list[int], replies: list[Any]
    ) -> tuple[list[int], list[Any]]:
        """The leads of `_queue_full_reads`' `replies` the core reads from them itself (a
        current-format snapshot and its journal, well formed in the shape it knows:
        `native/src/cold.rs`) are held on return; returns the others, with their replies,
        for `_read_full`, which decides about them as without the core (quarantine
        included): the core declines what it is not sure of, it never refuses."""
        loaded = self._loaded
        slow: list[int] = []
        slow_replies: list[Any] = []
        for n, lead_id in enumerate(lead_ids):
            reply, journal = replies[2 * n], replies[2 * n + 1]
            if type(reply) is list and reply[0] is not None:
                try:
                    generation = _generation(reply[1])
                except UnreadableState:
                    pass
                else:
                    if core.read_stored(lead_id, reply[0], journal):
                        loaded[lead_id] = (generation, None)
                        self.read_natively += 1
                        continue
            slow.append(lead_id)
            slow_replies += (reply, journal)
        return slow, slow_replies

    async def save_core(self, lead_ids: list[int], payloads: list[tuple[int, bool, bytes]]) -> None:
        """`save` for the native core: `payloads` is the core's (per lead: whether it is a
        delta, and what `journal.write` would store), the same script stores it; a lead
        stored moves the core's checkpoint (`commit`) and is held, up to `cache_leads`; a
        lead not stored (a conflict, an error) is evicted from the core, read again cold
        next time. A failure of the core once Redis answered is not the save's
        (`_core_failed_after_save`)."""
        core = self.core
        if not lead_ids:
            return
        loaded = self._loaded
        calls = [
            _Save(lead_id, loaded.get(lead_id, (0, None))[0], b"d" if is_delta else b"s", payload)
            for lead_id, is_delta, payload in payloads
        ]
        try:
            async with self._in_flight(lead_ids):
                replies = await self._store(calls)
        except BaseException:
            if self.evict_core(core, lead_ids):  # the batch fails, and the core too
                self.count_core_fallback("fault")
            raise
        for lead_id in lead_ids:
            loaded.pop(lead_id, None)
        stored = [c.lead_id for c, r in zip(calls, replies, strict=True) if r[0] == 1]
        conflicts = [c.lead_id for c, r in zip(calls, replies, strict=True) if r[0] != 1]
        revoked = [i for i in stored if i in self._revoked]
        self._revoked.difference_update(lead_ids)
        try:
            self._settle_core(core, calls, replies, stored, conflicts, revoked)
        except BaseException as exc:
            from streams.engine.native import core_fault

            if not core_fault(exc):
                raise
            self._core_failed_after_save(core, lead_ids, exc)
        if conflicts:
            raise StateConflict(conflicts)

    def _settle_core(
        self,
        core: Any,
        calls: list[_Save],
        replies: list[Any],
        stored: list[int],
        conflicts: list[int],
        revoked: list[int],
    ) -> None:
        """The core's side of a save Redis answered: checkpoints of the leads stored move,
        the others are evicted, the stored ones held up to `cache_leads`."""
        core.commit(stored)
        core.evict(conflicts)
        core.evict(revoked)
        held = self._held
        if self.core is core and self.cache_leads:
            for call, reply in zip(calls, replies, strict=True):
                if reply[0] == 1 and call.lead_id in core:  # not evicted meanwhile
                    held[call.lead_id] = reply[1]
            if len(held) > self.cache_leads:
                gone = list(held)[: len(held) - self.cache_leads]  # the least recently saved
                # Not the batch's leads: if the core fails evicting them, `evict_core` drops
                # every lead (else some would stay in the core, out of `_held`, for good).
                if self.evict_core(core, gone):
                    self.count_core_fallback("fault")
        else:
            core.evict(stored)

    def _core_failed_after_save(self, core: Any, lead_ids: list[int], exc: BaseException) -> None:
        """The core failed (`native.core_fault`: a Rust panic included) in `_settle_core`,
        after Redis answered: what Redis stored stays stored and the batch goes on (its
        events are those of the states saved), but the core's checkpoints of these leads
        may be half moved, so they are evicted (read again cold next time: a delta from a
        stale checkpoint would corrupt the journal); if evicting fails too, every lead
        goes (`evict_core`). Counted as one `fault` fallback."""
        log.warning(
            "state: the native core failed after a save of %d leads (%s); they are read "
            "again from Redis",
            len(lead_ids),
            f"{type(exc).__name__}: {exc}"[:300],
        )
        self.evict_core(core, lead_ids)
        self.count_core_fallback("fault")

    def _queue_full_reads(self, pipe: Any, lead_ids: list[int]) -> None:
        for lead_id in lead_ids:
            pipe.hmget(self.key(lead_id), _LOAD_FIELDS)
            pipe.lrange(self.journal_key(lead_id), 0, -1)

    async def _read_full(
        self, lead_ids: list[int], replies: list[Any], out: dict[int, LeadState]
    ) -> None:
        """Snapshot plus journal, per lead; an unreadable lead is quarantined."""
        loaded = self._loaded
        for n, lead_id in enumerate(lead_ids):
            reply, journal = replies[2 * n], replies[2 * n + 1]
            if isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE"):
                await self._set_aside(lead_id, b"", "the key is not a hash")
            elif isinstance(reply, Exception):
                raise reply
            else:
                raw, ver = reply
                try:
                    if isinstance(journal, Exception):
                        raise UnreadableState(f"journal: {journal}")
                    generation = _generation(ver)
                    if raw is None:  # nothing stored (a journal alone is left over)
                        state, stored = LeadState(), None
                    else:
                        state = decode_state(raw)
                        for delta in journal:
                            apply_delta(state, delta)
                        # Deltas go only on a snapshot of the current format: an earlier
                        # one is rewritten by the next save.
                        size = len(raw) if is_current(raw) else 0
                        stored = remember(state, size, sum(map(len, journal)))
                except UnreadableState as exc:
                    await self._set_aside(lead_id, ver or b"", str(exc))
                else:
                    out[lead_id] = state
                    loaded[lead_id] = (generation, stored)
                    continue
            out[lead_id] = LeadState()
            loaded[lead_id] = (0, None)

    async def _set_aside(self, lead_id: int, ver: bytes, reason: str) -> None:
        """Quarantine one lead's key (module doc); `StateConflict` if it changed since."""
        key = self.key(lead_id)
        moved_to = self.quarantine_key(lead_id, time.time_ns() // 1_000_000)
        if not await self._quarantine(keys=[key, moved_to], args=[ver]):
            raise StateConflict([lead_id])
        log.warning(
            "lead %d: state at %s cannot be read (%s); moved to %s, the lead starts afresh",
            lead_id,
            key.decode(),
            reason,
            moved_to.decode(),
        )
        if self.on_quarantine is not None:
            self.on_quarantine(lead_id, key, moved_to, reason)

    async def save(self, states: Mapping[int, LeadState]) -> None:
        """Module doc, 2.; until it returns or raises, a `load` of one of these leads waits
        for it (so a batch evaluated while the previous one's save is in flight reads each
        lead after that save)."""
        if not states:
            return
        if self.core is not None:
            # The Python engine redoing a batch the core failed on, maybe before it knew
            # the batch's leads (its decoding): the core's copies are stale once saved.
            # Its fault is counted already (`NativeProcessor.process_stored`).
            self.evict_core(self.core, list(states))
        async with self._in_flight(states):
            await self._save(states)

    @asynccontextmanager
    async def _in_flight(self, lead_ids: Iterable[int]) -> AsyncIterator[None]:
        """While the block runs, a `load` of these leads waits for it."""
        done = asyncio.get_running_loop().create_future()
        saving = self._saving
        ids = list(lead_ids)
        for lead_id in ids:
            saving[lead_id] = done
        try:
            yield
        finally:
            for lead_id in ids:
                if saving.get(lead_id) is done:
                    del saving[lead_id]
            done.set_result(None)

    async def _save(self, states: Mapping[int, LeadState]) -> None:
        loaded = self._loaded
        calls: list[_Save] = []
        afters: list[Stored] = []
        for lead_id, state in states.items():
            generation, stored = loaded.get(lead_id, (0, None))
            is_delta, payload, after = write(stored, state)
            calls.append(_Save(lead_id, generation, b"d" if is_delta else b"s", payload))
            afters.append(after)
        replies = await self._store(calls)
        # Only once every lead has an answer: a save that raised above keeps its tokens,
        # so the caller may retry it (the script makes a retry idempotent).
        for lead_id in states:
            loaded.pop(lead_id, None)
        # Not while the core holds the leads (a batch the Python engine redid after the
        # core raised): the core reads them again from Redis.
        revoked = self._revoked
        if self.cache_leads and self.core is None:
            cache = self._cache
            for call, reply, after in zip(calls, replies, afters, strict=True):
                if reply[0] == 1 and call.lead_id not in revoked:
                    cache[call.lead_id] = (reply[1], after, states[call.lead_id])
            while len(cache) > self.cache_leads:
                del cache[next(iter(cache))]  # the least recently saved
        revoked.difference_update(states)
        conflicts = [
            call.lead_id for call, reply in zip(calls, replies, strict=True) if reply[0] != 1
        ]
        if conflicts:
            raise StateConflict(conflicts)

    async def _store(self, calls: list[_Save]) -> list[Any]:
        """`_run`, the script loaded again for the leads a server without it refused
        (NOSCRIPT); raises the first error of a call; else each call's `[1 | 0, ver]`."""
        replies = await self._run(calls)
        missing = [c for c, r in zip(calls, replies, strict=True) if isinstance(r, NoScriptError)]
        if missing:
            await self.client.script_load(SAVE_LEADS_LUA)
            retried = iter(await self._run(missing))
            replies = [next(retried) if isinstance(r, NoScriptError) else r for r in replies]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _run(self, calls: list[_Save]) -> list[Any]:
        """One round trip: the script over the leads, `SAVE_CHUNK` leads per EVALSHA on one
        Redis, one EVALSHA per lead on a Redis Cluster (a script's keys must share a slot;
        both keys of a lead do), then the replicas' WAITs, if asked. Returns each call's
        reply, `[1, ver]` or `[0, ver]`, or the error of its EVALSHA (script errors come
        back in the list, not raised). `execute_command` rather than `evalsha`: redis-py's
        cluster pipeline refuses its `evalsha` method."""
        sha = self._script.sha
        ttl = self.ttl_ms
        chunk = 1 if isinstance(self.client, RedisCluster) else SAVE_CHUNK
        chunks = [calls[n : n + chunk] for n in range(0, len(calls), chunk)]
        async with self.client.pipeline(transaction=False) as pipe:
            for part in chunks:
                keys: list[bytes] = []
                args: list[Any] = []
                for call in part:
                    keys += (self.key(call.lead_id), self.journal_key(call.lead_id))
                    args += (call.generation, call.mode, call.payload, ttl)
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            masters = queue_replica_waits(
                pipe,
                self.client,
                (self.key(c.lead_id) for c in calls),
                self.wait_replicas,
                self.wait_timeout_ms,
            )
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if masters:
            check_replica_acks(masters, replies[len(chunks) :], self.wait_replicas)
        out: list[Any] = []
        for part, reply in zip(chunks, replies, strict=False):
            if isinstance(reply, Exception):
                out += [reply] * len(part)
            else:
                out += (reply[n : n + 2] for n in range(0, 2 * len(part), 2))
        return out


@dataclass(frozen=True, slots=True)
class _Save:
    lead_id: int
    generation: int
    mode: bytes
    """b"s": `payload` is a snapshot; b"d": a delta."""
    payload: bytes
