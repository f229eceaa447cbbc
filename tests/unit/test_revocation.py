"""The commit before a revocation (streams/runtime/revocation.py), and the Faust behaviour it
makes up for, which fails loudly here if an upgrade of faust-streaming changes it."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
from faust.transport import consumer as faust_consumer
from faust.types import TP

from streams.runtime.faust_app import create_app
from streams.runtime.revocation import (
    CommitsBeforeRevocation,
    RevocationCommitConsumer,
    RevocationCommitStreamConsumer,
)

# The worker's consumer (the batch drain) and the dispatcher's (Faust's own, feeding the
# Stream): both commit before a revocation.
CONSUMERS = pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"batch_drain": True}, RevocationCommitConsumer),
        ({"revocation_commit": True}, RevocationCommitStreamConsumer),
    ],
)


def test_faust_forgets_the_acked_offsets_of_revoked_partitions_without_committing() -> None:
    source = inspect.getsource(faust_consumer.Consumer.on_partitions_revoked)
    assert "self._acked.pop(tp, None)" in source
    assert "self._on_partitions_revoked" in source
    assert "commit" not in source.replace("committed_offset", ""), (
        "Faust now commits on revocation itself: revocation.py may be redundant"
    )
    commit = inspect.signature(faust_consumer.Consumer.commit)
    assert list(commit.parameters)[:2] == ["self", "topics"]


@CONSUMERS
def test_the_acked_offsets_are_committed_before_faust_forgets_them(
    tmp_path: Path, options: dict[str, bool], kind: type[CommitsBeforeRevocation]
) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, **options)
    consumer = app.consumer
    assert type(consumer) is kind
    tp = TP("activities", 0)
    consumer._acked[tp] = [5, 6]
    seen: list[Any] = []

    async def commit(topics: Any = None, start_new_transaction: bool = True) -> bool:
        seen.append(("commit", set(topics), list(consumer._acked.get(tp, []))))
        return True

    async def app_handler(revoked: Any) -> None:
        seen.append(("app", set(revoked), list(consumer._acked.get(tp, []))))

    consumer.commit = commit  # type: ignore[method-assign]
    consumer._on_partitions_revoked = app_handler
    asyncio.run(consumer.on_partitions_revoked({tp}))
    assert seen == [("commit", {tp}, [5, 6]), ("app", {tp}, [])]


@CONSUMERS
def test_no_commit_for_an_empty_revocation_or_while_stopping(
    tmp_path: Path, options: dict[str, bool], kind: type[CommitsBeforeRevocation]
) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, **options)
    assert type(app.consumer) is kind
    consumer = app.consumer
    commits: list[Any] = []

    async def commit(topics: Any = None, start_new_transaction: bool = True) -> bool:
        commits.append(topics)
        return True

    async def app_handler(revoked: Any) -> None:
        return None

    consumer.commit = commit  # type: ignore[method-assign]
    consumer._on_partitions_revoked = app_handler
    asyncio.run(consumer.on_partitions_revoked(set()))
    app._stopped.set()  # mode's Service: `should_stop` is true
    asyncio.run(consumer.on_partitions_revoked({TP("activities", 1)}))
    assert commits == []
