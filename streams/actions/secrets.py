"""Secrets of actions, read from the environment once, at start.

`secret: CRM_CLIENT_SECRET` reads the variable `CRM_CLIENT_SECRET`, or, when it is not
set, the file that `CRM_CLIENT_SECRET_FILE` names (Docker and Kubernetes secrets), its
trailing new line removed. A missing secret stops the dispatcher before it consumes
anything (`MissingSecrets`, exit 2, naming the action and the variable). Values are kept
in `Secrets` only; its repr hides them, and `redact` removes them from any text before it
is logged or dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.actions.compiled import CompiledAction
from streams.actions.definitions import ApiKeyAuth, BasicAuth, BearerTokenAuth
from streams.actions.exceptions import MissingSecrets

REDACTED = "[redacted]"


@dataclass
class Secrets:
    by_action: dict[str, str] = field(default_factory=dict, repr=False)
    extra: set[str] = field(default_factory=set, repr=False)
    """Values learnt later (bearer tokens), redacted as well."""

    def get(self, action: str) -> str:
        return self.by_action[action]

    def remember(self, value: str) -> None:
        if value:
            self.extra.add(value)

    def redact(self, text: str) -> str:
        for value in (*self.by_action.values(), *self.extra):
            if len(value) >= 4 and value in text:
                text = text.replace(value, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"Secrets({len(self.by_action)} actions)"


def _from_file(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n") or None
    except (OSError, UnicodeDecodeError):
        return None


def read_secrets(actions: Iterable[CompiledAction], environ: Mapping[str, str]) -> Secrets:
    secrets = Secrets()
    missing: list[tuple[str, str]] = []
    for action in sorted(actions, key=lambda a: a.name):
        auth = action.auth
        if not isinstance(auth, ApiKeyAuth | BasicAuth | BearerTokenAuth):
            continue
        value = environ.get(auth.secret) or _from_file(environ.get(f"{auth.secret}_FILE"))
        if not value:
            missing.append((action.name, auth.secret))
        else:
            secrets.by_action[action.name] = value
    if missing:
        raise MissingSecrets(missing)
    return secrets
