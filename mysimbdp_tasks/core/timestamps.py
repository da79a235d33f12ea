"""Converters of time: ``timestamp``, ``date`` and ``time``.

- **Timestamps** become timezone-aware UTC ``datetime`` values. A number (JSON int or float, or
  text such as ``"1430438400"`` or ``"1430438400.25"``) is epoch *seconds* when its magnitude is
  below 1e11 and epoch *milliseconds* otherwise: 1e11 seconds is the year 5138, while 1e11
  milliseconds is March 1973, so the only values read the wrong way are millisecond values
  before 1973-03-03. Text is ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS[.fraction]]`` or the same with
  ``T``, optionally followed by ``Z``, ``±HH:MM``, ``±HHMM`` or ``±HH``; text without an offset is
  UTC. Fractions beyond microseconds are truncated (Cassandra keeps milliseconds).
- **date** is ``YYYY-MM-DD``; **time** is ``HH:MM[:SS[.fraction]]`` (to microseconds).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from .values import bad, match_text

__all__ = ["TIMESTAMP_MS_THRESHOLD", "to_date", "to_time", "to_timestamp"]

#: Epoch numbers whose magnitude reaches this are milliseconds, smaller ones are seconds.
TIMESTAMP_MS_THRESHOLD = 10**11

_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_TEXT = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]*))?")
_ISO_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?"
    r"(?:[Zz]|([+-])([0-9]{2})(?::?([0-9]{2}))?)?"
)
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ISO_TIME = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?")


def _from_epoch(value: Any, sign: int, whole: int, fraction: str) -> dt.datetime:
    """Exact integer arithmetic on the digits, so no float rounding creeps into the result."""
    if whole >= TIMESTAMP_MS_THRESHOLD:
        micros = whole * 1_000 + int((fraction + "000")[:3])
    else:
        micros = whole * 1_000_000 + int((fraction + "000000")[:6])
    try:
        return _EPOCH + dt.timedelta(microseconds=sign * micros)
    except OverflowError:
        raise bad("timestamp", value, "out of range") from None


def _from_epoch_int(value: Any, number: int) -> dt.datetime:
    if -TIMESTAMP_MS_THRESHOLD < number < TIMESTAMP_MS_THRESHOLD:
        try:
            return dt.datetime.fromtimestamp(number, _UTC)  # exact for ints, and the fastest way
        except (OverflowError, ValueError, OSError):
            pass  # outside the platform's range: the exact arithmetic below still works
    return _from_epoch(value, -1 if number < 0 else 1, abs(number), "")


def _timestamp_from_text(value: str) -> dt.datetime | None:
    text = value.strip()
    if not text:
        return None
    match = _EPOCH_TEXT.fullmatch(text)
    if match is not None:
        sign, whole, fraction = match.groups()
        if len(whole) > 20:  # past any datetime, and int() refuses the longest texts outright
            raise bad("timestamp", value, "out of range")
        return _from_epoch(value, -1 if sign == "-" else 1, int(whole), fraction or "")
    match = _ISO_TIMESTAMP.fullmatch(text)
    if match is None:
        raise bad("timestamp", value, "use epoch seconds/milliseconds or YYYY-MM-DD HH:MM:SS")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    tz = _UTC
    if sign:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m or 0))
        try:
            tz = dt.timezone(-offset if sign == "-" else offset)
        except ValueError:
            raise bad("timestamp", value, "bad UTC offset") from None
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "").ljust(6, "0")[:6]), tzinfo=tz,
        )
        return moment if tz is _UTC else moment.astimezone(_UTC)
    except (ValueError, OverflowError) as exc:
        raise bad("timestamp", value, str(exc)) from None


def to_timestamp(value: Any) -> dt.datetime | None:
    kind = type(value)
    if kind is str:
        if value.isdigit() and value.isascii() and len(value) <= 20:  # the common CSV case: epoch seconds
            return _from_epoch_int(value, int(value))
        return _timestamp_from_text(value)
    if kind is int:
        return _from_epoch_int(value, value)
    if kind is float:
        if not math.isfinite(value):
            raise bad("timestamp", value)
        scale = 1_000 if abs(value) >= TIMESTAMP_MS_THRESHOLD else 1_000_000
        try:
            return _EPOCH + dt.timedelta(microseconds=round(value * scale))
        except OverflowError:
            raise bad("timestamp", value, "out of range") from None
    if value is None:
        return None
    raise bad("timestamp", value)


def to_date(value: Any) -> dt.date | None:
    match = match_text("date", value, _ISO_DATE, "use YYYY-MM-DD")
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise bad("date", value, str(exc)) from None


def to_time(value: Any) -> dt.time | None:
    match = match_text("time", value, _ISO_TIME, "use HH:MM:SS[.fraction]")
    if match is None:
        return None
    hour, minute, second, fraction = match.groups()
    try:
        return dt.time(
            int(hour), int(minute), int(second or 0), int((fraction or "").ljust(6, "0")[:6])
        )
    except ValueError as exc:
        raise bad("time", value, str(exc)) from None
