"""Filter logic expressions (campaigns.md, "Logic"): parser, errors, evaluation.

Trees are compared by their truth tables, computed by an evaluator written here, so that the
tests hold for any tree shape the parser may choose (associativity, nesting) as long as the
meaning is right.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streams.engine.logic import (
    And,
    LogicError,
    Not,
    Or,
    compile_logic,
    logic_source,
    parse_logic,
)

# --- an independent model of expressions ----------------------------------------------------
# ("item", n) | ("not", e) | ("and", a, b) | ("or", a, b)


def I(n):  # noqa: E743
    return ("item", n)


def NOT(e):
    return ("not", e)


def AND(a, b):
    return ("and", a, b)


def OR(a, b):
    return ("or", a, b)


def evaluate(expr, assignment) -> bool:
    kind = expr[0]
    if kind == "item":
        return assignment[expr[1] - 1]
    if kind == "not":
        return not evaluate(expr[1], assignment)
    if kind == "and":
        return evaluate(expr[1], assignment) and evaluate(expr[2], assignment)
    return evaluate(expr[1], assignment) or evaluate(expr[2], assignment)


def compiled(text: str, count: int):
    node = parse_logic(text, count)
    leaves = [lambda ctx, i=i: ctx[i] for i in range(count)]
    return compile_logic(node, leaves)


def assignments(count: int):
    return itertools.product((False, True), repeat=count)


def assert_means(text: str, count: int, expected) -> None:
    function = compiled(text, count)
    for assignment in assignments(count):
        assert function(assignment) is evaluate(expected, assignment), (text, assignment)


# --- examples --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [
        ("1", 1, I(1)),
        ("2", 3, I(2)),
        ("(1)", 1, I(1)),
        ("((1))", 1, I(1)),
        ("not 1", 1, NOT(I(1))),
        ("not not 1", 1, I(1)),
        ("1 and 2", 2, AND(I(1), I(2))),
        ("1 or 2", 2, OR(I(1), I(2))),
        # precedence: not > and > or
        ("1 or 2 and 3", 3, OR(I(1), AND(I(2), I(3)))),
        ("1 and 2 or 3", 3, OR(AND(I(1), I(2)), I(3))),
        ("not 1 and 2", 2, AND(NOT(I(1)), I(2))),
        ("not 1 or 2", 2, OR(NOT(I(1)), I(2))),
        ("1 and not 2 or 3", 3, OR(AND(I(1), NOT(I(2))), I(3))),
        ("1 or not 2 and 3", 3, OR(I(1), AND(NOT(I(2)), I(3)))),
        # parentheses override it
        ("(1 or 2) and 3", 3, AND(OR(I(1), I(2)), I(3))),
        ("not (1 and 2)", 2, NOT(AND(I(1), I(2)))),
        ("not (1 or 2)", 2, NOT(OR(I(1), I(2)))),
        ("1 and (2 or not 3)", 3, AND(I(1), OR(I(2), NOT(I(3))))),
        ("(1 or 2) and (3 or 4)", 4, AND(OR(I(1), I(2)), OR(I(3), I(4)))),
        ("1 and 2 and 3 or 4 and 5", 5, OR(AND(AND(I(1), I(2)), I(3)), AND(I(4), I(5)))),
        # keywords ignore case, whitespace is free
        ("1 AND 2 Or NoT 3", 3, OR(AND(I(1), I(2)), NOT(I(3)))),
        ("  1\tand\n2  ", 2, AND(I(1), I(2))),
        ("not(1)", 1, NOT(I(1))),
        ("(1)and(2)", 2, AND(I(1), I(2))),
        ("1 and 1", 2, I(1)),
    ],
)
def test_expressions(text, count, expected):
    assert_means(text, count, expected)


def test_precedence_changes_the_meaning():
    """A guard that the truth-table comparison can tell the two readings apart."""
    a = compiled("1 or 2 and 3", 3)
    b = compiled("(1 or 2) and 3", 3)
    assert a((True, False, False)) is True
    assert b((True, False, False)) is False


def test_and_or_and_not_build_the_named_nodes():
    node = parse_logic("not 1 and 2 or 3", 3)
    assert isinstance(node, Or)
    assert isinstance(node.left, And)
    assert isinstance(node.left.left, Not)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("keyword", ["all", "ALL", " All "])
def test_all_needs_every_item(keyword, count):
    function = compiled(keyword, count)
    for assignment in assignments(count):
        assert function(assignment) is all(assignment)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("keyword", ["any", "ANY", "\tAny\n"])
def test_any_needs_one_item(keyword, count):
    function = compiled(keyword, count)
    for assignment in assignments(count):
        assert function(assignment) is any(assignment)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("4", 3),  # no item 4
        ("1 and 4", 3),
        ("0", 3),
        ("not 0", 3),
        ("2", 1),
        ("(1 and 2", 2),  # unbalanced
        ("((1)", 1),
        ("1 and 2)", 2),
        ("(1))", 1),
        (")1(", 1),
        ("()", 1),
        ("1 2", 2),  # trailing tokens
        ("1 and 2 3", 3),
        ("(1) (2)", 2),
        ("1 not", 1),
        ("", 2),  # empty
        ("   ", 2),
        ("1 and", 2),  # ends too early
        ("1 or", 2),
        ("not", 1),
        ("and 1", 1),
        ("or 1", 1),
        ("1 and or 2", 2),
        ("1 xor 2", 2),  # unknown words
        ("one", 1),
        ("1 && 2", 2),
        ("1 & 2", 2),
        ("1 | 2", 2),
        ("!1", 1),
        ("1, 2", 2),
        ("1.5", 2),
        ("-1", 2),
        ("all and 1", 2),
        ("all 1", 2),
        ("1 andnot 2", 2),
        ("all", 0),  # no items at all
        ("1", 0),
    ],
)
def test_errors(text, count):
    with pytest.raises(LogicError):
        parse_logic(text, count)


def test_unknown_item_error_names_the_item():
    with pytest.raises(LogicError, match="7"):
        parse_logic("1 or 7", 3)


# --- short-circuiting ------------------------------------------------------------------------


def leaves_recording(values):
    calls: list[int] = []

    def leaf(i):
        def call(ctx):
            calls.append(i + 1)
            if values[i] is None:
                raise AssertionError(f"item {i + 1} must not be evaluated")
            return values[i]

        return call

    return [leaf(i) for i in range(len(values))], calls


@pytest.mark.parametrize(
    ("text", "values", "expected", "called"),
    [
        ("1 or 2", [True, None], True, [1]),
        ("1 or 2", [False, True], True, [1, 2]),
        ("1 and 2", [False, None], False, [1]),
        ("1 and 2", [True, False], False, [1, 2]),
        ("not 1 or 2", [False, None], True, [1]),
        ("not 1 and 2", [True, None], False, [1]),
        ("1 or 2 and 3", [True, None, None], True, [1]),
        ("1 and 2 or 3", [False, None, True], True, [1, 3]),
        ("(1 or 2) and 3", [False, False, None], False, [1, 2]),
        ("any", [False, True, None, None], True, [1, 2]),
        ("all", [True, False, None, None], False, [1, 2]),
        ("3 or 1", [None, None, True], True, [3]),
    ],
)
def test_short_circuit(text, values, expected, called):
    leaves, calls = leaves_recording(values)
    function = compile_logic(parse_logic(text, len(values)), leaves)
    assert function(object()) is expected
    assert calls == called


def test_context_is_passed_to_every_leaf():
    seen = []
    leaves = [lambda ctx: seen.append(ctx) or True, lambda ctx: seen.append(ctx) or True]
    context = object()
    assert compile_logic(parse_logic("1 and 2", 2), leaves)(context) is True
    assert seen == [context, context]


# --- property: render random trees, parse them back ------------------------------------------

PRECEDENCE = {"or": 1, "and": 2, "not": 3, "item": 4}
KEYWORD_SPELLINGS = {
    "and": ["and", "AND", "And", "aNd"],
    "or": ["or", "OR", "Or", "oR"],
    "not": ["not", "NOT", "Not", "nOt"],
}
SPACES = [" ", "  ", "\t", "\n", " \t "]


@dataclass
class Renderer:
    """Renders a tree with the parentheses its precedence needs, and random extra ones,
    random keyword case and random whitespace (at least one blank between words)."""

    draw: object
    depth: int = 0
    deepest: int = 0

    def nest(self, levels: int) -> None:
        self.depth += levels
        self.deepest = max(self.deepest, self.depth)

    def blank(self, required: bool) -> str:
        choices = SPACES if required else ["", *SPACES]
        return self.draw(st.sampled_from(choices))

    def keyword(self, word: str) -> str:
        return self.draw(st.sampled_from(KEYWORD_SPELLINGS[word]))

    def operand(self, expr, minimum: int) -> str:
        wrap = PRECEDENCE[expr[0]] < minimum or self.draw(st.integers(0, 5)) == 0
        self.nest(wrap)
        text = self.render(expr)
        self.nest(-wrap)
        if wrap:
            return "(" + self.blank(False) + text + self.blank(False) + ")"
        return text

    def render(self, expr) -> str:
        kind = expr[0]
        if kind == "item":
            return str(expr[1])
        if kind == "not":
            self.nest(1)
            operand = self.operand(expr[1], PRECEDENCE["not"])
            self.nest(-1)
            return self.keyword("not") + self.blank(True) + operand
        left = self.operand(expr[1], PRECEDENCE[kind])
        right = self.operand(expr[2], PRECEDENCE[kind])
        return left + self.blank(True) + self.keyword(kind) + self.blank(True) + right


def trees(count: int):
    return st.recursive(
        st.integers(1, count).map(I),
        lambda children: st.one_of(
            children.map(NOT),
            st.tuples(children, children).map(lambda ab: AND(*ab)),
            st.tuples(children, children).map(lambda ab: OR(*ab)),
        ),
        max_leaves=12,
    )


@st.composite
def rendered(draw):
    count = draw(st.integers(1, 8))
    tree = draw(trees(count))
    renderer = Renderer(draw)
    text = renderer.render(tree)
    # nesting (of `not`s and parentheses) that people write; far deeper is refused
    assume(renderer.deepest <= 30)
    text = draw(st.sampled_from(["", *SPACES])) + text + draw(st.sampled_from(["", *SPACES]))
    return count, tree, text


@settings(max_examples=150, deadline=None)
@given(rendered())
def test_parsed_expression_means_the_generated_tree(case):
    count, tree, text = case
    function = compiled(text, count)
    for assignment in assignments(count):
        assert function(assignment) is evaluate(tree, assignment), (text, assignment)


@settings(max_examples=150, deadline=None)
@given(rendered())
def test_the_logic_as_source_decides_and_short_circuits_as_the_closures(case):
    """`logic_source` (what the engine runs) against `compile_logic` (what `explain` runs):
    the same result, and the same leaves called in the same order, for every assignment."""
    count, _tree, text = case
    node = parse_logic(text, count)
    source = logic_source(node, [f"leaf({i})" for i in range(count)])
    for assignment in assignments(count):
        by_source: list[int] = []
        by_closures: list[int] = []

        def leaf(i, assignment=assignment, calls=by_source):
            calls.append(i)
            return assignment[i]

        leaves = [
            lambda ctx, i=i, assignment=assignment, calls=by_closures: (
                calls.append(i) or assignment[i]
            )
            for i in range(count)
        ]
        result = eval(source, {"leaf": leaf})
        assert result is compile_logic(node, leaves)(None), (text, assignment)
        assert by_source == by_closures, (text, assignment)


def test_a_long_chain_is_written_flat():
    source = logic_source(parse_logic("all", 300), [f"x{i}" for i in range(300)])
    assert source == "(" + " and ".join(f"x{i}" for i in range(300)) + ")"
    compile(source, "<test>", "eval")  # nested, 300 parentheses would not parse


@settings(max_examples=50, deadline=None)
@given(rendered(), st.integers(1, 3))
def test_a_tree_naming_a_missing_item_is_refused(case, extra):
    _count, _tree, text = case
    # the highest item the text names is beyond a smaller count
    highest = max(int(t) for t in text.replace("(", " ").replace(")", " ").split() if t.isdigit())
    if highest > 1:
        with pytest.raises(LogicError):
            parse_logic(text, highest - 1)
    parse_logic(text, highest + extra)  # and more items than named is fine


# --- deep nesting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["(" * 400 + "1" + ")" * 400, "not " * 1000 + "1", "not (" * 300 + "1" + ")" * 300],
    ids=["400-parens", "1000-nots", "300-not-parens"],
)
def test_deep_nesting_does_not_crash(text):
    """The parser is recursive: nesting far beyond what anyone writes must give a LogicError
    (or a tree), never a RecursionError out of `validate`."""
    try:
        node = parse_logic(text, 1)
    except LogicError:
        return
    function = compile_logic(node, [lambda ctx: ctx])
    assert function(True) is evaluate(("item", 1), (True,)) ^ (text.count("not") % 2 == 1)


def test_moderate_nesting_parses():
    text = "(" * 10 + "not " * 10 + "1" + ")" * 10
    assert compiled(text, 1)((True,)) is True
    assert compiled(text, 1)((False,)) is False
