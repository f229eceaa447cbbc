"""Every error of the actions package derives from `ActionsError`."""

from __future__ import annotations


class ActionsError(Exception):
    """Anything of ours in the custom actions."""


class MissingSecrets(ActionsError):
    """Environment variables that actions name as secrets are not set; one line each,
    naming the action and the variable (never a value)."""

    def __init__(self, missing: list[tuple[str, str]]) -> None:
        self.missing = missing
        super().__init__(
            "\n".join(
                f"action {action}: the environment variable {variable} (its secret) is not set"
                f" (nor a readable file in {variable}_FILE)"
                for action, variable in missing
            )
        )


class CallFailed(ActionsError):
    """One try of a call that did not get a 2xx; `retryable` says whether another may."""

    def __init__(
        self,
        error: str,
        retryable: bool,
        status: int | None = None,
        response: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.retryable = retryable
        self.status = status
        self.response = response
        self.retry_after = retry_after
