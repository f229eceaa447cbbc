"""The catalog operations of activity-types.md (`streams.catalog`, `types` commands).

Each test works on a copy of a small rules directory: a used approved type (commented, as a
reviewer would write it), a type used only by an inactive campaign, an unused approved type
and a draft. Refusals are checked to leave every byte of the directory as it was.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from streams import catalog as ops
from streams.catalog import CatalogOpError
from streams.cli.main import main
from streams.engine.compiler import load_plan
from streams.engine.definitions import ActivityTypeDef
from streams.engine.loader import read_rules

DEPOSIT = """\
# Cheques paid in at a branch or by app.
id: 100001
apiName: depositCheque
name: Deposit Cheque
description: A cheque deposited
triggerName: Deposits Cheque   # used by campaigns/cheques.yaml
filterName: Deposited Cheque
status: approved
primaryAttribute:
  apiName: amount
  name: Amount
  dataType: currency
# secondary attributes, most used first
attributes:
  # where it was paid in
  - apiName: branch
    name: Branch
    dataType: string
  # how many days until cleared
  - apiName: clearingDays
    name: Clearing Days
    dataType: integer  # business days
# end of depositCheque
"""

OPEN_ACCOUNT = """\
id: 100002
apiName: openAccount
name: Open Account
triggerName: Opens Account
filterName: Opened Account
status: approved
primaryAttribute:
  apiName: accountType
  name: Account Type
attributes: []
"""

CLOSE_ACCOUNT = """\
id: 100003
apiName: closeAccount
name: Close Account
triggerName: Closes Account
filterName: Closed Account
status: approved
primaryAttribute:
  apiName: reason
  name: Reason
attributes:
  - apiName: balance
    name: Balance
    dataType: currency
"""

APPLY_LOAN = """\
id: 100004
apiName: applyLoan
name: Apply Loan
triggerName: Applies For Loan
filterName: Applied For Loan
status: draft
primaryAttribute:
  apiName: amount
  name: Amount
  dataType: currency
attributes: []
"""

CHEQUES = """\
id: 3001
name: Big cheques
status: active
triggers:
  - trigger: Deposits Cheque
    constraints:
      - operator: at least
        value: 10000
      - attribute: branch
        operator: is
        value: Paris
filters:
  items:
    - filter: Deposited Cheque
      window: 30 days
      minTimes: 2
"""

ACCOUNTS = """\
id: 3002
name: New accounts
status: inactive
triggers:
  - trigger: Opens Account
"""

TYPES = "activity-types"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    (root / TYPES).mkdir(parents=True)
    (root / "campaigns").mkdir()
    for name, text in {
        "depositCheque": DEPOSIT,
        "openAccount": OPEN_ACCOUNT,
        "closeAccount": CLOSE_ACCOUNT,
        "applyLoan": APPLY_LOAN,
    }.items():
        (root / TYPES / f"{name}.yaml").write_text(text)
    (root / "campaigns" / "cheques.yaml").write_text(CHEQUES)
    (root / "campaigns" / "accounts.yaml").write_text(ACCOUNTS)
    load_plan(root)  # the starting point is valid
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the directory, hidden ones included (a stray temporary file shows)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def type_file(root: Path, api_name: str) -> str:
    return (root / TYPES / f"{api_name}.yaml").read_text()


def definition(root: Path, api_name: str) -> ActivityTypeDef:
    files, problems = read_rules(root)
    assert problems == []
    (found,) = [t.definition for t in files.types if t.definition.apiName == api_name]
    return found


def assert_valid(root: Path) -> None:
    assert main(["validate", str(root)]) == 0


def refused(root: Path, call: Callable[[], object], *fragments: str) -> CatalogOpError:
    """Run `call`, expect a refusal whose message (and problems) say `fragments`, and the
    directory unchanged byte for byte."""
    before = snapshot(root)
    with pytest.raises(CatalogOpError) as caught:
        call()
    text = str(caught.value) + "\n" + "\n".join(str(p) for p in caught.value.problems)
    for fragment in fragments:
        assert fragment in text
    assert snapshot(root) == before
    return caught.value


# --- create ----------------------------------------------------------------------------------


def test_create_writes_a_draft_with_the_next_id(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "types",
            "create",
            str(rules),
            "--api-name",
            "withdrawCash",
            "--name",
            "Withdraw Cash",
            "--trigger-name",
            "Withdraws Cash",
            "--filter-name",
            "Withdrew Cash",
            "--primary-api-name",
            "amount",
            "--primary-name",
            "Amount",
            "--primary-data-type",
            "currency",
            "--description",
            "Cash taken out",
        ]
    )
    assert code == 0
    path = f"{rules}/{TYPES}/withdrawCash.yaml"
    assert capsys.readouterr().err.startswith(f"{path}: created activity type 100005")
    assert type_file(rules, "withdrawCash") == (
        "id: 100005\n"
        "apiName: withdrawCash\n"
        "name: Withdraw Cash\n"
        "description: Cash taken out\n"
        "triggerName: Withdraws Cash\n"
        "filterName: Withdrew Cash\n"
        "status: draft\n"
        "primaryAttribute:\n"
        "  apiName: amount\n"
        "  name: Amount\n"
        "  dataType: currency\n"
        "attributes: []\n"
    )
    assert definition(rules, "withdrawCash").status == "draft"
    assert_valid(rules)


def test_create_in_an_empty_directory_starts_at_100000(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    root.mkdir()
    ops.create_type(
        root,
        api_name="visitBranch",
        name="Visit Branch",
        trigger_name="Visits Branch",
        filter_name="Visited Branch",
        primary_api_name="branch",
        primary_name="Branch",
        type_id=None,
    )
    assert definition(root, "visitBranch").id == 100_000
    assert_valid(root)


def test_create_refuses_an_existing_file(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(rules)
    code = main(
        [
            "types",
            "create",
            str(rules),
            "--api-name",
            "applyLoan",
            "--name",
            "Other",
            "--trigger-name",
            "T",
            "--filter-name",
            "F",
            "--primary-api-name",
            "p",
            "--primary-name",
            "P",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "applyLoan.yaml: already exists" in err
    assert "Traceback" not in err
    assert snapshot(rules) == before


def test_create_refuses_a_name_taken_by_another_type(rules: Path) -> None:
    refused(
        rules,
        lambda: ops.create_type(
            rules,
            api_name="payCheque",
            name="Pay Cheque",
            trigger_name="deposits cheque",
            filter_name="Paid Cheque",
            primary_api_name="amount",
            primary_name="Amount",
        ),
        "would not validate",
        "payCheque.yaml: triggerName: 'deposits cheque' is already used by",
    )


def test_create_refuses_beyond_the_type_limit(rules: Path) -> None:
    refused(
        rules,
        lambda: ops.create_type(
            rules,
            api_name="payCheque",
            name="Pay Cheque",
            trigger_name="Pays Cheque",
            filter_name="Paid Cheque",
            primary_api_name="amount",
            primary_name="Amount",
            max_custom_types=4,
        ),
        "100005 (payCheque) is custom type number 5 (by id) of 5; at most 4",
    )


# --- update ----------------------------------------------------------------------------------


def test_update_of_a_draft_edits_in_place(rules: Path) -> None:
    change = ops.update_type(rules, "APPLYLOAN", name="Loan Application", primary_data_type="float")
    assert "changed name, primaryAttribute" in change.message
    found = definition(rules, "applyLoan")
    assert (found.status, found.name, found.draft) == ("draft", "Loan Application", None)
    assert found.primaryAttribute.dataType == "float"
    assert "draft:" not in type_file(rules, "applyLoan")
    assert_valid(rules)


def test_update_of_an_approved_type_goes_into_the_draft(rules: Path) -> None:
    ops.update_type(rules, "100003", name="Close Bank Account", trigger_name="Closes Bank Account")
    found = definition(rules, "closeAccount")
    assert found.status == "approved with draft"
    assert (found.name, found.triggerName) == ("Close Account", "Closes Account")  # in force
    assert found.draft is not None
    assert (found.draft.name, found.draft.triggerName) == (
        "Close Bank Account",
        "Closes Bank Account",
    )
    assert found.draft.attributes is None  # a draft lists only what changes
    # again: the existing draft is updated
    ops.update_type(rules, "closeAccount", filter_name="Closed Bank Account")
    found = definition(rules, "closeAccount")
    assert found.draft is not None
    assert (found.draft.name, found.draft.filterName) == (
        "Close Bank Account",
        "Closed Bank Account",
    )
    assert_valid(rules)


def test_update_back_to_the_approved_version_drops_the_draft(rules: Path) -> None:
    ops.update_type(rules, "closeAccount", name="Close Bank Account")
    change = ops.update_type(rules, "closeAccount", name="Close Account")
    assert "draft removed" in change.message
    assert type_file(rules, "closeAccount") == CLOSE_ACCOUNT


def test_update_with_nothing_new_writes_nothing(rules: Path) -> None:
    before = snapshot(rules)
    change = ops.update_type(rules, "applyLoan", name="Apply Loan")
    assert not change.written
    assert snapshot(rules) == before


def test_update_without_a_change_is_refused(rules: Path) -> None:
    refused(rules, lambda: ops.update_type(rules, "applyLoan"), "nothing to change")
    refused(
        rules, lambda: ops.update_attribute(rules, "depositCheque", "branch"), "nothing to change"
    )


def test_update_refuses_an_api_name_change(rules: Path) -> None:
    refused(
        rules,
        lambda: ops.update_type(rules, "applyLoan", api_name="applyForLoan"),
        "apiName 'applyLoan' cannot change",
    )


def test_update_refuses_a_name_change_of_a_used_approved_type(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(rules)
    code = main(["types", "update", str(rules), "depositCheque", "--name", "Pay In Cheque"])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot change name" in err
    assert f"{rules}/campaigns/cheques.yaml" in err
    assert "Traceback" not in err
    assert snapshot(rules) == before


@pytest.mark.parametrize(
    ("change", "member", "campaign"),
    [
        (
            lambda root: ops.update_type(root, "depositCheque", trigger_name="Pays In Cheque"),
            "triggerName",
            "cheques.yaml",
        ),
        (
            lambda root: ops.update_type(root, "depositCheque", primary_data_type="float"),
            "primaryAttribute",
            "cheques.yaml",
        ),
        (
            lambda root: ops.update_type(root, "openAccount", filter_name="Opened An Account"),
            "filterName",
            "accounts.yaml",
        ),
    ],
)
def test_update_refuses_frozen_members_of_used_types(
    rules: Path, change: Callable[[Path], object], member: str, campaign: str
) -> None:
    refused(rules, lambda: change(rules), f"cannot change {member}", campaign)


def test_update_of_a_used_type_description_goes_into_the_draft(rules: Path) -> None:
    ops.update_type(rules, "depositCheque", description="A cheque paid in")
    found = definition(rules, "depositCheque")
    assert found.status == "approved with draft"
    assert found.description == "A cheque deposited"
    assert found.pending().description == "A cheque paid in"
    assert_valid(rules)


def test_an_edit_keeps_comments_and_untouched_lines(rules: Path) -> None:
    ops.update_type(rules, "depositCheque", description="A cheque paid in")
    text = type_file(rules, "depositCheque")
    approved_part, _, draft_part = text.partition("draft:\n")
    assert approved_part == DEPOSIT.replace(
        "status: approved\n", "status: approved with draft\n"
    ).replace("# end of depositCheque\n", "")
    assert draft_part == "  description: A cheque paid in\n# end of depositCheque\n"


def test_unknown_type(rules: Path) -> None:
    error = refused(rules, lambda: ops.update_type(rules, "payCheque", name="X"), "no activity")
    assert "depositCheque (100001)" in str(error)


# --- approve and discard ---------------------------------------------------------------------


def test_approve_a_draft(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["types", "approve", str(rules), "applyLoan"]) == 0
    assert capsys.readouterr().err == (
        f"{rules}/{TYPES}/applyLoan.yaml: approved; trigger 'Applies For Loan' and filter "
        "'Applied For Loan' now exist\n"
    )
    assert type_file(rules, "applyLoan") == APPLY_LOAN.replace("draft", "approved")
    plan = load_plan(rules)
    assert plan.catalog.trigger("Applies For Loan") is not None


def test_approve_twice_is_refused(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["types", "approve", str(rules), "applyLoan"]) == 0
    before = snapshot(rules)
    assert main(["types", "approve", str(rules), "applyLoan"]) == 2
    assert "nothing to approve" in capsys.readouterr().err
    assert snapshot(rules) == before


def test_approve_applies_the_draft(rules: Path) -> None:
    ops.update_type(rules, "depositCheque", description="A cheque paid in")
    ops.add_attribute(rules, "depositCheque", api_name="channel", name="Channel")
    ops.update_attribute(rules, "depositCheque", "clearingDays", data_type="float")
    pending = definition(rules, "depositCheque").pending()
    change = ops.approve_type(rules, "depositCheque")
    assert "description, attributes now in force" in change.message
    found = definition(rules, "depositCheque")
    assert found == pending.model_copy(update={"status": "approved"})
    text = type_file(rules, "depositCheque")
    assert "draft:" not in text
    assert text.startswith("# Cheques paid in at a branch or by app.\nid: 100001\n")
    assert "triggerName: Deposits Cheque   # used by campaigns/cheques.yaml\n" in text
    assert text.endswith("# end of depositCheque\n")
    assert_valid(rules)


def test_approve_promotes_an_attribute_marked_primary(rules: Path) -> None:
    path = rules / TYPES / "closeAccount.yaml"
    path.write_text(
        CLOSE_ACCOUNT.replace("status: approved", "status: approved with draft")
        + "draft:\n  attributes:\n    - apiName: balance\n      name: Balance\n"
        "      dataType: currency\n      isPrimary: true\n"
        "    - apiName: reason\n      name: Reason\n"
    )
    pending = definition(rules, "closeAccount").pending()
    ops.approve_type(rules, "closeAccount")
    found = definition(rules, "closeAccount")
    assert found == pending.model_copy(update={"status": "approved"})
    assert found.primaryAttribute.apiName == "balance"
    assert_valid(rules)


def test_approve_is_refused_when_a_campaign_would_break(rules: Path) -> None:
    ops.remove_attribute(rules, "depositCheque", "branch")  # in the draft: nothing breaks yet
    assert_valid(rules)
    refused(
        rules,
        lambda: ops.approve_type(rules, "depositCheque"),
        "would not validate",
        "cheques.yaml: triggers[0].constraints[1].attribute: 'branch' is not an attribute",
    )


def test_discard_draft(rules: Path) -> None:
    ops.update_type(rules, "depositCheque", description="A cheque paid in")
    ops.add_attribute(rules, "depositCheque", api_name="channel", name="Channel")
    change = ops.discard_draft(rules, "depositCheque")
    assert "draft discarded" in change.message
    assert type_file(rules, "depositCheque") == DEPOSIT
    assert_valid(rules)


def test_discard_draft_of_a_draft_points_to_delete(rules: Path) -> None:
    refused(rules, lambda: ops.discard_draft(rules, "applyLoan"), "use `types delete`")


def test_discard_draft_without_a_draft(rules: Path) -> None:
    refused(rules, lambda: ops.discard_draft(rules, "closeAccount"), "no draft to discard")


# --- delete ----------------------------------------------------------------------------------


def test_delete_an_unused_type(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["types", "delete", str(rules), "closeAccount"]) == 0
    assert "deleted activity type 100003 (closeAccount)" in capsys.readouterr().err
    assert not (rules / TYPES / "closeAccount.yaml").exists()
    assert_valid(rules)


def test_delete_refuses_a_type_used_by_an_active_campaign(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(rules)
    assert main(["types", "delete", str(rules), "depositcheque"]) == 2
    err = capsys.readouterr().err
    assert f"used by active campaign(s) {rules}/campaigns/cheques.yaml" in err
    assert snapshot(rules) == before


def test_delete_refuses_a_type_used_by_an_inactive_campaign(rules: Path) -> None:
    refused(
        rules,
        lambda: ops.delete_type(rules, "openAccount"),
        "inactive campaign(s)",
        "accounts.yaml",
        "would no longer validate",
    )


# --- attributes ------------------------------------------------------------------------------


def test_add_attribute_to_a_draft_type(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "types",
            "attributes",
            "add",
            str(rules),
            "applyLoan",
            "--api-name",
            "termMonths",
            "--name",
            "Term Months",
            "--data-type",
            "integer",
        ]
    )
    assert code == 0
    assert "attribute 'termMonths' added" in capsys.readouterr().err
    assert type_file(rules, "applyLoan").endswith(
        "attributes:\n  - apiName: termMonths\n    name: Term Months\n    dataType: integer\n"
    )
    assert_valid(rules)


def test_add_attribute_to_an_approved_type_lists_all_in_the_draft(rules: Path) -> None:
    ops.add_attribute(rules, "depositCheque", api_name="channel", name="Channel")
    found = definition(rules, "depositCheque")
    assert [a.apiName for a in found.attributes] == ["branch", "clearingDays"]
    assert found.draft is not None and found.draft.attributes is not None
    assert [a.apiName for a in found.draft.attributes] == ["branch", "clearingDays", "channel"]
    assert_valid(rules)


def test_the_21st_attribute_is_refused(rules: Path) -> None:
    twenty = "".join(f"  - apiName: extra{n}\n    name: Extra {n}\n" for n in range(20))
    (rules / TYPES / "applyLoan.yaml").write_text(
        APPLY_LOAN.replace("attributes: []\n", "attributes:\n" + twenty)
    )
    assert_valid(rules)
    refused(
        rules,
        lambda: ops.add_attribute(rules, "applyLoan", api_name="extra20", name="Extra 20"),
        "21 secondary attributes; at most 20 are allowed",
    )


def test_a_duplicate_attribute_api_name_is_refused(rules: Path) -> None:
    refused(
        rules,
        lambda: ops.add_attribute(rules, "depositCheque", api_name="branch", name="Agency"),
        "draft.attributes[2].apiName: 'branch' is also attributes[0]",
    )


def test_update_attribute_data_type_of_an_approved_type(rules: Path) -> None:
    change = ops.update_attribute(rules, "depositCheque", "Clearing Days", data_type="float")
    assert "attribute 'clearingDays' updated" in change.message
    found = definition(rules, "depositCheque")
    assert found.attributes[1].dataType == "integer"  # in force until approved
    assert found.pending().attributes[1].dataType == "float"
    assert_valid(rules)


def test_remove_attribute(rules: Path) -> None:
    ops.remove_attribute(rules, "closeAccount", "balance")
    found = definition(rules, "closeAccount")
    assert found.draft is not None and found.draft.attributes == []
    ops.approve_type(rules, "closeAccount")
    assert definition(rules, "closeAccount").attributes == []
    assert_valid(rules)


def test_remove_attribute_keeps_the_comments_of_the_others(rules: Path) -> None:
    path = rules / TYPES / "applyLoan.yaml"
    path.write_text(
        APPLY_LOAN.replace(
            "attributes: []\n",
            "attributes:\n"
            "  # first\n  - apiName: a\n    name: A\n"
            "  # second\n  - apiName: b\n    name: B  # bee\n"
            "  # third\n  - apiName: c\n    name: C\n"
            "# end\n",
        )
    )
    ops.remove_attribute(rules, "applyLoan", "b")
    assert type_file(rules, "applyLoan").endswith(
        "attributes:\n"
        "  # first\n  - apiName: a\n    name: A\n"
        "  # third\n  - apiName: c\n    name: C\n"
        "# end\n"
    )
    ops.remove_attribute(rules, "applyLoan", "c")
    assert type_file(rules, "applyLoan").endswith(
        "attributes:\n  # first\n  - apiName: a\n    name: A\n# end\n"
    )


def test_remove_unknown_attribute(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(rules)
    assert main(["types", "attributes", "remove", str(rules), "depositCheque", "colour"]) == 2
    err = capsys.readouterr().err
    assert "has no attribute 'colour'; its secondary attributes: branch, clearingDays" in err
    assert snapshot(rules) == before


def test_the_primary_is_not_a_secondary_attribute(rules: Path) -> None:
    refused(
        rules,
        lambda: ops.update_attribute(rules, "closeAccount", "reason", name="Why"),
        "is the primary attribute",
        "--primary-",
    )


# --- list, show, the directory as a whole ----------------------------------------------------


def test_list(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ops.add_attribute(rules, "closeAccount", api_name="branch", name="Branch")
    assert main(["types", "list", str(rules)]) == 0
    lines = capsys.readouterr().out.splitlines()
    cells = [re.split(r"\s{2,}", line) for line in lines]
    assert cells[0] == [
        "ID",
        "API NAME",
        "NAME",
        "STATUS",
        "TRIGGER",
        "FILTER",
        "ATTRS",
        "USED BY",
    ]
    assert cells[3] == [
        "100003",
        "closeAccount",
        "Close Account",
        "approved with draft",
        "Closes Account",
        "Closed Account",
        "1 -> 2",
        "-",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["100001", "100002", "100003", "100004"]
    assert lines[1].split()[-2:] == ["2", "cheques.yaml"]
    assert lines[2].endswith("accounts.yaml (inactive)")


def test_show(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["types", "show", "--file", str(rules), "100001"]) == 0
    assert capsys.readouterr().out == DEPOSIT


def test_no_temporary_file_is_left(rules: Path) -> None:
    ops.update_type(rules, "depositCheque", description="A cheque paid in")
    ops.approve_type(rules, "applyLoan")
    assert sorted(p.name for p in (rules / TYPES).iterdir()) == [
        "applyLoan.yaml",
        "closeAccount.yaml",
        "depositCheque.yaml",
        "openAccount.yaml",
    ]


def test_the_edited_directory_passes_python_m_streams_validate(rules: Path) -> None:
    ops.create_type(
        rules,
        api_name="withdrawCash",
        name="Withdraw Cash",
        trigger_name="Withdraws Cash",
        filter_name="Withdrew Cash",
        primary_api_name="amount",
        primary_name="Amount",
    )
    ops.add_attribute(rules, "withdrawCash", api_name="atm", name="ATM")
    ops.approve_type(rules, "withdrawCash")
    ops.update_type(rules, "withdrawCash", description="Cash taken out")
    ops.remove_attribute(rules, "depositCheque", "clearingDays")
    ops.approve_type(rules, "depositCheque")
    ops.delete_type(rules, "closeAccount")
    result = subprocess.run(
        [sys.executable, "-m", "streams", "validate", str(rules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "valid: 4 custom activity types, 2 campaigns" in result.stderr


# --- promoting an attribute, both versions side by side, the standard types ------------------


def test_promoting_a_secondary_attribute_demotes_the_primary(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Marketo's way; it used to be refused as "'balance' is also the primary attribute"."""
    code = main(
        ["types", "attributes", "update", str(rules), "closeAccount", "balance", "--primary"]
    )
    assert code == 0, capsys.readouterr().err
    pending = definition(rules, "closeAccount").pending()
    assert pending.primaryAttribute.apiName == "balance"
    assert [a.apiName for a in pending.attributes] == ["reason"]
    assert definition(rules, "closeAccount").primaryAttribute.apiName == "reason"  # approved
    assert_valid(rules)
    ops.approve_type(rules, "closeAccount")
    assert definition(rules, "closeAccount").primaryAttribute.apiName == "balance"


def test_update_naming_a_secondary_as_primary_promotes_it(rules: Path) -> None:
    ops.add_attribute(rules, "applyLoan", api_name="term", name="Term", data_type="integer")
    ops.update_type(rules, "applyLoan", primary_api_name="term")
    found = definition(rules, "applyLoan")  # a draft type: edited in place
    assert found.primaryAttribute.apiName == "term"
    assert [a.apiName for a in found.attributes] == ["amount"]
    assert_valid(rules)


def test_promoting_on_a_used_type_is_refused_naming_the_campaign(rules: Path) -> None:
    refused(
        rules,
        lambda: ops.promote_attribute(rules, "depositCheque", "branch"),
        "cannot change primaryAttribute",
        "cheques.yaml",
    )


def test_show_puts_the_version_in_force_next_to_the_draft(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ops.update_type(rules, "closeAccount", description="Closed by the customer")
    capsys.readouterr()
    assert main(["types", "show", str(rules), "closeAccount"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "status approved with draft" in lines[0]
    (description,) = [line for line in lines if "description" in line]
    assert description.startswith("*") and description.endswith("Closed by the customer")
    (trigger,) = [line for line in lines if "triggerName" in line]
    assert not trigger.startswith("*") and trigger.count("Closes Account") == 2


def test_list_all_shows_the_standard_types_offline(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["types", "list", "--all", str(rules)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line) for line in lines[1:]}
    assert rows["1"][3:6] == ["standard", "Visits Web Page", "Visited Web Page"]
    assert rows["400"][4] == "Performs Mobile App Action"
    assert "100001" in rows
    assert main(["types", "list", str(rules)]) == 0
    assert "standard" not in capsys.readouterr().out
