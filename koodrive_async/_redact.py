"""Secrets kept out of every message that quotes server text: what they are, and redaction.

No I/O and no knowledge of the auth classes (``_protocol.secrets_of`` maps a client's auth to
its secrets), so both the converter, below auth, and the protocol core use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final
from urllib.parse import quote

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SIGNATURE_SHAPE",
    "Secret",
    "redact",
    "redact_document",
    "secrets_to_redact",
    "snippet",
]

REDACTED: Final = "<redacted>"
#: A secret is a string, or a pattern for one not known exactly (see ``secrets_of``).
Secret = str | re.Pattern[str]
#: What an HMAC-SHA256 signature looks like: 64 hex digits.
SIGNATURE_SHAPE: Final = re.compile(r"[0-9a-fA-F]{64}")
#: Shorter strings are not redacted: real tokens and signatures are far longer, and
#: redacting a test token such as "t" would mangle every message.
MIN_SECRET_LENGTH: Final = 6
#: Schemes an Authorization token value may start with (``auth`` adds them, or the token
#: came with one).
_TOKEN_SCHEMES: Final = ("Bearer+", "Bearer ", "bearer+", "bearer ", "AT ", "Basic ")
_SIGNATURE_FIELD: Final = "Signature="
_SNIPPET_WINDOW: Final = 4096


def redact(text: str, secrets: Sequence[Secret]) -> str:
    """``text`` with every occurrence of each secret replaced by ``<redacted>``.

    ``secrets`` should come from ``secrets_of`` / ``secrets_to_redact`` (longest first, so a
    token inside its Authorization value goes with it).
    """
    for secret in secrets:
        if isinstance(secret, str):
            if secret and secret in text:
                text = text.replace(secret, REDACTED)
        else:
            text = secret.sub(REDACTED, text)
    return text


def secrets_to_redact(
    authorization: str | None,
    *,
    token_prefix: str | None = None,
    also: Iterable[str | None] = (),
) -> tuple[str, ...]:
    """What the client must never quote back from a server: longest first, no duplicates,
    none shorter than MIN_SECRET_LENGTH.

    The ``Authorization`` value sent, the credential inside it (the token without its
    scheme or ``token_prefix``, and its percent-encoded form; or an HMAC ``Signature``), and
    ``also`` (an app secret, a static token).
    """
    found: list[str] = []
    if authorization:
        value = authorization.strip()
        found.append(value)
        if _SIGNATURE_FIELD in value:
            found.append(value.rsplit(_SIGNATURE_FIELD, 1)[1].split(",", 1)[0].strip())
        else:
            for scheme in (token_prefix, *_TOKEN_SCHEMES):
                if scheme and value.startswith(scheme) and len(value) > len(scheme):
                    bare = value[len(scheme):].strip()
                    found += (bare, quote(bare, safe=""))
                    break
    found += (value.strip() for value in also if value)
    unique = {s for s in found if len(s) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=lambda s: (-len(s), s)))


def snippet(body: bytes, secrets: Sequence[Secret] = ()) -> str:
    """The start of a body for a message: whitespace collapsed, secrets redacted, 200 chars.

    Redacted before it is cut, and a window that cuts the body also loses its last
    characters, as many as the longest secret has: no part of a secret survives a cut.
    """
    text = body[:_SNIPPET_WINDOW].decode("utf-8", "replace")
    if secrets and len(body) > _SNIPPET_WINDOW:
        longest = max(len(s) if isinstance(s, str) else 64 for s in secrets)
        text = text[: max(len(text) - longest, 0)]
    return " ".join(redact(text, secrets).split())[:200]


def redact_document(data: Any, secrets: Sequence[Secret]) -> Any:
    """A copy of a decoded JSON document with the secrets redacted from every string."""
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, list):
        return [redact_document(item, secrets) for item in data]
    if isinstance(data, dict):
        return {
            redact(key, secrets) if isinstance(key, str) else key: redact_document(v, secrets)
            for key, v in data.items()
        }
    return data
