"""`types`: the catalog operations of activity-types.md, as edits of the files in
`RULES_DIR/activity-types/`, so that a change to the catalog is a reviewed git commit.

Every command that changes a file re-validates the whole rules directory first and writes
nothing when it would not validate; it prints one line on stderr saying what changed where.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from streams import catalog
from streams.catalog import CatalogOpError, Change, TypeRow
from streams.cli.common import EXIT_OK, CommandError, error
from streams.engine.datatypes import DataType
from streams.engine.definitions import ActivityTypeDef, AttributeDef
from streams.settings import EngineSettings
from streams.text import counted

_DATA_TYPES = [d.value for d in DataType]
_DATA_TYPE_LIST = ", ".join(_DATA_TYPES)

if TYPE_CHECKING:
    Parsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _rules_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "rules_dir",
        type=Path,
        metavar="RULES_DIR",
        help="the rules directory (holds activity-types/ and campaigns/)",
    )


def _type(parser: argparse.ArgumentParser) -> None:
    _rules_dir(parser)
    parser.add_argument(
        "type", metavar="TYPE", help="the activity type: its apiName (any case) or its id"
    )


def _command(
    parsers: Parsers,
    name: str,
    help_text: str,
    description: str,
    run: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    parser = parsers.add_parser(name, help=help_text, description=description)
    parser.set_defaults(run=run)
    return parser


def register(commands: Parsers) -> None:
    group = commands.add_parser(
        "types",
        help="list, create, change, approve and delete custom activity types",
        description="Operations on the custom activity types of a rules directory, as "
        "edits of its activity-types/*.yaml files (comments and layout are kept). A change "
        "is written only if the whole directory still validates; a refusal exits 2 and "
        "writes nothing. Changes to an approved type go into its draft.",
    )
    parsers = group.add_subparsers(title="commands", metavar="COMMAND", required=True)

    parser = _command(
        parsers,
        "list",
        "the custom types: id, apiName, name, status, trigger, filter, attributes, users",
        "Print a table of the custom activity types of RULES_DIR, with the campaigns that "
        "use each one's trigger or filter; with --all, the standard types first.",
        run_list,
    )
    _rules_dir(parser)
    parser.add_argument(
        "--all",
        action="store_true",
        help="also the standard types (their trigger and filter names, offline)",
    )

    parser = _command(
        parsers,
        "show",
        "a type's approved version (in force) and its draft, side by side",
        "Print one activity type: each member of the version in force (approved) next to "
        "the version approving would put in force (its draft). --file prints the file.",
        run_show,
    )
    _type(parser)
    parser.add_argument("--file", action="store_true", help="print the YAML file as written")

    parser = _command(
        parsers,
        "create",
        "create a new type, as a draft",
        "Create activity-types/API_NAME.yaml, status draft: it yields no trigger and no "
        "filter until it is approved.",
        run_create,
    )
    _rules_dir(parser)
    parser.add_argument(
        "--api-name", required=True, help="apiName: letters and digits; it never changes"
    )
    parser.add_argument(
        "--name", required=True, help="display name: letters, digits, spaces, underscores"
    )
    parser.add_argument("--trigger-name", required=True, help="the name of its trigger")
    parser.add_argument("--filter-name", required=True, help="the name of its filter")
    parser.add_argument("--primary-api-name", required=True, help="the primary attribute's apiName")
    parser.add_argument("--primary-name", required=True, help="the primary attribute's name")
    parser.add_argument(
        "--primary-data-type",
        default="string",
        choices=_DATA_TYPES,
        metavar="DATA_TYPE",
        help=f"the primary attribute's dataType: {_DATA_TYPE_LIST} (default string)",
    )
    parser.add_argument("--primary-description", help="the primary attribute's description")
    parser.add_argument("--description", help="what the activity is")
    parser.add_argument(
        "--id",
        type=int,
        help="the type's id (default: one more than the highest custom id, at least 100000)",
    )

    parser = _command(
        parsers,
        "update",
        "change a type's names, description or primary attribute",
        "Change a type: in place on a draft; in its draft on an approved type (status "
        "'approved with draft', the approved version stays in force until approved). A type "
        "approved and used by a campaign keeps its names and primary attribute.",
        run_update,
    )
    _type(parser)
    parser.add_argument(
        "--api-name", help="refused unless it is the current apiName: an apiName never changes"
    )
    parser.add_argument("--name", help="new display name")
    parser.add_argument("--description", help="new description")
    parser.add_argument("--trigger-name", help="new trigger name")
    parser.add_argument("--filter-name", help="new filter name")
    parser.add_argument("--primary-api-name", help="new apiName of the primary attribute")
    parser.add_argument("--primary-name", help="new name of the primary attribute")
    parser.add_argument(
        "--primary-data-type",
        choices=_DATA_TYPES,
        metavar="DATA_TYPE",
        help=f"new dataType of the primary attribute: {_DATA_TYPE_LIST}",
    )
    parser.add_argument("--primary-description", help="new description of the primary attribute")

    parser = _command(
        parsers,
        "approve",
        "put a draft, or an approved type's draft, in force",
        "A draft becomes approved (its trigger and filter exist from then on); the draft of "
        "an approved type replaces the approved version. Refused when there is nothing to "
        "approve.",
        run_approve,
    )
    _type(parser)

    parser = _command(
        parsers,
        "discard-draft",
        "drop the pending draft of an approved type",
        "Remove the draft of a type 'approved with draft'; it returns to 'approved', "
        "unchanged. A type that is itself a draft is removed with `types delete`.",
        run_discard,
    )
    _type(parser)

    parser = _command(
        parsers,
        "delete",
        "delete a type's file",
        "Delete the file of a type. Refused while a campaign (active, or inactive since it "
        "would no longer validate) uses its trigger or filter.",
        run_delete,
    )
    _type(parser)

    attributes = parsers.add_parser(
        "attributes",
        help="add, change or remove secondary attributes",
        description="Secondary attributes of a type (at most 20). On an approved type the "
        "change goes into its draft.",
    )
    attribute_parsers = attributes.add_subparsers(
        title="commands", metavar="COMMAND", required=True
    )

    parser = _command(
        attribute_parsers,
        "add",
        "add a secondary attribute",
        "Add a secondary attribute at the end of the type's list.",
        run_attribute_add,
    )
    _type(parser)
    parser.add_argument("--api-name", required=True, help="the attribute's apiName")
    parser.add_argument("--name", required=True, help="the attribute's display name")
    parser.add_argument(
        "--data-type",
        default="string",
        choices=_DATA_TYPES,
        metavar="DATA_TYPE",
        help=f"the attribute's dataType: {_DATA_TYPE_LIST} (default string)",
    )
    parser.add_argument("--description", help="the attribute's description")

    parser = _command(
        attribute_parsers,
        "update",
        "change a secondary attribute",
        "Change a secondary attribute's name, dataType or description; its apiName stays. "
        "--primary makes it the primary attribute (the primary one is demoted), as Marketo "
        "does.",
        run_attribute_update,
    )
    _type(parser)
    parser.add_argument(
        "attribute", metavar="ATTR", help="the attribute: its apiName or name (any case)"
    )
    parser.add_argument("--name", help="new display name")
    parser.add_argument(
        "--data-type",
        choices=_DATA_TYPES,
        metavar="DATA_TYPE",
        help=f"new dataType: {_DATA_TYPE_LIST}",
    )
    parser.add_argument("--description", help="new description")
    parser.add_argument(
        "--primary",
        action="store_true",
        help="make it the primary attribute; the primary one becomes a secondary attribute",
    )

    parser = _command(
        attribute_parsers,
        "remove",
        "remove a secondary attribute",
        "Remove a secondary attribute. On an approved type the removal goes into the "
        "draft, and approving it is refused while a campaign's constraint names it.",
        run_attribute_remove,
    )
    _type(parser)
    parser.add_argument(
        "attribute", metavar="ATTR", help="the attribute: its apiName or name (any case)"
    )


def _max_types() -> int:
    return EngineSettings().max_custom_types


def _report(operation: Callable[[], Change]) -> int:
    """Run an operation: its one line on stderr, or its refusal (with the validation problems,
    one per line, as `validate` prints them) as exit 2."""
    try:
        change = operation()
    except CatalogOpError as exc:
        for problem in exc.problems:
            error(str(problem))
        raise CommandError(str(exc)) from None
    error(str(change))
    return EXIT_OK


def _table(rows: list[TypeRow]) -> list[str]:
    header = ("ID", "API NAME", "NAME", "STATUS", "TRIGGER", "FILTER", "ATTRS", "USED BY")
    lines = [header]
    for row in rows:
        attributes = str(row.attributes)
        if row.pending_attributes is not None:
            attributes += f" -> {row.pending_attributes}"
        lines.append(
            (
                str(row.id),
                row.api_name,
                row.name,
                row.status,
                row.trigger_name,
                row.filter_name,
                attributes,
                ", ".join(row.used_by) or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]


def run_list(args: argparse.Namespace) -> int:
    try:
        rows, problems = catalog.list_types(args.rules_dir, _max_types(), args.all)
    except CatalogOpError as exc:
        raise CommandError(str(exc)) from None
    for line in _table(rows):
        print(line)
    for problem in problems:
        error(str(problem))
    if problems:
        error(
            f"{args.rules_dir}: {counted(len(problems), 'problem')}; "
            "types whose file does not load are not listed"
        )
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    try:
        if args.file:
            _, text = catalog.show_type(args.rules_dir, args.type)
            sys.stdout.write(text)
            return EXIT_OK
        versions = catalog.type_versions(args.rules_dir, args.type)
    except CatalogOpError as exc:
        raise CommandError(str(exc)) from None
    for line in _side_by_side(versions):
        print(line)
    return EXIT_OK


def _attribute_text(attribute: AttributeDef) -> str:
    return f"{attribute.apiName} ({attribute.name}, {attribute.dataType.value})"


def _members(definition: ActivityTypeDef | None) -> dict[str, list[str]]:
    """Each member of one version as lines of text; a version that does not exist is '-'."""
    if definition is None:
        return {}
    return {
        "name": [definition.name],
        "description": [definition.description or ""],
        "triggerName": [definition.triggerName],
        "filterName": [definition.filterName],
        "primaryAttribute": [_attribute_text(definition.primaryAttribute)],
        "attributes": [_attribute_text(a) for a in definition.attributes] or ["(none)"],
    }


def _side_by_side(versions: catalog.Versions) -> list[str]:
    """MEMBER / IN FORCE / DRAFT, a `*` marking what approving would change."""
    left, right = _members(versions.in_force), _members(versions.pending)
    names = list(left or right)
    rows = [("", "MEMBER", "IN FORCE (approved)", "DRAFT (approve puts it in force)")]
    for name in names:
        old, new = left.get(name, ["-"]), right.get(name, ["-"])
        mark = "*" if versions.in_force and versions.pending and old != new else ""
        for index in range(max(len(old), len(new))):
            rows.append(
                (
                    mark if index == 0 else "",
                    name if index == 0 else "",
                    old[index] if index < len(old) else "",
                    new[index] if index < len(new) else "",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{versions.path}: status {versions.status}"]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    if versions.pending is None:
        lines.append("(no draft: the approved version is the whole type)")
    if versions.in_force is None:
        lines.append("(a draft: nothing is in force until `types approve`)")
    return lines


def run_create(args: argparse.Namespace) -> int:
    return _report(
        lambda: catalog.create_type(
            args.rules_dir,
            api_name=args.api_name,
            name=args.name,
            trigger_name=args.trigger_name,
            filter_name=args.filter_name,
            primary_api_name=args.primary_api_name,
            primary_name=args.primary_name,
            primary_data_type=args.primary_data_type,
            primary_description=args.primary_description,
            description=args.description,
            type_id=args.id,
            max_custom_types=_max_types(),
        )
    )


def run_update(args: argparse.Namespace) -> int:
    return _report(
        lambda: catalog.update_type(
            args.rules_dir,
            args.type,
            api_name=args.api_name,
            name=args.name,
            description=args.description,
            trigger_name=args.trigger_name,
            filter_name=args.filter_name,
            primary_api_name=args.primary_api_name,
            primary_name=args.primary_name,
            primary_data_type=args.primary_data_type,
            primary_description=args.primary_description,
            max_custom_types=_max_types(),
        )
    )


def run_approve(args: argparse.Namespace) -> int:
    return _report(
        lambda: catalog.approve_type(args.rules_dir, args.type, max_custom_types=_max_types())
    )


def run_discard(args: argparse.Namespace) -> int:
    return _report(
        lambda: catalog.discard_draft(args.rules_dir, args.type, max_custom_types=_max_types())
    )


def run_delete(args: argparse.Namespace) -> int:
    return _report(
        lambda: catalog.delete_type(args.rules_dir, args.type, max_custom_types=_max_types())
    )


def run_attribute_add(args: argparse.Namespace) -> int:
    return _report(
        lambda: catalog.add_attribute(
            args.rules_dir,
            args.type,
            api_name=args.api_name,
            name=args.name,
            data_type=args.data_type,
            description=args.description,
            max_custom_types=_max_types(),
        )
    )


def run_attribute_update(args: argparse.Namespace) -> int:
    if args.primary:
        if args.name is not None or args.data_type is not None or args.description is not None:
            raise CommandError("--primary changes nothing else: run it on its own")
        return _report(
            lambda: catalog.promote_attribute(
                args.rules_dir, args.type, args.attribute, max_custom_types=_max_types()
            )
        )
    return _report(
        lambda: catalog.update_attribute(
            args.rules_dir,
            args.type,
            args.attribute,
            name=args.name,
            data_type=args.data_type,
            description=args.description,
            max_custom_types=_max_types(),
        )
    )


def run_attribute_remove(args: argparse.Namespace) -> int:
    return _report(
        lambda: catalog.remove_attribute(
            args.rules_dir, args.type, args.attribute, max_custom_types=_max_types()
        )
    )
