"""App-auth signing, step by step, against literals checked with sha256sum and openssl."""

from __future__ import annotations

import pytest

import koodrive_async as kd
from koodrive_async.auth import (
    AppAuth,
    TokenAuth,
    authorization_header,
    canonical_query,
    canonical_request,
    canonical_uri,
    sign,
    string_to_sign,
)

HEADERS = {
    "Host": "intl.myhuaweicloud-koodrive.com",
    "X-Date": "20251103T070140Z",
    "X-User-Id": "user-1",
}
QUERY = [("offset", "0"), ("limit", "10"), ("status", "1")]
CANONICAL = (
    "GET\n"
    "/koodrive/ose/v1/jobs/\n"
    "limit=10&offset=0&status=1\n"
    "host:intl.myhuaweicloud-koodrive.com\n"
    "x-date:20251103T070140Z\n"
    "x-user-id:user-1\n"
    "\n"
    "host;x-date;x-user-id\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)
# printf '%s' "$CANONICAL" | sha256sum
CANONICAL_SHA256 = "20a8337fdae498ca51e0b12e664d4964ccbcb40d6f3ac4417dc6971c2c208e66"
# printf 'HMAC-SHA256\n<hash>' | openssl dgst -sha256 -hmac secret-1
SIGNATURE = "4f2a32a59ffd4e8719c7b1aa9abb6eaa4c9003495b4a2e1b22a8f197dc275f35"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/koodrive/ose/v1/jobs", "/koodrive/ose/v1/jobs/"),
        ("/koodrive/ose/v1/jobs/", "/koodrive/ose/v1/jobs/"),
        ("/koodrive/ose/v1/1309243162258308352", "/koodrive/ose/v1/1309243162258308352/"),
        ("/a b/c~d_e.f-g", "/a%20b/c~d_e.f-g/"),
        ("/ü/+", "/%C3%BC/%2B/"),
        ("", "/"),
    ],
)
def test_canonical_uri_encodes_each_segment_and_appends_a_slash(path: str, expected: str) -> None:
    assert canonical_uri(path) == expected


def test_canonical_query_sorts_by_name_and_percent_encodes_upper_case() -> None:
    assert canonical_query(QUERY) == "limit=10&offset=0&status=1"
    assert canonical_query([("b", "a b"), ("a", "x/y*"), ("c", "")]) == "a=x%2Fy%2A&b=a%20b&c="
    assert canonical_query([("n", "~-_.")]) == "n=~-_."
    assert canonical_query([]) == ""


def test_canonical_request_has_the_six_documented_parts() -> None:
    assert canonical_request("get", "/koodrive/ose/v1/jobs", QUERY, HEADERS, b"") == CANONICAL


def test_canonical_headers_are_lower_cased_trimmed_and_sorted() -> None:
    canonical = canonical_request(
        "POST", "/koodrive/ose/v1/cancel", [],
        {"X-User-Id": "  u  ", "host": "h", "X-DATE": "20251103T070140Z"}, b'{"jobId":"1"}',
    )
    method, uri, query, *headers, signed, payload_hash = canonical.split("\n")
    assert (method, uri, query) == ("POST", "/koodrive/ose/v1/cancel/", "")
    assert headers == ["host:h", "x-date:20251103T070140Z", "x-user-id:u", ""]
    assert signed == "host;x-date;x-user-id"
    # sha256 of the body {"jobId":"1"}
    assert payload_hash == "873a13fdd5f88afa240bc096918934087f42b3aa8d80d25bf9f8b29021b87fdb"


def test_string_to_sign_and_signature() -> None:
    to_sign = string_to_sign(CANONICAL)
    assert to_sign == f"HMAC-SHA256\n{CANONICAL_SHA256}"
    assert sign("secret-1", to_sign) == SIGNATURE


def test_authorization_header_of_app_auth() -> None:
    expected = (
        "HMAC-SHA256 AppId=app-1,SignedHeaders=host;x-date;x-user-id,Signature=" + SIGNATURE
    )
    assert authorization_header("app-1", ["x-user-id", "host", "x-date"], SIGNATURE) == expected
    header = AppAuth("app-1", "secret-1").header_value(
        "GET", "/koodrive/ose/v1/jobs", QUERY, HEADERS, b""
    )
    assert header == expected


def test_app_auth_never_shows_its_secret() -> None:
    auth = AppAuth("app-1", "secret-value-123")
    assert "secret-value-123" not in repr(auth)
    assert "secret-value-123" not in str(auth)
    assert "app-1" in repr(auth)
    with pytest.raises(ValueError, match="non-empty"):
        AppAuth("app-1", "")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("abc123", "Bearer+abc123"),
        ("Bearer+abc123", "Bearer+abc123"),
        ("Bearer abc123", "Bearer abc123"),
        ("AT 3b91aa", "AT 3b91aa"),
        ("  abc  ", "Bearer+abc"),
    ],
)
def test_token_auth_adds_the_documented_prefix_unless_a_scheme_is_there(
    token: str, expected: str
) -> None:
    assert TokenAuth(token).header_value(token) == expected


def test_token_auth_prefix_is_configurable() -> None:
    assert TokenAuth("t", prefix="Bearer ").header_value("t") == "Bearer t"


async def test_token_auth_provider_is_called_each_time() -> None:
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return f"token-{calls}"

    auth = TokenAuth(provider)
    assert auth.refreshable
    assert await auth.get_token() == "token-1"
    assert await auth.get_token() == "token-2"
    assert "token-" not in repr(auth)


async def test_token_auth_rejects_bad_tokens() -> None:
    with pytest.raises(ValueError, match="empty"):
        TokenAuth("  ")
    with pytest.raises(TypeError, match="async callable"):
        TokenAuth(42)  # type: ignore[arg-type]

    async def empty() -> str:
        return ""

    with pytest.raises(kd.TokenProviderError, match="must not be empty"):
        await TokenAuth(empty).get_token()


def test_token_never_appears_in_repr() -> None:
    auth = TokenAuth("super-secret-token")
    assert "super-secret-token" not in repr(auth)
    assert "super-secret-token" not in str(auth)
