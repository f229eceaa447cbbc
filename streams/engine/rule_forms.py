"""Triggers' constraints and campaigns' filters as objects of compiled classes: the form the
compiled build runs, where code generated with `exec` would run interpreted.

`operators` turns every constraint into a `Condition` (a Python expression template over
`v` and `t`, with bound constants) and the compiler joins them into generated functions:
the fastest form for the interpreter. Under mypyc those functions still run in the
interpreter, so the compiled build uses instead:

- `compiled_cond(condition)`: one small class per template of `operators` (`holds(v, t)` is the
  template's expression over the same constants, a parsing condition wrapped in `Parsed`);
  a template not listed here runs as its generated predicate (`Generated`), so every
  condition has a compiled form that decides alike;
- `Checks.match(p, a, t)`: a trigger's (or history filter's) constraints in order, stopping
  at the first that fails, as `compiler.build_matcher`'s generated function does (an `any
  of` check, type 13's primary, holds for any value of the list, or on None when it is
  empty);
- a campaign's filter logic as a tree of `Node`s whose `test(state, T, index)` short-
  circuits as `logic.logic_source`'s expression does, a history leaf calling
  `HistoryFilter.test` and a field leaf its condition on the field.

Which form runs is `compiler.NATIVE_FORMS` (the compiled classes when this module is
compiled); the engine's results are the same with either (tests/unit/test_rule_forms.py on
one engine, tests/unit/test_compiled_engine.py across the two builds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from streams.engine.history_index import HistoryFilter, HistoryIndex
from streams.engine.leadstate import LeadState
from streams.engine.operators import TEXT_IS_TEMPLATE, Condition, parsed


class Cond:
    """`holds(v, t)`: a `Condition`'s expression on the value `v` at the date `t`."""

    def holds(self, v: Any, t: int) -> bool:
        raise NotImplementedError


class IsNone(Cond):
    def holds(self, v: Any, t: int) -> bool:
        return v is None


class NotNone(Cond):
    def holds(self, v: Any, t: int) -> bool:
        return v is not None


class TextIn(Cond):
    def __init__(self, values: frozenset[Any]) -> None:
        self.values = values

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and v.casefold() in self.values


class TextNotIn(Cond):
    def __init__(self, values: frozenset[Any]) -> None:
        self.values = values

    def holds(self, v: Any, t: int) -> bool:
        return v is None or v.casefold() not in self.values


class TextContains(Cond):
    def __init__(self, part: Any, negate: bool) -> None:
        self.part = part
        self.negate = negate

    def holds(self, v: Any, t: int) -> bool:
        if v is None:
            return self.negate
        return (self.part in v.casefold()) != self.negate


class TextContainsAny(Cond):
    def __init__(self, parts: tuple[Any, ...], negate: bool) -> None:
        self.parts = parts
        self.negate = negate

    def holds(self, v: Any, t: int) -> bool:
        if v is None:
            return self.negate
        found = False
        for x in self.parts:
            if x in v.casefold():
                found = True
                break
        return found != self.negate


class TextStarts(Cond):
    def __init__(self, parts: Any) -> None:
        self.parts = parts

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(v.casefold().startswith(self.parts))


class TextEnds(Cond):
    def __init__(self, parts: Any) -> None:
        self.parts = parts

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(v.casefold().endswith(self.parts))


class ValueIn(Cond):
    def __init__(self, values: frozenset[Any]) -> None:
        self.values = values

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and v in self.values


class ValueNotIn(Cond):
    def __init__(self, values: frozenset[Any]) -> None:
        self.values = values

    def holds(self, v: Any, t: int) -> bool:
        return v is None or v not in self.values


class Between(Cond):
    def __init__(self, low: Any, high: Any) -> None:
        self.low = low
        self.high = high

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(self.low <= v) and bool(v <= self.high)


class Greater(Cond):
    def __init__(self, bound: Any) -> None:
        self.bound = bound

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(v > self.bound)


class Less(Cond):
    def __init__(self, bound: Any) -> None:
        self.bound = bound

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(v < self.bound)


class AtLeast(Cond):
    def __init__(self, bound: Any) -> None:
        self.bound = bound

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(v >= self.bound)


class AtMost(Cond):
    def __init__(self, bound: Any) -> None:
        self.bound = bound

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(v <= self.bound)


class InPast(Cond):
    def __init__(self, duration: Any) -> None:
        self.duration = duration

    def holds(self, v: Any, t: int) -> bool:
        return v is not None and bool(t - self.duration <= v) and bool(v <= t)


class Parsed(Cond):
    """A field's text read as a number or a date first (`operators.parsed`)."""

    def __init__(self, parse: Callable[[str], float | int], inner: Cond) -> None:
        self.parse = parse
        self.inner = inner

    def holds(self, v: Any, t: int) -> bool:
        return self.inner.holds(parsed(self.parse, v), t)


class Generated(Cond):
    """A condition of a template this module does not list: its generated predicate."""

    def __init__(self, predicate: Callable[[Any, int], Any]) -> None:
        self.predicate = predicate

    def holds(self, v: Any, t: int) -> bool:
        return bool(self.predicate(v, t))


_ONE: Final[dict[str, Callable[[Any], Cond]]] = {
    TEXT_IS_TEMPLATE: TextIn,
    "v is None or v.casefold() not in {0}": TextNotIn,
    "v is not None and {0} in v.casefold()": lambda c: TextContains(c, False),
    "v is None or not ({0} in v.casefold())": lambda c: TextContains(c, True),
    "v is not None and any(x in v.casefold() for x in {0})": lambda c: TextContainsAny(c, False),
    "v is None or not (any(x in v.casefold() for x in {0}))": lambda c: TextContainsAny(c, True),
    "v is not None and v.casefold().startswith({0})": TextStarts,
    "v is not None and v.casefold().endswith({0})": TextEnds,
    "v is not None and v in {0}": ValueIn,
    "v is None or v not in {0}": ValueNotIn,
    "v is not None and v > {0}": Greater,
    "v is not None and v < {0}": Less,
    "v is not None and v >= {0}": AtLeast,
    "v is not None and v <= {0}": AtMost,
    "v is not None and t - {0} <= v <= t": InPast,
}
"""Templates of one constant (`operators`), by the class that decides them."""


def compiled_cond(
    condition: Condition, fallback: Callable[[Condition], Callable[[Any, int], Any]]
) -> Cond:
    """The compiled form of `condition`; `fallback(condition)` (its generated predicate)
    for a template not listed here."""
    template, constants = condition.template, condition.constants
    inner: Cond
    if template == "v is None" and not constants:
        inner = IsNone()
    elif template == "v is not None" and not constants:
        inner = NotNone()
    elif template == "v is not None and {0} <= v <= {1}" and len(constants) == 2:
        inner = Between(constants[0], constants[1])
    elif template in _ONE and len(constants) == 1:
        inner = _ONE[template](constants[0])
    else:
        return Generated(fallback(condition))
    if condition.parse is not None:
        return Parsed(condition.parse, inner)
    return inner


class Check:
    """One constraint of a trigger or history filter: the attribute it reads (`primary`:
    the primary value), its condition, and whether it holds for any value of a list."""

    def __init__(self, primary: bool, key: str, holds: Cond, any_of: bool) -> None:
        self.primary = primary
        self.key = key
        self.cond = holds
        self.any_of = any_of


class Checks:
    """A trigger's (or history filter's) constraints: `match` is `compiler.build_matcher`'s
    generated function in compiled form."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks

    def match(self, p: Any, a: dict[str, Any], t: int) -> bool:
        for check in self.checks:
            v: Any = p if check.primary else a.get(check.key)
            if check.any_of:
                if v:
                    found = False
                    for x in v:
                        if check.cond.holds(x, t):
                            found = True
                            break
                    if not found:
                        return False
                elif not check.cond.holds(None, t):
                    return False
            elif not check.cond.holds(v, t):
                return False
        return True


class Node:
    """A campaign's filter logic, or part of it: `test(state, T, index)`."""

    def test(self, s: LeadState, t: int, x: HistoryIndex | None) -> bool:
        raise NotImplementedError


class HistoryNode(Node):
    def __init__(self, history: HistoryFilter) -> None:
        self.history = history

    def test(self, s: LeadState, t: int, x: HistoryIndex | None) -> bool:
        return self.history.test(s, t, x)


class FieldNode(Node):
    def __init__(self, key: str, holds: Cond) -> None:
        self.key = key
        self.cond = holds

    def test(self, s: LeadState, t: int, x: HistoryIndex | None) -> bool:
        return self.cond.holds(s.fields.get(self.key), t)


class NotNode(Node):
    def __init__(self, operand: Node) -> None:
        self.operand = operand

    def test(self, s: LeadState, t: int, x: HistoryIndex | None) -> bool:
        return not self.operand.test(s, t, x)


class AllNode(Node):
    def __init__(self, operands: list[Node]) -> None:
        self.operands = operands

    def test(self, s: LeadState, t: int, x: HistoryIndex | None) -> bool:
        return all(operand.test(s, t, x) for operand in self.operands)


class AnyNode(Node):
    def __init__(self, operands: list[Node]) -> None:
        self.operands = operands

    def test(self, s: LeadState, t: int, x: HistoryIndex | None) -> bool:
        return any(operand.test(s, t, x) for operand in self.operands)


def compiled() -> bool:
    """Whether this module runs compiled (mypyc), not as Python source."""
    return not (__file__ or "").endswith(".py")
