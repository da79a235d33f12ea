"""Type conversion of raw CSV / JSON values to the values bound for each CQL type."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid

import pytest

from mysimbdp_tasks.core.convert import CONVERTERS, RowConverter
from mysimbdp_tasks.core.errors import RowError

pytestmark = pytest.mark.unit

UTC = dt.UTC
SUPPORTED = {
    "text", "varchar", "ascii", "int", "bigint", "smallint", "tinyint", "varint", "float",
    "double", "decimal", "boolean", "timestamp", "date", "time", "uuid", "timeuuid", "inet", "blob",
}
TRICKY_TEXTS = [
    "",
    " leading and trailing spaces ",
    'She said "hi", then left',
    "line one\nline two\r\nline three\rend",
    "brackets [a] (b) {c} <d>",
    "unicode: naïve café Ωμέγα 日本語 くそ",
    "emoji: 😀👍🏽 family 👨‍👩‍👧",
    "'); DROP KEYSPACE x; --",
    "tab\tand\\backslash and NUL\x00",
    "e\u0301 (combining, not normalised)",
]


def convert(cql_type: str, value: object) -> object:
    return CONVERTERS[cql_type](value)


def test_converters_cover_exactly_the_supported_types() -> None:
    assert set(CONVERTERS) == SUPPORTED


# --- text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TRICKY_TEXTS)
@pytest.mark.parametrize("cql_type", ["text", "varchar"])
def test_text_is_kept_exactly(cql_type: str, text: str) -> None:
    result = convert(cql_type, text)
    assert result == text
    assert isinstance(result, str) and result.encode("utf-8") == text.encode("utf-8")


@pytest.mark.parametrize(
    ("raw", "expected"), [(3, "3"), (-1.5, "-1.5"), (True, "true"), (False, "false"), ("0", "0"), (None, None)]
)
def test_text_from_json_scalars(raw: object, expected: object) -> None:
    assert convert("text", raw) == expected


@pytest.mark.parametrize("raw", [{"a": 1}, [1, 2]])
def test_text_refuses_json_containers(raw: object) -> None:
    with pytest.raises(ValueError, match="expected text, got a JSON"):
        convert("text", raw)


def test_text_refuses_a_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        convert("text", "broken \ud83d emoji")


def test_ascii_accepts_ascii_and_refuses_the_rest() -> None:
    assert convert("ascii", "plain 'text', [ok]") == "plain 'text', [ok]"
    assert convert("ascii", "") == ""
    with pytest.raises(ValueError, match="non-ASCII"):
        convert("ascii", "café")


# --- integers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("42", 42), ("-7", -7), ("+5", 5), (" 12 ", 12), ("007", 7), (42, 42), (3.0, 3), ("3.0", 3), ("0", 0)],
)
def test_int_accepts_integral_values(raw: object, expected: int) -> None:
    result = convert("int", raw)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("raw", ["abc", "3.5", 3.5, "1e3", "1_000", "0x10", True, False, [1], {"a": 1}, "٣"])
def test_int_refuses_non_integers(raw: object) -> None:
    with pytest.raises(ValueError, match="expected int, got"):
        convert("int", raw)


@pytest.mark.parametrize(
    ("cql_type", "low", "high"),
    [
        ("tinyint", -128, 127), ("smallint", -32768, 32767),
        ("int", -(2**31), 2**31 - 1), ("bigint", -(2**63), 2**63 - 1),
    ],
)
def test_fixed_width_integers_are_range_checked(cql_type: str, low: int, high: int) -> None:
    assert convert(cql_type, low) == low
    assert convert(cql_type, str(high)) == high
    for outside in (low - 1, str(high + 1)):
        with pytest.raises(ValueError, match="out of range"):
            convert(cql_type, outside)


def test_varint_is_unbounded() -> None:
    big = 10**40
    assert convert("varint", str(big)) == big
    assert convert("varint", -big) == -big
    with pytest.raises(ValueError, match="expected varint"):
        convert("varint", "1.5")


def test_error_message_names_the_value_briefly() -> None:
    with pytest.raises(ValueError, match=r"^expected int, got 'x") as info:
        convert("int", "x" * 500)
    assert str(info.value).startswith("expected int, got 'xxxx")
    assert len(str(info.value)) < 80


# --- nulls ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cql_type", sorted(SUPPORTED - {"text", "varchar", "ascii"}))
@pytest.mark.parametrize("raw", [None, "", "   "])
def test_empty_is_null_for_non_text_types(cql_type: str, raw: object) -> None:
    assert convert(cql_type, raw) is None


@pytest.mark.parametrize("cql_type", ["text", "varchar", "ascii"])
def test_empty_string_stays_a_string_for_text_types(cql_type: str) -> None:
    assert convert(cql_type, "") == ""
    assert convert(cql_type, None) is None


# --- floating point and decimal -------------------------------------------------------------------


@pytest.mark.parametrize("cql_type", ["float", "double"])
def test_floating_point_values(cql_type: str) -> None:
    assert convert(cql_type, "1.5") == 1.5
    assert convert(cql_type, "-2e3") == -2000.0
    assert convert(cql_type, 7) == 7.0 and type(convert(cql_type, 7)) is float
    assert convert(cql_type, 0.25) == 0.25
    assert math.isnan(convert(cql_type, "NaN"))  # type: ignore[arg-type]
    assert convert(cql_type, "-Infinity") == -math.inf
    for bad in ("abc", "1_0", "1.5.2", True, [1.0]):
        with pytest.raises(ValueError, match=f"expected {cql_type}"):
            convert(cql_type, bad)


def test_float_is_range_checked_against_32_bits_but_double_is_not() -> None:
    with pytest.raises(ValueError, match="out of range"):
        convert("float", "1e39")
    assert convert("double", "1e39") == 1e39


def test_decimal_keeps_the_written_digits() -> None:
    assert convert("decimal", "12.340") == decimal.Decimal("12.340")
    assert str(convert("decimal", "12.340")) == "12.340"
    assert convert("decimal", 0.1) == decimal.Decimal("0.1")
    assert convert("decimal", 5) == decimal.Decimal(5)
    for bad in ("NaN", "Infinity", "abc", "1_0", True):
        with pytest.raises(ValueError, match="expected decimal"):
            convert("decimal", bad)


# --- boolean --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("Yes", True), ("1", True), (True, True), (1, True),
     ("false", False), ("False", False), ("no", False), ("0", False), (False, False), (0, False), (" true ", True)],
)
def test_boolean_values(raw: object, expected: bool) -> None:
    assert convert("boolean", raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "t", "2", 2, 1.0, "ja"])
def test_boolean_refuses_other_values(raw: object) -> None:
    with pytest.raises(ValueError, match="expected boolean"):
        convert("boolean", raw)


# --- timestamp ------------------------------------------------------------------------------------

MAY_1 = dt.datetime(2015, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [1430438400, "1430438400", 1430438400.0, 1430438400000, "1430438400000", " 1430438400 ",
     "2015-05-01 00:00:00", "2015-05-01T00:00:00", "2015-05-01T00:00:00Z", "2015-05-01T02:00:00+02:00",
     "2015-04-30T19:00:00-0500", "2015-05-01T05:30+05:30", "2015-05-01", "2015-05-01 00:00"],
)
def test_timestamp_forms_of_the_same_instant(raw: object) -> None:
    result = convert("timestamp", raw)
    assert result == MAY_1
    assert isinstance(result, dt.datetime) and result.utcoffset() == dt.timedelta(0)


def test_timestamp_seconds_versus_milliseconds_is_decided_by_magnitude() -> None:
    just_below = 10**11 - 1  # seconds: the year 5138
    assert convert("timestamp", just_below) == dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=just_below)
    assert convert("timestamp", 10**11) == dt.datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)  # milliseconds
    assert convert("timestamp", "1430438400123") == MAY_1 + dt.timedelta(milliseconds=123)
    assert convert("timestamp", 1430438400.5) == MAY_1 + dt.timedelta(milliseconds=500)
    assert convert("timestamp", "1430438400.25") == MAY_1 + dt.timedelta(milliseconds=250)
    assert convert("timestamp", -86400) == dt.datetime(1969, 12, 31, tzinfo=UTC)


def test_timestamp_fractions_and_naive_text_is_utc() -> None:
    assert convert("timestamp", "2015-05-01T00:00:00.123456789") == MAY_1 + dt.timedelta(microseconds=123456)
    assert convert("timestamp", "2015-05-01 00:00:00.5") == MAY_1 + dt.timedelta(milliseconds=500)


@pytest.mark.parametrize(
    "raw",
    ["yesterday", "2015-13-01", "2015-02-30 00:00:00", "2015/05/01", "01-05-2015", "2015-05-01T25:00:00",
     "1430438400abc", True, [1430438400], {"t": 1}, 10**30, float("nan"), "2015-05-01T00:00:00+24:00"],
)
def test_timestamp_refuses_bad_values(raw: object) -> None:
    with pytest.raises(ValueError, match="expected timestamp"):
        convert("timestamp", raw)


# --- date, time -----------------------------------------------------------------------------------


def test_date_values() -> None:
    assert convert("date", "2015-05-01") == dt.date(2015, 5, 1)
    assert type(convert("date", "2015-05-01")) is dt.date
    for bad in ("2015-02-30", "2015-05-01 10:00:00", "May 1", 20150501, "15-05-01"):
        with pytest.raises(ValueError, match="expected date"):
            convert("date", bad)


def test_time_values() -> None:
    assert convert("time", "13:45:10.123456") == dt.time(13, 45, 10, 123456)
    assert convert("time", "13:45:10.123456789") == dt.time(13, 45, 10, 123456)
    assert convert("time", "08:05") == dt.time(8, 5)
    for bad in ("24:00:00", "1:2:3", "noon", 3600):
        with pytest.raises(ValueError, match="expected time"):
            convert("time", bad)


# --- uuid, timeuuid, inet, blob -------------------------------------------------------------------


def test_uuid_values() -> None:
    value = uuid.uuid4()
    assert convert("uuid", str(value)) == value
    assert convert("uuid", str(value).upper()) == value
    assert convert("uuid", value.hex) == value
    for bad in ("not-a-uuid", str(value)[:-1], 123):
        with pytest.raises(ValueError, match="expected uuid"):
            convert("uuid", bad)


def test_timeuuid_must_be_version_1() -> None:
    time_based = uuid.uuid1()
    assert convert("timeuuid", str(time_based)) == time_based
    with pytest.raises(ValueError, match="version 1"):
        convert("timeuuid", str(uuid.uuid4()))
    with pytest.raises(ValueError, match="expected timeuuid"):
        convert("timeuuid", "zzz")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("192.168.0.1", "192.168.0.1"), ("::1", "::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), (" 10.0.0.1 ", "10.0.0.1"),
    ],
)
def test_inet_values(raw: str, expected: str) -> None:
    assert convert("inet", raw) == expected


@pytest.mark.parametrize("raw", ["256.1.1.1", "1.2.3", "01.2.3.4", "fe80::1%eth0", "localhost", 3232235521])
def test_inet_refuses_bad_addresses(raw: object) -> None:
    with pytest.raises(ValueError, match="expected inet"):
        convert("inet", raw)


def test_blob_values() -> None:
    assert convert("blob", "0xCAFE00") == b"\xca\xfe\x00"
    assert convert("blob", "cafe") == b"\xca\xfe"
    assert convert("blob", "0x") == b""
    for bad in ("0xabc", "zz", "ca fe", 12):
        with pytest.raises(ValueError, match="expected blob"):
            convert("blob", bad)


# --- rows -----------------------------------------------------------------------------------------

TENANT1 = {
    "created_utc": "timestamp", "ups": "int", "subreddit": "text", "id": "text", "author": "text", "score": "int",
}
TENANT1_KEY = ("subreddit", "id", "ups")


def test_row_in_schema_order_with_extra_fields_ignored() -> None:
    rows = RowConverter(TENANT1, TENANT1_KEY)
    record = {
        "score": 8, "id": "cqurbw8", "author": "massmindparadigm", "subreddit": "marvelstudios",
        "ups": 8, "created_utc": 1430458939, "score_hidden": "0", "body": "ignored", "removal_reason": None,
    }
    assert rows.columns == ("created_utc", "ups", "subreddit", "id", "author", "score")
    assert rows.convert(record) == (
        dt.datetime(2015, 5, 1, 5, 42, 19, tzinfo=UTC), 8, "marvelstudios", "cqurbw8", "massmindparadigm", 8,
    )


def test_row_from_csv_strings_with_a_null_non_key_column() -> None:
    rows = RowConverter(TENANT1, TENANT1_KEY)
    record = {
        "created_utc": "2015-05-01 00:00:00", "ups": "4", "subreddit": "nba", "id": "x1", "author": "", "score": "",
    }
    assert rows.convert(record) == (MAY_1, 4, "nba", "x1", "", None)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"id": None}, "column 'id' is null"), ({"id": ""}, "column 'id' is empty"),
        ({"ups": "  "}, "column 'ups' is empty"),
    ],
)
def test_row_with_an_empty_key_column_is_refused(change: dict[str, object], detail: str) -> None:
    rows = RowConverter(TENANT1, TENANT1_KEY)
    record = {"created_utc": 1, "ups": 1, "subreddit": "a", "id": "b", "author": "c", "score": 1, **change}
    with pytest.raises(RowError) as info:
        rows.convert(record)
    assert (info.value.reason, info.value.detail) == ("missing_key_column", detail)


def test_row_with_an_absent_key_column_is_refused() -> None:
    rows = RowConverter(TENANT1, TENANT1_KEY)
    with pytest.raises(RowError) as info:
        rows.convert({"created_utc": 1, "ups": 1, "subreddit": "a", "author": "c"})
    assert (info.value.reason, info.value.detail) == ("missing_key_column", "column 'id' is missing")


def test_row_with_a_bad_value_names_the_column() -> None:
    rows = RowConverter(TENANT1, TENANT1_KEY)
    with pytest.raises(RowError) as info:
        rows.convert({"created_utc": 1, "ups": "abc", "subreddit": "a", "id": "b", "author": "c", "score": 1})
    assert info.value.reason == "bad_value"
    assert info.value.detail == "column 'ups': expected int, got 'abc'"


def test_row_column_names_are_case_sensitive() -> None:
    rows = RowConverter({"ID": "text", "id": "int"}, ("ID",))
    assert rows.convert({"ID": "upper", "id": "5", "Id": "ignored"}) == ("upper", 5)
    with pytest.raises(RowError, match="column 'ID' is missing"):
        rows.convert({"id": "5"})


@pytest.mark.parametrize("text", TRICKY_TEXTS[1:])
def test_row_keeps_text_byte_for_byte(text: str) -> None:
    rows = RowConverter({"id": "text", "body": "text"}, ("id",))
    assert rows.convert({"id": text, "body": text}) == (text, text)


def test_row_converter_refuses_a_bad_schema() -> None:
    with pytest.raises(ValueError, match="unsupported CQL type 'string'"):
        RowConverter({"a": "string"}, ("a",))
    with pytest.raises(ValueError, match="key column 'b' is not in the schema"):
        RowConverter({"a": "text"}, ("b",))
    with pytest.raises(ValueError, match="at least one column"):
        RowConverter({}, ())


# --- values that parse but cannot be bound ------------------------------------------------------


@pytest.mark.parametrize("text", ["1e-9999999999", "-1e-2147483649", "7" * 5000, "1." + "0" * 5000])
def test_decimals_the_driver_cannot_bind_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected decimal"):
        CONVERTERS["decimal"](text)


def test_decimal_scale_at_the_32_bit_limits_is_kept() -> None:
    assert CONVERTERS["decimal"]("1e-2147483647") == decimal.Decimal("1e-2147483647")
    assert CONVERTERS["decimal"]("1e999999999") == decimal.Decimal("1e999999999")


@pytest.mark.parametrize("cql_type", ["tinyint", "int", "bigint", "varint", "timestamp"])
def test_integers_of_more_than_4300_digits_are_refused_with_a_reason(cql_type: str) -> None:
    with pytest.raises(ValueError, match=f"expected {cql_type}"):
        CONVERTERS[cql_type]("9" * 5000)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("cql_type", ["int", "bigint", "varint", "decimal", "timestamp"])
def test_nan_and_infinity_are_refused_where_the_type_has_none(cql_type: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"expected {cql_type}"):
        CONVERTERS[cql_type](value)


def test_a_row_with_an_unbindable_value_is_a_row_error_naming_the_column() -> None:
    converter = RowConverter({"id": "text", "amount": "decimal", "big": "varint"}, ["id"])
    for record, column in [({"id": "a", "amount": "1e-9999999999"}, "amount"), ({"id": "a", "big": "9" * 5000}, "big")]:
        with pytest.raises(RowError) as info:
            converter.convert(record)
        assert info.value.reason == "bad_value" and repr(column) in info.value.detail
