"""`python -m streams plan`: two rulesets backtested over one history and compared, as a CI
step of a rules repository would run it (directories and git revisions)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from streams.cli.main import main
from streams.samples import sample_activities

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in sample_activities(2000, 120)))
    return path


@pytest.fixture
def new_rules(tmp_path: Path) -> Path:
    copy = tmp_path / "new"
    shutil.copytree(RULES, copy)
    return copy


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_same_rules_change_nothing_exit_0(
    history: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (new_rules / "campaigns" / "big-conferences.yaml").write_text(
        "# a comment changes nothing\n"
        + (new_rules / "campaigns" / "big-conferences.yaml").read_text()
    )
    code, out, _ = plan(capsys, "--from", str(RULES), "--to", str(new_rules), str(history))
    assert code == 0
    assert out.strip().endswith("no membership changes")


def test_a_lower_threshold_and_a_removed_campaign(
    history: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deposits = new_rules / "campaigns" / "high-value-deposits.yaml"
    deposits.write_text(deposits.read_text().replace("value: 10000", "value: 2000"))
    (new_rules / "campaigns" / "pricing-interest.yaml").unlink()
    code, out, _ = plan(capsys, "--from", str(RULES), "--to", str(new_rules), str(history))
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("campaign 2005 'Pricing interest' removed") for line in lines)
    assert any(
        line.startswith("campaign 2003 'High-value mobile deposits' changed") for line in lines
    )
    (gains,) = [
        line for line in lines if line.startswith("campaign 2003 'High-value mobile deposits': +")
    ]
    assert "-0 leads" in gains
    gained = int(gains.split(": +")[1].split(" ")[0])
    assert gained > 0
    assert sum(1 for line in lines if line.startswith("  gaining: lead ")) == min(gained, 5)
    (losses,) = [line for line in lines if line.startswith("campaign 2005 'Pricing interest': +0")]
    assert "-> 0)" in losses

    code, out, _ = plan(
        capsys, "--from", str(RULES), "--to", str(new_rules), str(history), "--format", "markdown"
    )
    assert code == 1
    assert "| 2005 Pricing interest | removed |" in out
    assert "| campaign | leads gaining | leads losing | memberships | examples |" in out


def test_a_type_change_that_rejects_accepted_records_is_reported(
    history: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The receipt URL dropped from the type (and from the one filter that used it): every
    deposit that sent one is now rejected as unknown_attribute."""
    path = new_rules / "activity-types" / "depositCheque.yaml"
    path.write_text(
        path.read_text().replace(
            "  - apiName: receiptUrl\n    name: Receipt URL\n    dataType: link\n", ""
        )
    )
    campaign = new_rules / "campaigns" / "repeat-depositors.yaml"
    campaign.write_text(
        campaign.read_text().replace(
            "        - attribute: receiptUrl\n          operator: is not empty\n", ""
        )
    )
    code, out, _ = plan(capsys, "--from", str(RULES), "--to", str(new_rules), str(history))
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("type 100002 (depositCheque)")]
    assert "accepted before would be rejected" in line and "unknown_attribute" in line


def test_git_revisions_of_the_rules_directory(
    history: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(RULES, repo / "rules")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", "rules")
    (repo / "rules" / "campaigns" / "pricing-interest.yaml").unlink()
    monkeypatch.chdir(repo)
    code, out, _ = plan(capsys, "--from", "main", "--to", "rules", str(history))
    assert code == 1
    assert (
        "campaign 2005 'Pricing interest' removed (main:rules/campaigns/pricing-interest.yaml)"
        in out
    )
    code, out, _ = plan(capsys, "--from", "main:rules", "--to", "HEAD", str(history))
    assert code == 0

    code, _, err = plan(capsys, "--from", "no-such-branch", "--to", "rules", str(history))
    assert (
        code == 2
        and "'no-such-branch' is neither a rules directory nor a known git revision" in err
    )
    code, _, err = plan(capsys, "--from", "main:elsewhere", "--to", "rules", str(history))
    assert code == 2 and "has no elsewhere/" in err


def test_invalid_rules_exit_2(
    history: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (new_rules / "campaigns" / "broken.yaml").write_text("id: 9\nname: Broken\ntriggers: []\n")
    code, out, err = plan(capsys, "--from", str(RULES), "--to", str(new_rules), str(history))
    assert code == 2 and out == ""
    assert "broken.yaml: triggers" in err


def test_a_missing_history_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = plan(
        capsys, "--from", str(RULES), "--to", str(RULES), str(tmp_path / "none.jsonl")
    )
    assert code == 2 and "no such file" in err
