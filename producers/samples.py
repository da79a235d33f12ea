"""The real Reddit samples (May 2015 comment dump) that synthetic data imitates.

Each sample keeps the fields the two tenants use. Where one comment exists both as JSON and as CSV
the JSON version wins: the CSV exports flattened the newlines of bodies, the JSON kept them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .readers import InputError, iter_csv_rows, iter_json_objects

SAMPLES_ENV = "MYSIMBDP_SAMPLES"
FIELDS = ("created_utc", "ups", "subreddit", "id", "author", "score", "body")
_REPO = Path(__file__).resolve().parents[1]
# Where the samples live when not given: inside the checkout, or in the shared data folder beside it.
CANDIDATES = (_REPO / "data" / "reddit", _REPO.parent / "shared" / "data" / "reddit")


@dataclass(frozen=True)
class Sample:
    created_utc: int
    ups: int
    subreddit: str
    id: str
    author: str
    score: int
    body: str


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$MYSIMBDP_SAMPLES``, else the first candidate folder that holds sample files."""
    env = os.environ if env is None else env
    if env.get(SAMPLES_ENV):
        return Path(env[SAMPLES_ENV]).expanduser()
    for folder in CANDIDATES:
        if any(folder.glob("*.json")) or any(folder.glob("*.csv")):
            return folder
    looked = ", ".join(str(c) for c in CANDIDATES)
    raise InputError(f"no Reddit samples found (looked in {looked}): set {SAMPLES_ENV} or pass --samples DIR")


def load(folder: Path) -> list[Sample]:
    """Every distinct comment of the ``*.json`` and ``*.csv`` files in ``folder``, in a stable order."""
    by_id: dict[str, Sample] = {}
    for path in sorted(folder.glob("*.json")):
        with open(path, encoding="utf-8-sig", newline="") as f:
            for rec in iter_json_objects(f, str(path)):
                _add(by_id, [rec.get(k) for k in FIELDS])
    for path in sorted(folder.glob("*.csv")):
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in iter_csv_rows(f, FIELDS, str(path)):
                _add(by_id, row)
    if not by_id:
        raise InputError(f"{folder}: no sample records (*.json, *.csv) found")
    return list(by_id.values())


def _add(by_id: dict[str, Sample], values: Sequence[Any]) -> None:
    created, ups, subreddit, ident, author, score, body = values
    if not ident or str(ident) in by_id:
        return
    try:
        numbers = int(created), int(ups), int(score)
    except (TypeError, ValueError):
        return  # a sample without usable numbers cannot teach a distribution; skip it
    by_id[str(ident)] = Sample(numbers[0], numbers[1], str(subreddit or ""), str(ident), str(author or ""),
                               numbers[2], str(body or ""))
