"""A tenant's ``encrypted`` setting: whether its staged files may, or must, be sealed.

``"encrypted": "allowed"`` (the default): a tenant may stage ``x.csv.enc`` (``.json.enc``,
``.jsonl.enc``, ``.ndjson.enc``) wherever it may stage ``x.csv``; the worker decrypts it with the
tenant's file key (:mod:`sealed`). ``"required"``: a plaintext file is refused at admission with
``not_encrypted``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .sealed import inner_name, is_sealed_name

__all__ = ["KEY", "Policy", "parse"]

KEY = "encrypted"
CHOICES = ("allowed", "required")


@dataclass(frozen=True, slots=True)
class Policy:
    required: bool = False

    def refusal(self, file_name: str) -> str | None:
        """Why a staged file is refused under this policy, or None."""
        return "not_encrypted" if self.required and not is_sealed_name(file_name) else None

    @staticmethod
    def checked_name(file_name: str) -> str:
        """The name whose extension admission checks (a sealed file's inner one)."""
        return inner_name(file_name)


DEFAULT = Policy()


def parse(raw: dict[str, Any], bad: Callable[[str, str], None]) -> Policy:
    value = raw.get(KEY, "allowed")
    if value not in CHOICES:
        bad(KEY, f"expected one of {', '.join(repr(c) for c in CHOICES)}, got {value!r}")
        return DEFAULT
    return Policy(required=value == "required")
