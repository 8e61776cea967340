"""X-Date, X-Traceid, Date and the clock offset (``_stamps``), with literals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from koodrive_async import _stamps as stamps


def test_x_date_is_utc_and_truncated_never_rounded_up() -> None:
    moment = datetime(2025, 11, 3, 7, 1, 40, 999000, tzinfo=UTC).timestamp()
    assert stamps.format_x_date(moment) == "20251103T070140Z"
    assert stamps.parse_x_date("20251103T070140Z") == int(moment)
    assert stamps.parse_x_date("2025-11-03") is None


def test_http_dates() -> None:
    assert stamps.parse_http_date("Mon, 03 Nov 2025 07:01:40 GMT") == (
        datetime(2025, 11, 3, 7, 1, 40, tzinfo=UTC).timestamp()
    )
    for bad in (None, "", "yesterday", "Mon, 99 Nov 2025 07:01:40 GMT", "x" * 100):
        assert stamps.parse_http_date(bad) is None


def test_trace_ids_are_58_characters_and_unique() -> None:
    ids = {stamps.new_trace_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 58 and i.isalnum() for i in ids)


def test_clock_skew_explains_a_401() -> None:
    date = "Mon, 03 Nov 2025 07:01:40 GMT"
    assert stamps.x_date_rejected_for_clock("20251103T070141Z", date)  # ahead
    assert stamps.x_date_rejected_for_clock("20251103T064639Z", date)  # older than 15 min
    assert not stamps.x_date_rejected_for_clock("20251103T070140Z", date)
    assert not stamps.x_date_rejected_for_clock("20251103T065000Z", date)
    assert not stamps.x_date_rejected_for_clock(None, date)
    assert not stamps.x_date_rejected_for_clock("20251103T070141Z", None)


def test_server_clock_offset() -> None:
    local = datetime(2025, 11, 3, 7, 3, 40, tzinfo=UTC).timestamp()
    assert stamps.server_clock_offset("Mon, 03 Nov 2025 07:01:40 GMT", local) == -120.0
    assert stamps.server_clock_offset("garbage", local) is None


@pytest.mark.parametrize(
    ("moment", "expected"),
    [(float("nan"), "19700101T000000Z"), (float("-inf"), "19700101T000000Z"),
     (-1.0, "19700101T000000Z"), (float("inf"), "99991231T235959Z"),
     (1e20, "99991231T235959Z"), (253402300800.0, "99991231T235959Z"),
     (253402300799.9, "99991231T235959Z"), (0.0, "19700101T000000Z")],
)
def test_x_date_never_raises_and_is_always_16_characters(moment: float, expected: str) -> None:
    assert stamps.format_x_date(moment) == expected


def test_only_a_plausible_date_teaches_an_offset() -> None:
    local = datetime(2025, 11, 3, 7, 1, 40, tzinfo=UTC).timestamp()
    for bad in ("Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0100 00:00:00 GMT",
                "Wed, 31 Dec 1969 23:59:59 GMT",
                "Tue, 11 Nov 2025 07:01:41 GMT",   # 8 days and a second ahead
                "Mon, 27 Oct 2025 07:01:39 GMT"):  # 7 days and a second behind
        assert stamps.server_clock_offset(bad, local) is None, bad
    assert stamps.server_clock_offset("Mon, 10 Nov 2025 07:01:40 GMT", local) == 7 * 86400
    assert stamps.server_clock_offset("Mon, 27 Oct 2025 07:01:40 GMT", local) == -7 * 86400
    assert stamps.MAX_CLOCK_OFFSET == 7 * 86400


def test_an_implausible_date_explains_no_401() -> None:
    assert not stamps.x_date_rejected_for_clock("20251103T070140Z",
                                               "Fri, 31 Dec 9999 23:59:59 GMT")
    assert not stamps.x_date_rejected_for_clock("20251103T070140Z",
                                               "Mon, 01 Jan 0100 00:00:00 GMT")
    assert stamps.x_date_rejected_for_clock("20251103T070140Z", "Sun, 02 Nov 2025 07:01:40 GMT")

