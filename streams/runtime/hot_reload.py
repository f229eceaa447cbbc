"""Hot reload: a process picks up a new, validated ruleset from its rules directory without a
restart. Workers switch between batches; the API between requests.

Source: the rules directory itself (`STREAMS_RULES_DIR`), watched by polling every
`STREAMS_RULES_RELOAD_INTERVAL` seconds (0: off). A deploy is a change of that directory (a
`git pull`, a new volume, a catalog write through the API or `types`); it is read under the
directory's shared lock (`streams.catalog.read_consistent`), so a catalog change is never
seen half-way.

Order of a reload (`RulesReloader.poll`):
1. a cheap fingerprint of the rule files (names, sizes, modification times): unchanged, done;
2. read and compile the directory (`load_plan`, the `validate` rules), then the checks that
   compare the new ruleset with the one in force (`refused_by_running`);
3. refused (invalid, or a newer format whose members this version does not know): the
   ruleset in force keeps running; the refusal is logged once per fingerprint with the
   `validate` messages and counted (`streams_rules_reloads_total{result="refused"}`);
4. accepted: the new plan is returned, counted (`applied`) and its version exported.

Determinism (`SwitchLog`): a worker records, per partition, the offset of the first record
it evaluated with each rules version (`<app>:rules:switches:<topic>:<partition>` in Redis, a
list of `{"offset", "rulesVersion"}`), before the batch's events are produced. `backtest
--switch OFFSET=RULES_DIR` replays one partition with the same switch and emits the same
events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.actions.frozen import refused_changes
from streams.catalog import CatalogOpError, read_consistent
from streams.engine.activity import Decoder
from streams.engine.compiler import Plan, load_plan
from streams.engine.loader import ACTIONS_DIR, CAMPAIGNS_DIR, ENDPOINTS_FILE, TYPES_DIR
from streams.engine.problems import Problem, RulesError
from streams.pipeline import Processor
from streams.settings import EngineSettings

log = logging.getLogger(__name__)

SWITCHES_KEPT: Final = 1000
"""Entries kept per partition in the switch log (one per reload or restart): the oldest go."""
READ_LOCK_TIMEOUT_S: Final = 5.0
"""A poll waits this long for a catalog change to finish, then tries at the next one."""


def refused_by_running(old: Plan, new: Plan) -> list[Problem]:
    """What the new ruleset may not change in the one in force (a check between two
    versions, not of one: `validate` cannot see it): the custom actions' "frozen once used"
    rule. Hot reload and `plan` both ask it here."""
    return refused_changes(old, new)


def fingerprint(rules_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the rule files: what changes on a deploy."""
    found = []
    endpoints = rules_dir / ENDPOINTS_FILE
    if endpoints.is_file():
        stat = endpoints.stat()
        found.append((ENDPOINTS_FILE, stat.st_size, stat.st_mtime_ns))
    for folder in (TYPES_DIR, CAMPAIGNS_DIR, ACTIONS_DIR):
        directory = rules_dir / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in (".yaml", ".yml"):
                stat = path.stat()
                found.append((f"{folder}/{path.name}", stat.st_size, stat.st_mtime_ns))
    return tuple(found)


@dataclass
class ReloadMetrics:
    """The reloads, on the process's registry, and its gauge of the version in force (one
    series, value 1, labelled with the version)."""

    registry: CollectorRegistry
    version: Gauge
    reloads: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.reloads = Counter(
            "streams_rules_reloads",
            "Rules reloads, by result (applied, refused).",
            ["result"],
            registry=self.registry,
        )


class RulesReloader:
    """The plan in force, and the polling of the rules directory for a new one."""

    def __init__(
        self,
        plan: Plan,
        settings: EngineSettings,
        interval_s: float,
        metrics: ReloadMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.rules_dir = settings.rules_dir
        self.interval_s = interval_s
        self.metrics = metrics
        self.clock = clock
        self._next = clock() + interval_s
        self._seen = fingerprint(self.rules_dir)
        self.refused: list[Problem] = []
        """The problems of the last refused ruleset (empty once one is applied)."""
        if metrics is not None:
            metrics.version.labels(plan.rules_version).set(1)

    def due(self) -> bool:
        return self.interval_s > 0 and self.clock() >= self._next

    def poll(self) -> Plan | None:
        """The new plan when the directory changed to a valid ruleset, else None."""
        if not self.due():
            return None
        self._next = self.clock() + self.interval_s
        try:
            with read_consistent(self.rules_dir, READ_LOCK_TIMEOUT_S):
                seen = fingerprint(self.rules_dir)
                if seen == self._seen:
                    return None
                new: Plan | None = None
                try:
                    new = load_plan(
                        self.rules_dir,
                        self.settings.retention_us,
                        self.settings.max_custom_types,
                    )
                    problems = refused_by_running(self.plan, new)
                except RulesError as exc:
                    problems = list(exc.problems)
        except CatalogOpError as exc:  # a catalog change holds the lock: next time
            log.info("rules reload postponed: %s", exc)
            return None
        self._seen = seen
        if problems or new is None:
            self._refuse(problems)
            return None
        return self._apply(new)

    def _refuse(self, problems: list[Problem]) -> None:
        self.refused = problems
        log.error(
            "rules reload refused: %s no longer validates (%d problems); rules %s stay in "
            "force:\n%s",
            self.rules_dir,
            len(problems),
            self.plan.rules_version,
            "\n".join(str(p) for p in problems),
        )
        if self.metrics is not None:
            self.metrics.reloads.labels("refused").inc()

    def _apply(self, new: Plan) -> Plan | None:
        if new.rules_version == self.plan.rules_version:
            return None  # only comments or layout changed
        old, self.plan, self.refused = self.plan, new, []
        log.info(
            "rules reloaded: %s -> %s (%d campaigns)",
            old.rules_version,
            new.rules_version,
            len(new.campaigns),
        )
        if self.metrics is not None:
            self.metrics.reloads.labels("applied").inc()
            # Only the version in force is exported: the alert on workers enforcing different
            # versions counts the versions exported (deploy/prometheus/alerts.yml).
            self.metrics.version.remove(old.rules_version)
            self.metrics.version.labels(new.rules_version).set(1)
        return new


async def switch_between_batches(
    handler: Any, reloader: RulesReloader, switches: SwitchLog, messages: Sequence[Any]
) -> None:
    """The worker's hook, before a batch: put the newest plan in force (a new `Processor`
    over the same store; the worker's timer polls the directory in a thread, and only
    replaces `reloader.plan`, so a batch never sees two plans), then record the version
    each partition of the batch starts with."""
    old, plan = handler.processor, reloader.plan  # read once: the timer's thread may swap it
    if old.plan is not plan:
        handler.processor = Processor(plan, old.store, old.engine.dedup_horizon_us, old.limits)
    await switches.record(messages, handler.processor.plan.rules_version)


class SwitchLog:
    """Where each partition started evaluating with each rules version, in Redis."""

    def __init__(self, client: Any, app_id: str) -> None:
        self.client = client
        self.app_id = app_id
        self._versions: dict[tuple[str, int], str] = {}

    def key(self, topic: str, partition: int) -> str:
        return f"{self.app_id}:rules:switches:{topic}:{partition}"

    async def record(self, records: Sequence[Any], version: str) -> None:
        """For each partition of the batch whose last version differs (or is not known to
        this process): its first offset in the batch, with `version`. A batch comes in
        runs of one partition (a fetch's records, partition by partition): a partition is
        looked up once per run, not per record."""
        first: dict[tuple[str, int], int] = {}
        topic: str | None = None
        partition = -1
        for record in records:
            if record.partition != partition or record.topic != topic:
                topic, partition = record.topic, record.partition
                first.setdefault((topic, partition), record.offset)
        for (topic, partition), offset in first.items():
            if self._versions.get((topic, partition)) == version:
                continue
            entry = orjson.dumps({"offset": offset, "rulesVersion": version})
            key = self.key(topic, partition)
            await self.client.rpush(key, entry)
            await self.client.ltrim(key, -SWITCHES_KEPT, -1)
            self._versions[(topic, partition)] = version

    def forget(self) -> None:
        """After a revocation: which version each partition last recorded is no longer
        known (another worker may have recorded its own since), so the next batch of each
        partition records its version again (an entry repeating the version in force is
        harmless: from that offset on the same plan)."""
        self._versions.clear()

    async def read(self, topic: str, partition: int) -> list[dict[str, Any]]:
        return [
            orjson.loads(raw) for raw in await self.client.lrange(self.key(topic, partition), 0, -1)
        ]


@asynccontextmanager
async def api_following_rules(app: Any, interval_s: float) -> AsyncIterator[None]:
    """For the API's lifespan: poll the rules directory every `interval_s` (0: never) in a
    thread, and put a new plan in force between requests by replacing `app.state.plan`,
    the decoder of the ingest calls and the catalog of the read-back (each request reads
    them once, so it sees one version)."""
    api_metrics = getattr(app.state, "api_metrics", None)
    reloader = RulesReloader(
        app.state.plan,
        app.state.settings,
        interval_s,
        None
        if api_metrics is None
        else ReloadMetrics(api_metrics.registry, api_metrics.rules_info),
    )
    app.state.reloader = reloader

    async def follow() -> None:
        while True:
            await asyncio.sleep(interval_s)
            new = await asyncio.to_thread(reloader.poll)
            if new is not None:
                app.state.plan = new
                app.state.decoder = Decoder(new.catalog, app.state.decoder.future_horizon_us)
                history = getattr(app.state, "history", None)
                if history is not None:
                    history.catalog = new.catalog

    task = asyncio.create_task(follow()) if interval_s > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
