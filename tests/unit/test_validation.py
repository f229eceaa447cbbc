"""Every validation rule of activity-types.md and campaigns.md, one test per rule.

Each test writes a small rules directory (YAML text, as a user would) into tmp_path and runs
`load_plan`, which raises `RulesError` listing every problem as `Problem(file, field,
message)`; a few go through `python -m streams validate DIR` (the CLI's `main`) to check the
exit code and the `file: field: message` lines on stderr.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.cli.main import main
from streams.engine.compiler import Plan, load_plan
from streams.engine.problems import Problem, RulesError

# --- building rules directories ------------------------------------------------------------


def q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


ATTRIBUTES = """\
attributes:
  - apiName: numberOfAttendees
    name: Number of Attendees
    dataType: integer
  - apiName: conferenceDate
    name: Conference Date
    dataType: datetime
  - apiName: virtual
    name: Virtual
    dataType: boolean
"""


def type_yaml(
    *,
    id: int = 100001,
    api: str = "attendConference",
    name: str = "Attend Conference",
    trigger: str = "Attends Conference",
    filter: str = "Attended Conference",
    status: str = "approved",
    primary: str = "conferenceName",
    primary_name: str = "Conference Name",
    body: str = ATTRIBUTES,
) -> str:
    return (
        f"id: {id}\n"
        f"apiName: {q(api)}\n"
        f"name: {q(name)}\n"
        f"triggerName: {q(trigger)}\n"
        f"filterName: {q(filter)}\n"
        f"status: {status}\n"
        "primaryAttribute:\n"
        f"  apiName: {q(primary)}\n"
        f"  name: {q(primary_name)}\n"
        "  dataType: string\n"
    ) + body


def numbered_type(n: int, **overrides: object) -> str:
    """The n-th of a family of distinct valid approved types."""
    values: dict[str, object] = {
        "id": 100000 + n,
        "api": f"custom{n}",
        "name": f"Custom {n}",
        "trigger": f"Does Custom {n}",
        "filter": f"Did Custom {n}",
        "primary": "label",
        "primary_name": "Label",
        "body": "",
    }
    values.update(overrides)
    return type_yaml(**values)


DRAFT_TYPE = """\
id: 100002
apiName: watchWebinar
name: Watch Webinar
triggerName: Watches Webinar
filterName: Watched Webinar
status: draft
primaryAttribute:
  apiName: webinarName
  name: Webinar Name
"""

SIMPLE_CAMPAIGN = """\
id: 2001
name: Conference follow-up
triggers:
  - trigger: Attends Conference
"""


def write_rules(
    root: Path,
    types: dict[str, str] | None = None,
    campaigns: dict[str, str] | None = None,
) -> Path:
    (root / "activity-types").mkdir(parents=True, exist_ok=True)
    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    for file_name, text in (types or {}).items():
        (root / "activity-types" / file_name).write_text(text, encoding="utf-8")
    for file_name, text in (campaigns or {}).items():
        (root / "campaigns" / file_name).write_text(text, encoding="utf-8")
    return root


def rules_with_campaign(root: Path, campaign: str) -> Path:
    """The approved type `attendConference`, the draft `watchWebinar` and one campaign."""
    return write_rules(
        root, {"attend.yaml": type_yaml(), "webinar.yaml": DRAFT_TYPE}, {"c.yaml": campaign}
    )


def problems_of(root: Path, **kwargs: int) -> list[Problem]:
    with pytest.raises(RulesError) as raised:
        load_plan(root, **kwargs)
    assert raised.value.problems, "RulesError without problems"
    return raised.value.problems


def assert_problem(
    problems: list[Problem], file: str, field: str | None, *fragments: str
) -> Problem:
    """Exactly one problem names `file` (a path suffix) and `field`; its message holds every
    fragment (case-insensitively)."""
    found = [p for p in problems if p.file.endswith(file) and p.field == field]
    assert len(found) == 1, f"expected one problem at {file}: {field}; got {problems}"
    message = found[0].message.lower()
    for fragment in fragments:
        assert fragment.lower() in message, f"{fragment!r} not in {found[0]}"
    return found[0]


def assert_valid(root: Path, **kwargs: int) -> Plan:
    try:
        return load_plan(root, **kwargs)
    except RulesError as exc:  # pragma: no cover - shows the problems when it fails
        pytest.fail("expected a valid rules directory, got:\n" + str(exc))


@pytest.fixture(autouse=True)
def _no_streams_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI reads STREAMS_* settings from the environment: start from none."""
    for name in list(os.environ):
        if name.startswith("STREAMS_"):
            monkeypatch.delenv(name)
    yield


def validate_cli(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    code = main(["validate", str(root)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


# --- the baseline is valid -----------------------------------------------------------------


def test_valid_directory_loads_and_validate_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = rules_with_campaign(tmp_path / "rules", SIMPLE_CAMPAIGN)
    plan = assert_valid(root)
    assert [c.id for c in plan.campaigns] == [2001]
    assert 100001 in plan.catalog.types
    assert 100002 not in plan.catalog.types, "a draft yields no type in force"
    code, out, err = validate_cli(root, capsys)
    assert code == 0, err
    assert out == ""


def test_empty_rules_directory_is_valid(tmp_path: Path) -> None:
    plan = assert_valid(write_rules(tmp_path / "rules"))
    assert plan.campaigns == ()


# --- activity types: id --------------------------------------------------------------------


@pytest.mark.parametrize(("type_id", "valid"), [(99999, False), (1, False), (100000, True)])
def test_type_id_is_at_least_100000(tmp_path: Path, type_id: int, valid: bool) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(id=type_id)})
    if valid:
        assert_valid(root)
    else:
        assert_problem(problems_of(root), "activity-types/t.yaml", "id", str(type_id))


def test_type_id_is_unique(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        {"a.yaml": numbered_type(1), "b.yaml": numbered_type(2, id=100001)},
    )
    problems = problems_of(root)
    ids = [p for p in problems if p.field == "id"]
    assert len(ids) == 1, problems
    assert ids[0].file.endswith(("activity-types/a.yaml", "activity-types/b.yaml"))
    assert "100001" in ids[0].message


def test_type_id_duplicate_reported_even_when_the_other_file_has_a_problem(
    tmp_path: Path,
) -> None:
    """Regression (ba7aa57): the duplicate was checked against the types without problems
    only, so it went unreported when the first file had a problem of its own."""
    root = write_rules(
        tmp_path,
        {
            "a.yaml": numbered_type(1, name="Custom 1!"),  # a bad name: its own problem
            "b.yaml": numbered_type(2, id=100001),
        },
    )
    problems = problems_of(root)
    assert_problem(problems, "activity-types/a.yaml", "name")
    assert [p for p in problems if p.field == "id"], f"duplicate id not reported: {problems}"


# --- activity types: apiName ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_name", "valid"),
    [
        pytest.param("attend_conference", False, id="underscore"),
        pytest.param("attend-conference", False, id="dash"),
        pytest.param("attend conference", False, id="space"),
        pytest.param("", False, id="empty"),
        pytest.param("a" * 256, False, id="256-chars"),
        pytest.param("attendConférence", False, id="non-ascii-letter"),
        pytest.param("a" * 255, True, id="255-chars"),
        pytest.param("x", True, id="1-char"),
        pytest.param("attendConference2026", True, id="letters-and-digits"),
    ],
)
def test_type_api_name_letters_and_digits_1_to_255(
    tmp_path: Path, api_name: str, valid: bool
) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(api=api_name)})
    if valid:
        assert_valid(root)
    else:
        assert_problem(problems_of(root), "activity-types/t.yaml", "apiName")


def test_type_api_name_unique_case_insensitively(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        {
            "a.yaml": numbered_type(1, api="depositCheque"),
            "b.yaml": numbered_type(2, api="DEPOSITcheque"),
        },
    )
    problems = problems_of(root)
    found = [p for p in problems if p.field == "apiName"]
    assert len(found) == 1, problems
    assert found[0].file.endswith("b.yaml") or found[0].file.endswith("a.yaml")


# --- activity types: name ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("Attend Conference!", False, id="punctuation"),
        pytest.param("Attend-Conference", False, id="dash"),
        pytest.param("2026 42", False, id="no-letter"),
        pytest.param("_ _", False, id="only-underscores"),
        pytest.param("Attend_Conference 2026", True, id="letters-digits-spaces-underscores"),
        pytest.param("X", True, id="one-letter"),
        pytest.param("Visite du café", True, id="accented-letters"),
        pytest.param("Посещение 2026", True, id="cyrillic"),
        pytest.param("展示会に参加", True, id="japanese"),
        pytest.param("Café ☕", False, id="a-symbol"),
    ],
)
def test_type_name_charset_with_a_letter(tmp_path: Path, name: str, valid: bool) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(name=name)})
    if valid:
        assert_valid(root)
    else:
        assert_problem(problems_of(root), "activity-types/t.yaml", "name")


def test_type_name_is_unique(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        {
            "a.yaml": numbered_type(1, name="Deposit Cheque"),
            "b.yaml": numbered_type(2, name="Deposit Cheque"),
        },
    )
    problems = problems_of(root)
    found = [p for p in problems if p.field == "name"]
    assert len(found) == 1, problems


# --- activity types: triggerName / filterName ----------------------------------------------


@pytest.mark.parametrize("member", ["triggerName", "filterName"])
def test_trigger_and_filter_names_are_required(tmp_path: Path, member: str) -> None:
    text = "\n".join(line for line in type_yaml().splitlines() if not line.startswith(f"{member}:"))
    root = write_rules(tmp_path, {"t.yaml": text + "\n"})
    assert_problem(problems_of(root), "activity-types/t.yaml", member, "required")


@pytest.mark.parametrize(("member", "key"), [("triggerName", "trigger"), ("filterName", "filter")])
@pytest.mark.parametrize("blank", ["", "   "])
def test_trigger_and_filter_names_are_not_empty(
    tmp_path: Path, member: str, key: str, blank: str
) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(**{key: blank})})
    assert_problem(problems_of(root), "activity-types/t.yaml", member)


@pytest.mark.parametrize(
    ("member", "key", "taken"),
    [
        pytest.param("triggerName", "trigger", "Visits Web Page", id="trigger=standard-trigger"),
        pytest.param("triggerName", "trigger", "visits web page", id="trigger=standard-any-case"),
        pytest.param("filterName", "filter", "Visited Web Page", id="filter=standard-filter"),
        pytest.param("triggerName", "trigger", "Visited Web Page", id="trigger=standard-filter"),
        pytest.param("filterName", "filter", "Person is Created", id="filter=standard-trigger"),
        pytest.param(
            "triggerName", "trigger", "Performs Mobile App Action", id="trigger=mobile-trigger"
        ),
        pytest.param("filterName", "filter", "Attends Conference", id="filter=own-trigger"),
    ],
)
def test_trigger_and_filter_names_unique_across_all_types_incl_standard(
    tmp_path: Path, member: str, key: str, taken: str
) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(**{key: taken})})
    assert_problem(problems_of(root), "activity-types/t.yaml", member)


@pytest.mark.parametrize(
    ("member", "other"),
    [
        pytest.param("trigger", "trigger", id="trigger=other-trigger"),
        pytest.param("trigger", "filter", id="trigger=other-filter"),
        pytest.param("filter", "filter", id="filter=other-filter"),
        pytest.param("filter", "trigger", id="filter=other-trigger"),
    ],
)
def test_trigger_and_filter_names_unique_across_custom_types(
    tmp_path: Path, member: str, other: str
) -> None:
    taken = "Shared Name"
    root = write_rules(
        tmp_path,
        {
            "a.yaml": numbered_type(1, **{other: taken}),
            "b.yaml": numbered_type(2, **{member: taken}),
        },
    )
    problems = problems_of(root)
    field = f"{member}Name"
    found = [p for p in problems if p.field in ("triggerName", "filterName")]
    assert len(found) == 1, problems
    assert found[0].file.endswith(("a.yaml", "b.yaml"))
    if found[0].file.endswith("b.yaml"):
        assert found[0].field == field


# --- activity types: primaryAttribute and dataType -----------------------------------------


def test_primary_attribute_is_required(tmp_path: Path) -> None:
    text = """\
id: 100001
apiName: attendConference
name: Attend Conference
triggerName: Attends Conference
filterName: Attended Conference
status: approved
attributes: []
"""
    root = write_rules(tmp_path, {"t.yaml": text})
    assert_problem(problems_of(root), "activity-types/t.yaml", "primaryAttribute", "required")


@pytest.mark.parametrize(
    ("line", "member"),
    [('  apiName: "conferenceName"\n', "apiName"), ('  name: "Conference Name"\n', "name")],
)
def test_primary_attribute_needs_api_name_and_name(tmp_path: Path, line: str, member: str) -> None:
    text = type_yaml()
    assert line in text
    root = write_rules(tmp_path, {"t.yaml": text.replace(line, "", 1)})
    assert_problem(
        problems_of(root), "activity-types/t.yaml", f"primaryAttribute.{member}", "required"
    )


def test_primary_data_type_defaults_to_string(tmp_path: Path) -> None:
    text = type_yaml().replace("  dataType: string\n", "", 1)
    plan = assert_valid(write_rules(tmp_path, {"t.yaml": text}))
    assert plan.catalog.types[100001].primary.data_type == "string"


DATA_TYPES = [
    "string", "boolean", "integer", "float", "link", "email", "currency", "date", "datetime",
    "phone", "text",
]  # fmt: skip


@pytest.mark.parametrize("data_type", DATA_TYPES)
def test_every_data_type_of_the_enumeration_is_accepted(tmp_path: Path, data_type: str) -> None:
    body = f"attributes:\n  - apiName: extra\n    name: Extra\n    dataType: {data_type}\n"
    plan = assert_valid(write_rules(tmp_path, {"t.yaml": type_yaml(body=body)}))
    assert plan.catalog.types[100001].attributes[0].data_type == data_type


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            "attributes:\n  - apiName: extra\n    name: Extra\n    dataType: number\n",
            "attributes[0].dataType",
            id="secondary",
        ),
        pytest.param(
            "attributes:\n  - apiName: a\n    name: A\n  - apiName: b\n    name: B\n"
            "    dataType: String\n",
            "attributes[1].dataType",
            id="secondary-wrong-case",
        ),
    ],
)
def test_data_type_outside_the_enumeration(tmp_path: Path, body: str, field: str) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(body=body)})
    assert_problem(problems_of(root), "activity-types/t.yaml", field)


def test_primary_data_type_outside_the_enumeration(tmp_path: Path) -> None:
    text = type_yaml().replace("  dataType: string\n", "  dataType: varchar\n", 1)
    root = write_rules(tmp_path, {"t.yaml": text})
    assert_problem(problems_of(root), "activity-types/t.yaml", "primaryAttribute.dataType")


# --- activity types: secondary attributes --------------------------------------------------


def attributes_body(count: int) -> str:
    if count == 0:
        return "attributes: []\n"
    return "attributes:\n" + "".join(
        f"  - apiName: attr{i}\n    name: Attribute {i}\n    dataType: string\n"
        for i in range(count)
    )


@pytest.mark.parametrize(("count", "valid"), [(0, True), (20, True), (21, False)])
def test_at_most_20_secondary_attributes(tmp_path: Path, count: int, valid: bool) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(body=attributes_body(count))})
    if valid:
        plan = assert_valid(root)
        assert len(plan.catalog.types[100001].attributes) == count
    else:
        assert_problem(problems_of(root), "activity-types/t.yaml", "attributes", "20")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            "attributes:\n  - apiName: size\n    name: Size\n  - apiName: size\n    name: Size 2\n",
            "attributes[1].apiName",
            id="two-secondaries",
        ),
        pytest.param(
            "attributes:\n  - apiName: conferenceName\n    name: Other Name\n",
            "attributes[0].apiName",
            id="same-as-primary",
        ),
        pytest.param(
            "attributes:\n  - apiName: my_size\n    name: Size\n",
            "attributes[0].apiName",
            id="not-letters-and-digits",
        ),
    ],
)
def test_attribute_api_names_unique_and_distinct_from_primary(
    tmp_path: Path, body: str, field: str
) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(body=body)})
    assert_problem(problems_of(root), "activity-types/t.yaml", field)


# --- activity types: isPrimary and drafts --------------------------------------------------


def test_is_primary_outside_a_draft_is_refused(tmp_path: Path) -> None:
    body = (
        "attributes:\n  - apiName: size\n    name: Size\n"
        "  - apiName: colour\n    name: Colour\n    isPrimary: true\n"
    )
    root = write_rules(tmp_path, {"t.yaml": type_yaml(body=body)})
    assert_problem(problems_of(root), "activity-types/t.yaml", "attributes[1].isPrimary")


PROMOTING_DRAFT = """\
draft:
  attributes:
    - apiName: numberOfAttendees
      name: Number of Attendees
      dataType: integer
      isPrimary: true
    - apiName: conferenceName
      name: Conference Name
"""


def test_a_draft_may_promote_an_attribute_when_the_old_primary_is_demoted(
    tmp_path: Path,
) -> None:
    text = type_yaml(status="approved with draft") + PROMOTING_DRAFT
    plan = assert_valid(write_rules(tmp_path, {"t.yaml": text}))
    in_force = plan.catalog.types[100001]
    assert in_force.primary.api_name == "conferenceName", "the approved version stays in force"


def test_a_draft_promoting_without_demoting_the_old_primary_is_refused(tmp_path: Path) -> None:
    draft = """\
draft:
  attributes:
    - apiName: numberOfAttendees
      name: Number of Attendees
      dataType: integer
      isPrimary: true
"""
    root = write_rules(tmp_path, {"t.yaml": type_yaml(status="approved with draft") + draft})
    problems = problems_of(root)
    found = [p for p in problems if p.file.endswith("t.yaml") and "draft" in (p.field or "")]
    assert found, problems
    assert any("conferenceName" in p.message for p in found), found


# --- activity types: status and draft consistency ------------------------------------------


@pytest.mark.parametrize(
    ("status", "draft", "valid"),
    [
        pytest.param("approved with draft", "", False, id="approved-with-draft-without-draft"),
        pytest.param("approved", "draft:\n  name: Go To Conference\n", False, id="approved+draft"),
        pytest.param("draft", "draft:\n  name: Go To Conference\n", False, id="draft+draft"),
        pytest.param(
            "approved with draft", "draft:\n  name: Go To Conference\n", True, id="consistent"
        ),
        pytest.param("draft", "", True, id="plain-draft"),
    ],
)
def test_status_and_draft_are_consistent(
    tmp_path: Path, status: str, draft: str, valid: bool
) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(status=q(status)) + draft})
    if valid:
        assert_valid(root)
    else:
        assert_problem(problems_of(root), "activity-types/t.yaml", "draft")


def test_status_outside_the_enumeration(tmp_path: Path) -> None:
    root = write_rules(tmp_path, {"t.yaml": type_yaml(status="published")})
    assert_problem(problems_of(root), "activity-types/t.yaml", "status")


def test_the_approved_version_stays_in_force_until_the_draft_is_approved(
    tmp_path: Path,
) -> None:
    draft = "draft:\n  attributes:\n    - apiName: city\n      name: City\n"
    root = write_rules(tmp_path, {"t.yaml": type_yaml(status="approved with draft") + draft})
    in_force = assert_valid(root).catalog.types[100001]
    assert [a.api_name for a in in_force.attributes] == [
        "numberOfAttendees",
        "conferenceDate",
        "virtual",
    ]


# --- activity types: a used approved type keeps its names and primary ----------------------

USED_BY = """\
id: 2001
name: Uses the type
triggers:
  - trigger: Attends Conference
"""


@pytest.mark.parametrize(
    ("draft", "member"),
    [
        pytest.param("draft:\n  name: Go To Conference\n", "draft.name", id="name"),
        pytest.param(
            "draft:\n  triggerName: Goes To Conference\n", "draft.triggerName", id="triggerName"
        ),
        pytest.param(
            "draft:\n  filterName: Went To Conference\n", "draft.filterName", id="filterName"
        ),
        pytest.param(
            "draft:\n  primaryAttribute:\n    apiName: eventName\n    name: Event Name\n",
            "draft.primaryAttribute",
            id="primaryAttribute",
        ),
        pytest.param(PROMOTING_DRAFT, "draft.primaryAttribute", id="promoted-primary"),
    ],
)
def test_a_used_approved_type_cannot_change_names_or_primary(
    tmp_path: Path, draft: str, member: str
) -> None:
    """Regression (ba7aa57): the message looked the user up by a campaign id (KeyError)."""
    root = write_rules(
        tmp_path,
        {"t.yaml": type_yaml(status="approved with draft") + draft},
        {"uses.yaml": USED_BY},
    )
    assert_problem(problems_of(root), "activity-types/t.yaml", member, "uses.yaml")


def test_the_draft_of_a_used_type_may_change_secondary_attributes(tmp_path: Path) -> None:
    draft = "draft:\n  attributes:\n    - apiName: city\n      name: City\n"
    root = write_rules(
        tmp_path,
        {"t.yaml": type_yaml(status="approved with draft") + draft},
        {"uses.yaml": USED_BY},
    )
    assert_valid(root)


def test_the_draft_of_an_unused_type_may_change_its_names(tmp_path: Path) -> None:
    draft = "draft:\n  name: Go To Conference\n  triggerName: Goes To Conference\n"
    root = write_rules(tmp_path, {"t.yaml": type_yaml(status="approved with draft") + draft})
    plan = assert_valid(root)
    assert plan.catalog.trigger("Attends Conference") is not None, "approved names in force"


def test_the_draft_of_a_used_type_may_change_its_description(tmp_path: Path) -> None:
    draft = "draft:\n  description: Now with a description\n"
    root = write_rules(
        tmp_path,
        {"t.yaml": type_yaml(status="approved with draft") + draft},
        {"uses.yaml": USED_BY},
    )
    assert_valid(root)


# --- activity types: at most 10 custom types -----------------------------------------------


def many_types(root: Path, count: int) -> Path:
    return write_rules(root, {f"t{n:02d}.yaml": numbered_type(n) for n in range(1, count + 1)})


def test_ten_custom_types_are_allowed(tmp_path: Path) -> None:
    plan = assert_valid(many_types(tmp_path, 10))
    assert len(plan.catalog.files) == 10


def test_an_eleventh_custom_type_is_refused(tmp_path: Path) -> None:
    problems = problems_of(many_types(tmp_path, 11))
    assert len(problems) == 1, problems
    assert "activity-types/" in problems[0].file
    assert "11" in problems[0].message and "10" in problems[0].message


def test_the_limit_names_the_type_that_broke_it_not_the_last_file(tmp_path: Path) -> None:
    """The newest type (highest id) breaks the limit, whatever its file is called."""
    root = many_types(tmp_path, 10)
    newest = numbered_type(11, api="aNewOne")
    (root / "activity-types" / "a-new-one.yaml").write_text(newest, encoding="utf-8")
    problems = problems_of(root)
    assert len(problems) == 1, problems
    assert problems[0].file.endswith("activity-types/a-new-one.yaml")
    assert "100011 (aNewOne)" in problems[0].message


def test_a_type_taking_a_used_trigger_name_is_blamed_alone(tmp_path: Path) -> None:
    """Not the older type that had the name first, and not its campaigns (knock-on)."""
    root = rules_with_campaign(tmp_path, SIMPLE_CAMPAIGN)
    taker = numbered_type(9, trigger="Attends Conference")
    (root / "activity-types" / "a-taker.yaml").write_text(taker, encoding="utf-8")
    problems = problems_of(root)
    assert len(problems) == 1, problems
    assert_problem(problems, "activity-types/a-taker.yaml", "triggerName", "already used")


def test_drafts_count_towards_the_custom_type_limit(tmp_path: Path) -> None:
    root = many_types(tmp_path, 10)
    (root / "activity-types" / "webinar.yaml").write_text(DRAFT_TYPE, encoding="utf-8")
    problems = problems_of(root)
    assert any("10" in p.message for p in problems), problems


def test_the_setting_raises_the_custom_type_limit(tmp_path: Path) -> None:
    root = many_types(tmp_path, 11)
    assert len(assert_valid(root, max_custom_types=11).catalog.files) == 11
    assert problems_of(root, max_custom_types=10)


def test_streams_max_custom_types_raises_the_limit_in_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = many_types(tmp_path / "rules", 11)
    code, _, err = validate_cli(root, capsys)
    assert code == 2
    assert any("activity-types/" in line for line in err), err
    monkeypatch.setenv("STREAMS_MAX_CUSTOM_TYPES", "11")
    code, out, err = validate_cli(root, capsys)
    assert code == 0, err
    assert out == ""


# --- campaigns -----------------------------------------------------------------------------

CAMPAIGN_CASES = [
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attend Conferences\n",
        "triggers[0].trigger",
        ("unknown", "Attend Conferences"),
        id="unknown-trigger",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attended Conference\n",
        "triggers[0].trigger",
        ("Attended Conference",),
        id="a-filter-name-used-as-trigger",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Watches Webinar\n",
        "triggers[0].trigger",
        ("approve",),
        id="trigger-of-a-draft-type",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - filter: Attends Conference\n",
        "filters.items[0].filter",
        ("Attends Conference",),
        id="unknown-filter",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - field: country\n      operator: is\n      value: France\n"
        "    - filter: Watched Webinar\n",
        "filters.items[1].filter",
        ("approve",),
        id="filter-of-a-draft-type",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: colour\n        operator: is\n        value: red\n",
        "triggers[0].constraints[0].attribute",
        ("colour",),
        id="unknown-attribute-on-trigger",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - filter: Attended Conference\n      constraints:\n"
        "        - operator: is\n          value: PyCon\n"
        "        - attribute: Colour\n          operator: is\n          value: red\n",
        "filters.items[0].constraints[1].attribute",
        ("Colour",),
        id="unknown-attribute-on-filter",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Visits Web Page\n    constraints:\n"
        "      - attribute: Action Type\n        operator: is\n        value: x\n",
        "triggers[0].constraints[0].attribute",
        ("Action Type",),
        id="attribute-of-another-standard-type",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - operator: greater than\n        value: PyCon\n",
        "triggers[0].constraints[0].operator",
        ("greater than", "string"),
        id="operator-not-for-string",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: numberOfAttendees\n        operator: contains\n        value: 1\n",
        "triggers[0].constraints[0].operator",
        ("contains", "integer"),
        id="operator-not-for-integer",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: virtual\n        operator: is not\n        value: true\n",
        "triggers[0].constraints[0].operator",
        ("is not", "boolean"),
        id="operator-not-for-boolean",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: conferenceDate\n        operator: greater than\n"
        "        value: 2026-01-01T00:00:00Z\n",
        "triggers[0].constraints[0].operator",
        ("greater than", "datetime"),
        id="operator-not-for-datetime",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: numberOfAttendees\n        operator: at least\n        value: many\n",
        "triggers[0].constraints[0].value",
        ("many",),
        id="value-not-an-integer",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: numberOfAttendees\n        operator: is\n        values: [1, 2.5]\n",
        "triggers[0].constraints[0].values",
        ("2.5",),
        id="value-a-float-for-integer",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: virtual\n        operator: is\n        value: maybe\n",
        "triggers[0].constraints[0].value",
        ("maybe",),
        id="value-not-a-boolean",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: conferenceDate\n        operator: before\n"
        "        value: '2026-01-01T00:00:00'\n",
        "triggers[0].constraints[0].value",
        (),
        id="datetime-without-offset",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: numberOfAttendees\n        operator: between\n        values: [1]\n",
        "triggers[0].constraints[0].values",
        ("between",),
        id="between-one-value",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: numberOfAttendees\n        operator: between\n"
        "        values: [1, 2, 3]\n",
        "triggers[0].constraints[0].values",
        ("between",),
        id="between-three-values",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: conferenceDate\n        operator: in past\n"
        "        values: [1 days, 2 days]\n",
        "triggers[0].constraints[0].values",
        ("in past",),
        id="in-past-two-values",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: conferenceDate\n        operator: in past\n        values: []\n",
        "triggers[0].constraints[0].values",
        ("in past",),
        id="in-past-no-value",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: conferenceDate\n        operator: in past\n        value: yesterday\n",
        "triggers[0].constraints[0].value",
        ("yesterday",),
        id="in-past-not-a-duration",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - operator: is empty\n        value: x\n",
        "triggers[0].constraints[0].value",
        ("is empty",),
        id="is-empty-with-a-value",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - operator: is not empty\n        values: [a, b]\n",
        "triggers[0].constraints[0].values",
        ("is not empty",),
        id="is-not-empty-with-values",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - operator: is\n",
        "triggers[0].constraints[0].value",
        ("is",),
        id="is-without-a-value",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - field: country\n      operator: between\n      values: [1]\n",
        "filters.items[0].values",
        ("between",),
        id="field-between-one-value",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - field: score\n      operator: at least\n      value: lots\n",
        "filters.items[0].value",
        ("lots",),
        id="field-numeric-operator-non-number",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  logic: 1 and 3\n  items:\n    - filter: Attended Conference\n"
        "    - field: country\n      operator: is\n      value: France\n",
        "filters.logic",
        ("3",),
        id="logic-names-a-missing-item",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  logic: 0 or 1\n  items:\n    - filter: Attended Conference\n",
        "filters.logic",
        ("0",),
        id="logic-item-zero",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  logic: (1 and 2\n  items:\n    - filter: Attended Conference\n"
        "    - field: country\n      operator: is\n      value: France\n",
        "filters.logic",
        (),
        id="logic-unclosed-parenthesis",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  logic: 1 xor 2\n  items:\n    - filter: Attended Conference\n"
        "    - field: country\n      operator: is\n      value: France\n",
        "filters.logic",
        ("xor",),
        id="logic-unknown-word",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  logic: 1 2\n  items:\n    - filter: Attended Conference\n"
        "    - field: country\n      operator: is\n      value: France\n",
        "filters.logic",
        (),
        id="logic-two-items-no-operator",
    ),
    pytest.param(
        "id: 1\nname: C\nqualification: twice\ntriggers:\n  - trigger: Attends Conference\n",
        "qualification",
        ("twice",),
        id="qualification-unknown",
    ),
    pytest.param(
        "id: 1\nname: C\nqualification: once every fortnight\n"
        "triggers:\n  - trigger: Attends Conference\n",
        "qualification",
        ("fortnight",),
        id="qualification-bad-duration",
    ),
    pytest.param(
        "id: 1\nname: C\nqualification: once every 0 days\n"
        "triggers:\n  - trigger: Attends Conference\n",
        "qualification",
        (),
        id="qualification-zero-duration",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - filter: Attended Conference\n      window: 30 dayz\n",
        "filters.items[0].window",
        ("30 dayz",),
        id="window-bad-unit",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - filter: Attended Conference\n      window: thirty days\n",
        "filters.items[0].window",
        ("thirty",),
        id="window-not-a-number",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - filter: Attended Conference\n      window: 1 year\n",
        "filters.items[0].window",
        ("year",),
        id="window-years-are-not-a-unit",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - filter: Attended Conference\n      minTimes: 0\n",
        "filters.items[0].minTimes",
        (),
        id="min-times-zero",
    ),
    pytest.param(
        "id: 1\nname: C\nstatus: paused\ntriggers:\n  - trigger: Attends Conference\n",
        "status",
        (),
        id="status-unknown",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers: []\n",
        "triggers",
        (),
        id="no-trigger",
    ),
    pytest.param(
        "name: C\ntriggers:\n  - trigger: Attends Conference\n",
        "id",
        ("required",),
        id="id-missing",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraint:\n"
        "      - operator: is\n        value: PyCon\n",
        "triggers[0].constraint",
        (),
        id="typo-in-trigger",
    ),
    pytest.param(
        "id: 1\nname: C\nqualifcation: once\ntriggers:\n  - trigger: Attends Conference\n",
        "qualifcation",
        (),
        id="typo-top-level",
    ),
    pytest.param(
        "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
        "filters:\n  items:\n    - filter: Attended Conference\n      minTime: 2\n",
        "filters.items[0].minTime",
        (),
        id="typo-in-filter-item",
    ),
]


@pytest.mark.parametrize(("campaign", "field", "fragments"), CAMPAIGN_CASES)
def test_campaign_validation_rule(
    tmp_path: Path, campaign: str, field: str, fragments: tuple[str, ...]
) -> None:
    root = rules_with_campaign(tmp_path, campaign)
    assert_problem(problems_of(root), "campaigns/c.yaml", field, *fragments)


def test_campaign_values_that_do_coerce_are_valid(tmp_path: Path) -> None:
    """The positive side of the coercion rule: text digits for an integer, any-case booleans,
    a date-time with an offset, `value: X` for `values: [X]`, durations in every unit."""
    campaign = """\
id: 1
name: C
qualification: once every 2 weeks
triggers:
  - trigger: Attends Conference
    constraints:
      - attribute: Number of Attendees
        operator: between
        values: ["100", 2000]
      - attribute: virtual
        operator: is
        value: "TRUE"
      - attribute: conferenceDate
        operator: on or after
        value: "2026-01-01T00:00:00+07:00"
      - attribute: conferenceDate
        operator: in past
        value: 3 months
      - operator: is empty
filters:
  logic: not (1 or 2) and 3
  items:
    - filter: Attended Conference
      window: 90 minutes
    - filter: Visited Web Page
      window: 12 hours
      negate: true
    - field: score
      operator: between
      values: [1, 10]
"""
    plan = assert_valid(rules_with_campaign(tmp_path, campaign))
    assert [c.id for c in plan.campaigns] == [1]


def test_campaign_ids_are_unique(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        {"t.yaml": type_yaml()},
        {
            "a.yaml": "id: 7\nname: First\ntriggers:\n  - trigger: Attends Conference\n",
            "b.yaml": "id: 7\nname: Second\ntriggers:\n  - trigger: Attends Conference\n",
        },
    )
    problems = problems_of(root)
    found = [p for p in problems if p.field == "id"]
    assert len(found) == 1, problems
    assert "7" in found[0].message


def test_campaign_names_are_unique(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        {"t.yaml": type_yaml()},
        {
            "a.yaml": "id: 7\nname: Follow-up\ntriggers:\n  - trigger: Attends Conference\n",
            "b.yaml": "id: 8\nname: Follow-up\ntriggers:\n  - trigger: Attends Conference\n",
        },
    )
    problems = problems_of(root)
    found = [p for p in problems if p.field == "name"]
    assert len(found) == 1, problems
    assert "Follow-up" in found[0].message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    broken = (
        "id: 1\n"
        "name: C\n"
        "triggers:\n"
        "  - trigger: Attends Conference\n"
        "   constraints: [\n"  # line 5: bad indentation, unclosed flow sequence
    )
    problem = assert_problem(problems_of(rules_with_campaign(tmp_path, broken)), "c.yaml", None)
    assert "line 5" in problem.message


def test_yaml_syntax_error_in_a_type_names_the_line(tmp_path: Path) -> None:
    broken = type_yaml().replace("status: approved\n", 'status: "approved\n', 1)
    problems = problems_of(write_rules(tmp_path, {"t.yaml": broken}))
    problem = assert_problem(problems, "activity-types/t.yaml", None)
    assert "line " in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_is_a_problem(tmp_path: Path, text: str) -> None:
    problem = assert_problem(
        problems_of(rules_with_campaign(tmp_path, text)), "campaigns/c.yaml", None
    )
    assert "empty" in problem.message


@pytest.mark.parametrize("text", ["- id: 1\n", "just text\n", "42\n"])
def test_a_file_that_is_not_a_mapping_is_a_problem(tmp_path: Path, text: str) -> None:
    assert_problem(problems_of(rules_with_campaign(tmp_path, text)), "campaigns/c.yaml", None)


@pytest.mark.parametrize("folder", ["campaigns", "activity-types"])
def test_a_yml_file_is_a_problem(tmp_path: Path, folder: str) -> None:
    root = rules_with_campaign(tmp_path, SIMPLE_CAMPAIGN)
    text = SIMPLE_CAMPAIGN if folder == "campaigns" else numbered_type(5)
    (root / folder / "other.yml").write_text(text, encoding="utf-8")
    problems = problems_of(root)
    assert [p for p in problems if p.file.endswith(f"{folder}/other.yml")], problems


# --- through the CLI: exit code and `file: field: message` lines ---------------------------


def test_validate_prints_file_and_field_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = """\
id: 2001
name: Webinar
triggers:
  - trigger: Attends Conference
filters:
  items:
    - field: country
      operator: is
      value: France
    - field: score
      operator: bigger than
      value: 10
"""
    root = rules_with_campaign(tmp_path / "rules", campaign)
    code, out, err = validate_cli(root, capsys)
    assert code == 2
    assert out == ""
    prefix = f"{root}/campaigns/c.yaml: filters.items[1].operator: "
    lines = [line for line in err if line.startswith(prefix)]
    assert len(lines) == 1, err
    assert "bigger than" in lines[0]


@pytest.mark.parametrize(
    ("campaign", "field"),
    [
        pytest.param(
            "id: 1\nname: C\ntriggers:\n  - trigger: Watches Webinar\n",
            "triggers[0].trigger",
            id="draft-trigger",
        ),
        pytest.param(
            "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n    constraints:\n"
            "      - attribute: numberOfAttendees\n        operator: between\n"
            "        values: [1]\n",
            "triggers[0].constraints[0].values",
            id="between-arity",
        ),
        pytest.param(
            "id: 1\nname: C\ntriggers:\n  - trigger: Attends Conference\n"
            "filters:\n  logic: 1 or 2\n  items:\n    - filter: Attended Conference\n",
            "filters.logic",
            id="logic",
        ),
    ],
)
def test_validate_exits_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], campaign: str, field: str
) -> None:
    root = rules_with_campaign(tmp_path / "rules", campaign)
    code, out, err = validate_cli(root, capsys)
    assert code == 2
    assert out == ""
    assert any(line.startswith(f"{root}/campaigns/c.yaml: {field}: ") for line in err), err


def test_validate_names_a_type_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = attributes_body(2) + "  - apiName: attr0\n    name: Again\n"
    root = write_rules(tmp_path / "rules", {"t.yaml": type_yaml(body=body)})
    code, _, err = validate_cli(root, capsys)
    assert code == 2
    assert any(
        line.startswith(f"{root}/activity-types/t.yaml: attributes[2].apiName: ") for line in err
    ), err


def test_validate_yaml_error_line_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = rules_with_campaign(tmp_path / "rules", "id: 1\nname: [unclosed\n")
    code, out, err = validate_cli(root, capsys)
    assert code == 2
    assert out == ""
    assert any(line.startswith(f"{root}/campaigns/c.yaml: ") and "line" in line for line in err)


def test_every_problem_is_reported_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_rules(
        tmp_path / "rules",
        {"t.yaml": type_yaml(), "bad-type.yaml": numbered_type(3, api="bad_api")},
        {
            "a.yaml": "id: 1\nname: A\ntriggers:\n  - trigger: Nothing Like This\n",
            "b.yaml": "id: 2\nname: B\nqualification: sometimes\n"
            "triggers:\n  - trigger: Attends Conference\n    constraints:\n"
            "      - operator: greater than\n        value: 3\n",
            "c.yaml": "",
        },
    )
    problems = problems_of(root)
    assert_problem(problems, "activity-types/bad-type.yaml", "apiName")
    assert_problem(problems, "campaigns/a.yaml", "triggers[0].trigger")
    assert_problem(problems, "campaigns/b.yaml", "qualification")
    assert_problem(problems, "campaigns/b.yaml", "triggers[0].constraints[0].operator")
    assert_problem(problems, "campaigns/c.yaml", None, "empty")

    code, out, err = validate_cli(root, capsys)
    assert code == 2
    assert out == ""
    for expected in (
        f"{root}/activity-types/bad-type.yaml: apiName: ",
        f"{root}/campaigns/a.yaml: triggers[0].trigger: ",
        f"{root}/campaigns/b.yaml: qualification: ",
        f"{root}/campaigns/b.yaml: triggers[0].constraints[0].operator: ",
        f"{root}/campaigns/c.yaml: ",
    ):
        assert any(line.startswith(expected) for line in err), (expected, err)


def test_problems_behind_shape_errors_are_reported_in_the_same_run(tmp_path: Path) -> None:
    """An unknown key, `minTimes: 0` and `status: paused` used to hide a wrong operator, a
    bad value and a broken logic expression until they were fixed."""
    campaign = (
        "id: 1\nname: A\nstatus: paused\ncolour: red\n"
        "triggers:\n  - trigger: Attends Conference\n    constraints:\n"
        "      - attribute: numberOfAttendees\n        operator: at least\n"
        "        value: many\n"
        "      - operator: greater than\n        value: 3\n"
        "filters:\n  logic: 1 or 3\n  items:\n"
        "    - filter: Attended Conference\n      minTimes: 0\n"
    )
    problems = problems_of(rules_with_campaign(tmp_path, campaign))
    assert_problem(problems, "campaigns/c.yaml", "status")
    assert_problem(problems, "campaigns/c.yaml", "colour", "not a known member")
    assert_problem(problems, "campaigns/c.yaml", "filters.items[0].minTimes")
    assert_problem(problems, "campaigns/c.yaml", "triggers[0].constraints[0].value", "many")
    assert_problem(problems, "campaigns/c.yaml", "triggers[0].constraints[1].operator")
    assert_problem(problems, "campaigns/c.yaml", "filters.logic")


def test_validate_refuses_a_folder_that_is_not_a_rules_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped path used to be "valid: 0 custom activity types, 0 campaigns", exit 0: a
    CI step would pass on nothing."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.yaml").write_text("a: 1\n")
    code, _, err = validate_cli(tmp_path / "elsewhere", capsys)
    assert code == 2
    assert "neither activity-types/ nor campaigns/" in "\n".join(err)


def test_validate_on_a_missing_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = validate_cli(tmp_path / "nowhere", capsys)
    assert code == 2
    assert out == ""
    assert err
