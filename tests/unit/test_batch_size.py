"""STREAMS_BATCH_SIZE reaches the worker's consumer: aiokafka's records per poll (Faust's
`broker_max_poll_records`), which bounds each fetch the batch drain hands out, is the
batch size (at least 500)."""

from __future__ import annotations

from pathlib import Path

from streams.engine.compiler import load_plan
from streams.runtime.worker import build_app
from streams.settings import WorkerSettings

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_the_default_batch_size_is_the_consumers_poll_size(tmp_path: Path) -> None:
    settings = WorkerSettings(rules_dir=RULES, broker="localhost:1")
    assert settings.batch_size == 10_000
    app = build_app(settings, load_plan(RULES), tmp_path / "a")
    assert app.conf.broker_max_poll_records == 10_000


def test_a_small_batch_size_still_polls_500(tmp_path: Path) -> None:
    settings = WorkerSettings(rules_dir=RULES, broker="localhost:1", batch_size=100)
    app = build_app(settings, load_plan(RULES), tmp_path)
    assert app.conf.broker_max_poll_records == 500
