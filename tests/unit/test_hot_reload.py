"""`RulesReloader`: a valid new ruleset replaces the one in force; an invalid one (or one
of a newer format, whose members this version does not know) is refused with the
`validate` messages, logged once and counted, and the running version keeps running. And
`backtest --switch`, which replays a worker's switch."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge

from streams import catalog
from streams.backtest import _batches
from streams.cli.main import main
from streams.engine.compiler import load_plan
from streams.pipeline import Record
from streams.runtime.hot_reload import ReloadMetrics, RulesReloader
from streams.settings import EngineSettings

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def live(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", copy)
    return copy


def reloader(live: Path) -> tuple[RulesReloader, Clock, CollectorRegistry]:
    registry = CollectorRegistry()
    gauge = Gauge("streams_rules_info", "x", ["rules_version"], registry=registry)
    clock = Clock()
    settings = EngineSettings(rules_dir=live)
    running = RulesReloader(
        load_plan(live), settings, 5.0, ReloadMetrics(registry, gauge), clock=clock
    )
    return running, clock, registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def lower_threshold(live: Path) -> None:
    path = live / "campaigns" / "high-value-deposits.yaml"
    path.write_text(path.read_text().replace("value: 10000", "value: 2000"))


def test_a_valid_change_is_put_in_force_at_the_next_poll(live: Path) -> None:
    running, clock, registry = reloader(live)
    old = running.plan
    lower_threshold(live)
    assert running.poll() is None  # not due yet
    clock.now = 5.0
    new = running.poll()
    assert new is not None and running.plan is new
    assert new.rules_version != old.rules_version
    assert value(registry, "streams_rules_reloads_total", result="applied") == 1.0
    assert value(registry, "streams_rules_info", rules_version=new.rules_version) == 1.0
    assert value(registry, "streams_rules_info", rules_version=old.rules_version) is None
    clock.now = 10.0
    assert running.poll() is None  # nothing changed since


def test_a_comment_changes_nothing(live: Path) -> None:
    running, clock, _ = reloader(live)
    path = live / "campaigns" / "big-conferences.yaml"
    path.write_text("# reviewed\n" + path.read_text())
    clock.now = 5.0
    assert running.poll() is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: 9\nname: Broken\ntriggers:\n  - trigger: Nothing Like This\n", "unknown trigger"),
        (
            "id: 9\nname: Newer\nformatVersion: 2\ntriggers:\n  - trigger: Visits Web Page\n",
            "formatVersion: is not a known member",
        ),
    ],
    ids=["invalid", "newer-format"],
)
def test_an_invalid_or_newer_ruleset_is_refused_and_the_old_one_keeps_running(
    live: Path, caplog: pytest.LogCaptureFixture, text: str, message: str
) -> None:
    running, clock, registry = reloader(live)
    old = running.plan
    (live / "campaigns" / "new.yaml").write_text(text)
    clock.now = 5.0
    with caplog.at_level(logging.ERROR):
        assert running.poll() is None
        clock.now = 10.0
        assert running.poll() is None  # the same refused files: logged once
    assert running.plan is old
    assert any(message in str(p) for p in running.refused)
    refusals = [r for r in caplog.records if "rules reload refused" in r.getMessage()]
    assert len(refusals) == 1 and message in refusals[0].getMessage()
    assert value(registry, "streams_rules_reloads_total", result="refused") == 1.0
    (live / "campaigns" / "new.yaml").unlink()
    lower_threshold(live)
    clock.now = 15.0
    assert running.poll() is not None and running.refused == []


def test_a_catalog_change_through_the_transaction_is_picked_up(live: Path) -> None:
    running, clock, _ = reloader(live)
    catalog.approve_type(live, "watchWebinar")
    clock.now = 5.0
    new = running.poll()
    assert new is not None and new.catalog.trigger("Watches Webinar") is not None


def test_batches_end_before_each_switch_offset() -> None:
    records = (Record(b"", "file", 0, n) for n in range(10))
    sizes = [[r.offset for r in b] for b in _batches(records, 4, [3, 6])]
    assert sizes == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_a_change_of_a_used_action_beyond_what_may_change_is_refused(
    live: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The actions' "frozen once used" rule, asked by hot reload and by `plan` alike."""
    running, clock, registry = reloader(live)
    old = running.plan
    path = live / "actions" / "notifyCrm.yaml"
    path.write_text(path.read_text().replace("method: POST", "method: PUT"))
    clock.now = 5.0
    assert running.poll() is None and running.plan is old
    assert any("notifyCrm" in str(p) for p in running.refused)
    assert value(registry, "streams_rules_reloads_total", result="refused") == 1.0

    history = tmp_path / "h.jsonl"
    history.write_text("")
    capsys.readouterr()
    code = main(["plan", "--from", str(ROOT / "rules"), "--to", str(live), str(history)])
    assert code == 2
    err = capsys.readouterr().err
    assert "notifyCrm" in err and "a running deployment refuses" in err
