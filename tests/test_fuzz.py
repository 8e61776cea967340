"""Property-based tests: the parsers, the signing and job ids, fed anything."""

from __future__ import annotations

import hashlib
import hmac
import math
import string
from urllib.parse import unquote

import pytest
import yarl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from koodrive_async import _protocol as proto
from koodrive_async import _stamps as stamps
from koodrive_async.auth import AppAuth, canonical_request, sign, string_to_sign
from koodrive_async.errors import InvalidJobIdError

CAP = 60.0
NOW = 1_764_500_000.0


@settings(max_examples=1000)
@given(st.text(max_size=80) | st.from_regex(r"\s*-?[0-9.e+]{1,12}\s*", fullmatch=True))
@example("Mon, 30 Nov 2026 16:00:00 GMT")
@example("1e999")
@example("-0")
def test_retry_after_is_a_bounded_number_or_ignored(value: str) -> None:
    seconds = proto.parse_retry_after(value, now=NOW, cap=CAP)
    assert seconds is None or (math.isfinite(seconds) and 0.0 <= seconds <= CAP)


@settings(max_examples=1000)
@given(st.text(max_size=80) | st.builds(
    "{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT".format,
    st.sampled_from(["Mon", "Tue", "Xyz"]), st.integers(0, 40),
    st.sampled_from(["Jan", "Feb", "Nov", "Foo"]), st.integers(0, 10000),
    st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
))
def test_http_dates_parse_to_a_finite_time_or_none(value: str) -> None:
    parsed = stamps.parse_http_date(value)
    assert parsed is None or math.isfinite(parsed)
    offset = stamps.server_clock_offset(value, NOW)
    assert offset is None or math.isfinite(offset)
    assert isinstance(stamps.x_date_rejected_for_clock("20261130T160000Z", value), bool)


# An independent, slow implementation of the documented canonical request, written from the
# spec's words, to compare with koodrive_async.auth.
_UNRESERVED = set(string.ascii_letters + string.digits + "-_.~")


def _percent(text: str) -> str:
    return "".join(
        chr(byte) if chr(byte) in _UNRESERVED else f"%{byte:02X}"
        for byte in text.encode("utf-8")
    )


def reference_signature(secret: str, method: str, path: str, query: list[tuple[str, str]],
                        headers: dict[str, str], body: bytes) -> str:
    uri = "/".join(_percent(segment) for segment in path.split("/"))
    if not uri.startswith("/"):
        uri = "/" + uri
    if not uri.endswith("/"):
        uri += "/"
    pairs = sorted((_percent(name), _percent(value)) for name, value in query)
    query_string = "&".join(name + "=" + value for name, value in pairs)
    lowered = sorted((name.lower(), value.strip()) for name, value in headers.items())
    canonical_headers = "".join(name + ":" + value + "\n" for name, value in lowered)
    signed = ";".join(name for name, _ in lowered)
    canonical = "\n".join([method.upper(), uri, query_string, canonical_headers, signed,
                           hashlib.sha256(body).hexdigest()])
    to_sign = "HMAC-SHA256\n" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


header_names = st.text(string.ascii_letters + "-", min_size=1, max_size=12)
header_values = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)


@settings(max_examples=500)
@given(
    method=st.sampled_from(["GET", "post", "Put"]),
    path=st.text(st.characters(blacklist_categories=["Cs"]), max_size=40),
    query=st.lists(st.tuples(header_values, header_values), max_size=5),
    headers=st.dictionaries(header_names, header_values, max_size=5).filter(
        lambda h: len({k.lower() for k in h}) == len(h)),
    body=st.binary(max_size=64),
    secret=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=16),
)
def test_app_auth_signature_equals_an_independent_reference(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
    body: bytes, secret: str,
) -> None:
    canonical = canonical_request(method, path, query, headers, body)
    assert canonical == canonical_request(method, path, list(query), dict(headers), body)
    signature = sign(secret, string_to_sign(canonical))
    assert signature == reference_signature(secret, method, path, query, headers, body)
    header = AppAuth("app", secret).header_value(method, path, query, headers, body)
    assert header.endswith("Signature=" + signature)


BASE = yarl.URL("https://intl.myhuaweicloud-koodrive.com")


@settings(max_examples=2000)
@given(st.text(max_size=30) | st.text("./?#%\\ abc019-_~+:@\t", max_size=12))
@example("..")
@example("%2e%2e")
@example("jobs")
@example("1309243162258308352")
def test_no_accepted_job_id_can_change_the_path(job_id: str) -> None:
    try:
        proto.validate_job_id(job_id)
    except InvalidJobIdError:
        with pytest.raises(InvalidJobIdError):  # the path is checked alike
            proto.job_path(job_id)
        return
    path = proto.job_path(job_id)
    url = BASE.with_path(path, encoded=True)
    assert url.raw_path == path, "the URL keeps the path as built (no dot-segment folding)"
    assert url.query_string == "" and url.fragment == ""
    prefix, segment = path[: len(proto.API_PREFIX)], path[len(proto.API_PREFIX):]
    assert prefix == proto.API_PREFIX
    assert "/" not in segment and unquote(segment) == job_id
    assert unquote(segment) not in {"jobs", "cancel", ".", ".."}
