"""Probes of a process's `/ready` and `/metrics` on the real broker, and the two checks
that the worker's and the dispatcher's readiness share (test_worker_ready,
test_dispatcher_ready): the first 200 comes only with the group joined and every partition
held, and a ready member stays ready while another joins and leaves its group."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from tests.integration.streaming import PARTITIONS

WAITING = {"group join", "rebalance", "warm-up"}
_ASSIGNED_RE = re.compile(r"^streams_assigned_partitions ([0-9.e+]+)$", re.M)


class Probed(Protocol):
    """A started process serving `/ready` and `/metrics` on `web_port` (a worker, a
    dispatcher)."""

    @property
    def web_port(self) -> int: ...
    @property
    def pid(self) -> int: ...
    def alive(self) -> bool: ...
    def log_tail(self, lines: int = 20) -> str: ...
    def metrics(self) -> str: ...


def probe(process: Probed) -> tuple[int, dict[str, Any]]:
    """(status, body) of the process's /ready; (0, {}) while its web server is not up."""
    url = f"http://127.0.0.1:{process.web_port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def assigned_gauge(process: Probed) -> int | None:
    found = _ASSIGNED_RE.search(process.metrics())
    return int(float(found.group(1))) if found else None


def group_assignment(bootstrap: str, group: str) -> tuple[str, dict[str, list[int]]]:
    """The group's state on the broker and each member's assigned partitions."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group])[group]
    except KafkaError as exc:  # e.g. no coordinator yet: the group was never joined
        return f"unknown: {type(exc).__name__}", {}
    finally:
        admin.close()
    members = {
        member["member_id"]: sorted(
            p
            for topic in (member.get("member_assignment") or {}).get("assigned_partitions", [])
            for p in topic["partitions"]
        )
        for member in described.get("members", [])
    }
    return str(described.get("group_state")), members


def first_ready(process: Probed, timeout: float) -> list[tuple[int, dict[str, Any]]]:
    """Probe /ready every 10 ms until it answers 200; every answer seen, the 200 last."""
    seen: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.alive(), process.log_tail()
        status, body = probe(process)
        if status:
            seen.append((status, body))
        if status == 200:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"not ready within {timeout} s: {seen[-3:]}\n{process.log_tail()}")


def assert_first_ready_holds_every_partition(
    seen: list[tuple[int, dict[str, Any]]],
    group: tuple[str, dict[str, list[int]]],
    gauge: int | None,
) -> None:
    """`seen` (first_ready's answers), the broker's view of the `group` and the process's
    assigned-partitions `gauge`, all taken at the first 200: a stable group whose one
    member holds every partition, a body and a gauge that say so, and before it at least
    one 503 saying what it waited for."""
    state, members = group
    assert state == "Stable" and list(members.values()) == [list(range(PARTITIONS))], (
        state,
        members,
        seen[-3:],
    )
    assert seen[-1][1] == {
        "ready": True,
        "rebalancing": False,
        "partitions": list(range(PARTITIONS)),
    }
    assert gauge == PARTITIONS
    not_ready = [b for s, b in seen if s != 200]
    assert not_ready, "no 503 before the first 200: the probe never saw the process waiting"
    for answer in not_ready:
        assert answer["ready"] is False and answer["waiting"] in WAITING, answer


def assert_stays_ready_while_another_joins_and_leaves(
    start: Callable[[str], AbstractContextManager[Probed]], session: float
) -> None:
    """`start(name)` runs a member of one group (its log named for `name`). A second member
    takes half the partitions and gives them back on SIGTERM (a graceful leave); the
    first's `/ready` never fails meanwhile (readiness probes would take every member out of
    service at each rebalance) and its gauge follows its assignment: all, half, all again,
    sooner than the `session` timeout a silent exit would cost."""
    with start("first") as first:
        first_ready(first, 90)
        failures: list[tuple[int, dict[str, Any]]] = []
        gauges: list[int | None] = []

        def watch_until(done: Any, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while not done():
                assert time.monotonic() < deadline, (gauges[-5:], first.log_tail())
                assert first.alive(), first.log_tail()
                status, body = probe(first)
                if status not in (0, 200):  # 0: no answer within 2 s (a loaded machine)
                    failures.append((status, body))
                gauges.append(assigned_gauge(first))
                time.sleep(0.02)

        with start("second") as second:
            watch_until(lambda: probe(second)[0] == 200, 90)
            assert assigned_gauge(second) == PARTITIONS // 2, second.log_tail()
            watch_until(lambda: gauges[-1] == PARTITIONS // 2, 60)
            os.killpg(second.pid, signal.SIGTERM)
            left = time.monotonic()
            watch_until(lambda: gauges[-1] == PARTITIONS, 60)
            taken_back = time.monotonic() - left
    assert failures == [], failures[:5]
    assert PARTITIONS // 2 in gauges and gauges[-1] == PARTITIONS
    assert taken_back < session, (taken_back, session)
