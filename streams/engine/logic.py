"""Filter logic: `all`, `any`, or an expression over the items' 1-based numbers.

Grammar (`not` binds tighter than `and`, `and` tighter than `or`; keywords ignore case):

    expr  := term ("or" term)*
    term  := factor ("and" factor)*
    factor:= "not" factor | NUMBER | "(" expr ")"

The expression is compiled to closures that short-circuit, so a filter whose result cannot
change the outcome is never evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

C = TypeVar("C")

MAX_DEPTH: Final = 50
"""Nesting deeper than this (parentheses and `not`s) is refused: no one writes it, and the
recursive parser and the compiled closures must not hit Python's recursion limit."""
_TOKEN_RE: Final = re.compile(r"\s*(?:([0-9]+)|([()])|([A-Za-z]+)|(\S))")


class LogicError(ValueError):
    """The expression does not parse or names an item that does not exist."""


@dataclass(frozen=True, slots=True)
class Item:
    number: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


Node = Item | Not | And | Or


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:  # pragma: no cover - the last alternative matches any character
            break
        number, paren, word, other = match.groups()
        if other is not None:
            raise LogicError(f"unexpected {other!r} at position {match.start(4) + 1}")
        if word is not None and word.lower() not in ("and", "or", "not"):
            raise LogicError(f"unknown word {word!r}: use item numbers, and, or, not")
        tokens.append(number or paren or word.lower())
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], count: int) -> None:
        self.tokens = tokens
        self.position = 0
        self.count = count
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise LogicError("the expression ends too early")
        self.position += 1
        return token

    def expr(self) -> Node:
        node = self.term()
        while self.peek() == "or":
            self.take()
            node = Or(node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.peek() == "and":
            self.take()
            node = And(node, self.factor())
        return node

    def factor(self) -> Node:
        token = self.take()
        if token in ("not", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise LogicError(f"nested more than {MAX_DEPTH} levels deep")
            if token == "not":
                node: Node = Not(self.factor())
            else:
                node = self.expr()
                if self.take() != ")":
                    raise LogicError("a '(' is not closed")
            self.depth -= 1
            return node
        if token.isdigit():
            number = int(token)
            if not 1 <= number <= self.count:
                raise LogicError(
                    f"item {number} does not exist (there "
                    + ("is 1 item" if self.count == 1 else f"are {self.count} items")
                    + ")"
                )
            return Item(number)
        raise LogicError(f"expected an item number, 'not' or '(' but found {token!r}")


def parse_logic(text: str, count: int) -> Node:
    """The tree of `text`, for `count` filter items (`all` and `any` included)."""
    if count < 1:
        raise LogicError("there are no filter items to combine")
    keyword = text.strip().lower()
    if keyword in ("all", "any"):
        node: Node = Item(1)
        for number in range(2, count + 1):
            node = And(node, Item(number)) if keyword == "all" else Or(node, Item(number))
        return node
    tokens = _tokens(text)
    if not tokens:
        raise LogicError("the expression is empty")
    parser = _Parser(tokens, count)
    node = parser.expr()
    if parser.peek() is not None:
        raise LogicError(f"unexpected {parser.peek()!r} after a complete expression")
    return node


def items_of(node: Node) -> set[int]:
    if isinstance(node, Item):
        return {node.number}
    if isinstance(node, Not):
        return items_of(node.operand)
    return items_of(node.left) | items_of(node.right)


def compile_logic(node: Node, leaves: Sequence[Callable[[C], bool]]) -> Callable[[C], bool]:
    """A short-circuiting function of a context; item n calls `leaves[n - 1]`."""
    if isinstance(node, Item):
        return leaves[node.number - 1]
    if isinstance(node, Not):
        operand = compile_logic(node.operand, leaves)
        return lambda ctx: not operand(ctx)
    left = compile_logic(node.left, leaves)
    right = compile_logic(node.right, leaves)
    if isinstance(node, And):
        return lambda ctx: left(ctx) and right(ctx)
    return lambda ctx: left(ctx) or right(ctx)


def logic_source(node: Node, leaves: Sequence[str]) -> str:
    """The tree as one Python expression, item n being `leaves[n - 1]` (a call: it binds
    tighter than `not`): the same short-circuits as `compile_logic`, without a call per
    node. A chain of one operator is written flat (`(a and b and c)`), so `all` over many
    items does not nest parentheses."""
    if isinstance(node, Item):
        return leaves[node.number - 1]
    if isinstance(node, Not):
        return f"not {logic_source(node.operand, leaves)}"
    joiner = " and " if type(node) is And else " or "
    return "(" + joiner.join(logic_source(o, leaves) for o in chain_operands(node)) + ")"


def chain_operands(node: Node) -> list[Node]:
    """The operands of the chain of one operator (And or Or) rooted at `node`, left to
    right: `a and (b and c)` and `(a and b) and c` both give [a, b, c], so a chain is
    evaluated as one flat node whatever the parser's nesting."""
    kind = type(node)
    operands: list[Node] = []
    pending: list[Node] = [node]
    while pending:
        current = pending.pop()
        if type(current) is kind:
            assert isinstance(current, And | Or)
            pending += [current.right, current.left]
        else:
            operands.append(current)
    return operands
