"""The rules-directory transaction of `streams.catalog`: its lock holds across processes
(two real processes race, as two API processes or an API and a `types` command would), a
refused step undoes the whole transaction, and every apiName that validates has a file
name and a temporary file name the file system accepts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams import catalog
from streams.catalog import CatalogOpError
from streams.catalog.rulesdir import MAX_FILE_NAME_BYTES
from streams.cli.main import main
from streams.engine.compiler import load_plan
from tests.unit.test_catalog_lifecycle import TYPES, rules, snapshot

__all__ = ["rules"]  # the fixture

ROOT = Path(__file__).resolve().parents[2]

HOLD = """
import sys, time
from pathlib import Path
from streams.catalog import transaction
with transaction(Path(sys.argv[1])):
    print("held", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.01)
"""

RACE = """
import sys, time
from pathlib import Path
from streams import catalog
rules, go, operation = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    getattr(catalog, operation)(rules, "closeAccount")
except catalog.CatalogOpError as exc:
    print("refused", exc, flush=True)
    sys.exit(2)
print("done", flush=True)
"""


def python(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def wait_line(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == expected


def test_a_write_waits_for_the_lock_held_by_another_process(rules: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    holder = python(HOLD, str(rules), str(release))
    try:
        wait_line(holder, "held")
        writer = subprocess.Popen(
            [sys.executable, "-m", "streams", "types", "delete", str(rules), "openAccount"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # long enough for an unlocked delete to have finished
        assert writer.poll() is None, "the delete did not wait for the other process's lock"
        assert (rules / TYPES / "openAccount.yaml").exists()
        release.touch()
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 2, err  # used by an inactive campaign: refused, not lost
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()


def test_delete_and_approve_racing_from_two_processes_never_both_win(
    rules: Path, tmp_path: Path
) -> None:
    """The defect: delete on one process and approve on another at the same moment both
    answered success and the deleted type came back. With the lock, either approve runs
    first (then delete removes the approved type) or delete does (then approve is refused):
    a successful delete always leaves the file gone."""
    path = rules / TYPES / "closeAccount.yaml"
    draft = path.read_text().replace("status: approved\n", "status: approved with draft\n")
    draft += "draft:\n  description: Closed by the customer\n"
    for round_ in range(8):
        path.write_text(draft)
        go = tmp_path / f"go-{round_}"
        racers = {
            op: python(RACE, str(rules), str(go), op) for op in ("delete_type", "approve_type")
        }
        for racer in racers.values():
            wait_line(racer, "ready")
        go.touch()
        codes = {op: racer.wait(timeout=60) for op, racer in racers.items()}
        assert codes["delete_type"] == 0
        assert not path.exists(), f"round {round_}: the deleted type came back ({codes})"
        load_plan(rules)


def test_a_refused_step_undoes_the_whole_transaction(rules: Path) -> None:
    before = snapshot(rules)
    with pytest.raises(CatalogOpError), catalog.transaction(rules):
        catalog.add_attribute(rules, "openAccount", api_name="branch", name="Branch")
        assert snapshot(rules) != before  # written, inside the transaction
        catalog.add_attribute(rules, "openAccount", api_name="branch", name="Branch again")
    assert snapshot(rules) == before


@pytest.mark.parametrize("length", [236, 237, 250, 251, 255])
def test_long_api_names_that_validate_can_be_created(rules: Path, length: int) -> None:
    api_name = "a" * (length - 1) + "Z"
    change = catalog.create_type(
        rules,
        api_name=api_name,
        name="Long One",
        trigger_name="Does Long",
        filter_name="Did Long",
        primary_api_name="what",
        primary_name="What",
    )
    written = Path(change.path)
    assert written.is_file() and len(written.name.encode()) <= MAX_FILE_NAME_BYTES
    assert not [p for p in written.parent.iterdir() if p.name.endswith(".tmp")]
    catalog.approve_type(rules, api_name)
    assert any(t.api_name == api_name for t in catalog.list_types(rules)[0])
    assert load_plan(rules).catalog.trigger("Does Long") is not None


def test_an_api_name_too_long_is_refused_by_validation_not_the_file_system(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "types", "create", str(rules), "--api-name", "a" * 256, "--name", "Long One",
        "--trigger-name", "Does Long", "--filter-name", "Did Long",
        "--primary-api-name", "what", "--primary-name", "What",
    ])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "1-255 letters and digits" in err and "File name too long" not in err
    assert not any(p.name.endswith(".tmp") for p in (rules / TYPES).iterdir())
