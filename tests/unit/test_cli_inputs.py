"""Command-line input a new user gets wrong, and the wording of summary lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.backtest import BacktestStats
from streams.cli.main import main
from streams.samples import sample_activities
from streams.text import counted

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--leads", "0"], "--leads: 0 is below 1"),
        (["--leads", "-1"], "--leads: -1 is below 1"),
        (["--count", "-5"], "--count: -5 is below 0"),
        (["--count", "many"], "--count: 'many' is not an integer"),
    ],
)
def test_sample_refuses_counts_out_of_range(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--leads 0` died with a ValueError traceback; `--count -5` printed nothing, exit 0."""
    with pytest.raises(SystemExit) as exited:
        main(["sample", *args])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert expected in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_sample_activities_refuses_no_leads() -> None:
    with pytest.raises(ValueError, match="leads 1 or more"):
        list(sample_activities(5, leads=0))


@pytest.mark.parametrize(
    ("number", "noun", "expected"),
    [
        (1, "duplicate", "1 duplicate"),
        (2, "duplicate", "2 duplicates"),
        (0, "membership", "0 memberships"),
    ],
)
def test_counted(number: int, noun: str, expected: str) -> None:
    assert counted(number, noun) == expected


def test_backtest_summary_says_one_duplicate_and_one_membership() -> None:
    summary = BacktestStats(lines=1, accepted=1, duplicates=1, events=1, seconds=1.0).summary()
    assert summary.startswith("1 activity: 1 accepted, 1 duplicate, 0 rejected; 1 membership;")


def test_validate_says_one_campaign(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "c.yaml").write_text(
        "id: 1\nname: Visitors\ntriggers:\n  - trigger: Visits Web Page\n"
    )
    assert main(["validate", str(tmp_path)]) == 0
    assert "valid: 0 custom activity types, 1 campaign;" in capsys.readouterr().err
