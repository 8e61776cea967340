"""The emulator's own check of HMAC-SHA256 app authentication, written from the spec.

Deliberately independent of ``koodrive_async.auth``: the emulator stands in for the
service, so a signing bug in the client must show as a 401 here, not be shared by both
sides. Every step below is one step of the documented scheme (spec/koodrive-api.md, "App
authentication"), working from the request as it arrived on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, unquote

import attrs

ALGORITHM = "HMAC-SHA256"
# Kept as they are in the canonical forms; every other byte of the UTF-8 text is %XX.
_UNRESERVED = frozenset((string.ascii_letters + string.digits + "-_.~").encode())


def percent_encode(text: str) -> str:
    """``A-Z a-z 0-9 - _ . ~`` kept, every other UTF-8 byte as upper-case ``%XX``."""
    return "".join(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in text.encode())


def canonical_uri(raw_path: str) -> str:
    """CanonicalURI of a path as sent: each segment decoded, then encoded, and a trailing
    ``/`` appended if missing (``/koodrive/ose/v1/jobs`` -> ``/koodrive/ose/v1/jobs/``)."""
    uri = "/".join(percent_encode(unquote(segment)) for segment in raw_path.split("/"))
    if not uri.startswith("/"):
        uri = "/" + uri
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """CanonicalQueryString: ``name=value`` encoded (an empty value keeps its ``=``), sorted
    by name in code-point order (a repeated name by value), joined with ``&``."""
    encoded = sorted((percent_encode(name), percent_encode(value)) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The decoded ``name, value`` pairs of a query string as sent (``+`` is a space)."""
    return parse_qsl(raw_query, keep_blank_values=True)


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """CanonicalHeaders (``name:trimmed value\\n`` each) and SignedHeaders (``a;b;c``),
    both by lower-case name in sorted order."""
    lowered = sorted((name.lower(), value.strip()) for name, value in headers.items())
    return (
        "".join(f"{name}:{value}\n" for name, value in lowered),
        ";".join(name for name, _ in lowered),
    )


def canonical_request(method: str, raw_target: str, headers: Mapping[str, str], body: bytes) -> str:
    """CanonicalRequest of a request as sent: ``raw_target`` is its path and query exactly
    as on the request line; ``headers`` the signed ones, by name."""
    raw_path, _, raw_query = raw_target.partition("?")
    header_lines, signed = canonical_headers(headers)
    return "\n".join(
        (
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(query_pairs(raw_query)),
            header_lines,
            signed,
            hashlib.sha256(body).hexdigest(),
        )
    )


def string_to_sign(canonical: str) -> str:
    """``HMAC-SHA256\\n`` and the lower-case hex SHA-256 of the canonical request."""
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def signature(app_secret: str, to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 of the string to sign, keyed by the app secret."""
    return hmac.new(app_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


@attrs.frozen
class Authorization:
    """The fields of ``Authorization: HMAC-SHA256 AppId=..,SignedHeaders=a;b,Signature=..``."""

    app_id: str
    signed_headers: tuple[str, ...]
    """The names as listed (see :meth:`well_formed_names`)."""
    signature: str

    @property
    def well_formed_names(self) -> bool:
        """Whether SignedHeaders is as documented: lower-case names, sorted, each once."""
        names = self.signed_headers
        return all(name == name.lower() for name in names) and list(names) == sorted(set(names))


def parse_authorization(value: str) -> Authorization | None:
    """The fields of an app-auth ``Authorization`` value; None if it is not one (wrong
    algorithm, or AppId, SignedHeaders or Signature missing or empty)."""
    algorithm, _, params = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in params.split(","):
        name, sep, field = part.strip().partition("=")
        if sep:
            fields[name.strip()] = field.strip()
    app_id = fields.get("AppId")
    signed = fields.get("SignedHeaders")
    sent = fields.get("Signature")
    if not app_id or not signed or not sent:
        return None
    names = tuple(name.strip() for name in signed.split(";") if name.strip())
    return Authorization(app_id, names, sent) if names else None


def verify(
    app_secret: str,
    method: str,
    raw_target: str,
    signed_values: Mapping[str, str],
    body: bytes,
    sent_signature: str,
) -> bool:
    """Whether ``sent_signature`` signs this request with ``app_secret`` (constant time)."""
    to_sign = string_to_sign(canonical_request(method, raw_target, signed_values, body))
    return hmac.compare_digest(signature(app_secret, to_sign), sent_signature.lower())
