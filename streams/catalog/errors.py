"""The one error of the catalog package: an operation refused, nothing written."""

from __future__ import annotations

from collections.abc import Sequence

from streams.engine.problems import Problem


class CatalogOpError(Exception):
    """The operation is refused; nothing was written. `problems` are the validation problems
    the change would cause (empty for a refusal of the lifecycle itself)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)
