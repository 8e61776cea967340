"""Secrets kept out of quoted server text (``_redact``), with literals."""

from __future__ import annotations

from koodrive_async import _envelope as envelope
from koodrive_async import _redact as redact

TOKEN = "tok-SECRET-4e1f9c"

SIG = "ab" * 32

HMAC = f"HMAC-SHA256 AppId=a,SignedHeaders=host;x-date;x-user-id,Signature={SIG}"



def test_secrets_to_redact_finds_the_credential_inside_the_authorization() -> None:
    assert redact.secrets_to_redact("Bearer+" + TOKEN) == ("Bearer+" + TOKEN, TOKEN)
    assert redact.secrets_to_redact("AT " + TOKEN) == ("AT " + TOKEN, TOKEN)
    assert redact.secrets_to_redact("Tok:" + TOKEN, token_prefix="Tok:") == ("Tok:" + TOKEN, TOKEN)
    assert redact.secrets_to_redact("Bearer+a/b=c+d" + TOKEN) == (  # and percent-encoded
        "Bearer+a/b=c+d" + TOKEN, "a%2Fb%3Dc%2Bd" + TOKEN, "a/b=c+d" + TOKEN,
    )
    assert redact.secrets_to_redact(HMAC, also=["app-secret-1"]) == (HMAC, SIG, "app-secret-1")
    assert redact.secrets_to_redact("Bearer+t") == ("Bearer+t",)  # "t" is too short
    assert redact.secrets_to_redact(None) == ()


def test_error_texts_are_redacted_before_they_are_cut() -> None:
    secrets = redact.secrets_to_redact("Bearer+" + TOKEN)
    long_msg = "m" * 495 + TOKEN  # the 500-character cut would keep "tok-S"
    body = f'{{"code":"Bearer+{TOKEN}","msg":"{long_msg}"}}'.encode()
    error = envelope.api_error(401, body, trace_id=None, retry_after=None, secrets=secrets)
    assert error.code == redact.REDACTED  # the whole Authorization value, echoed as a code
    assert error.msg == "m" * 495 + "<reda"
    page = b" " * 4090 + TOKEN.encode()  # across the 4096-byte window
    error = envelope.api_error(502, page, trace_id=None, retry_after=None, secrets=secrets)
    assert error.msg is None or "tok" not in error.msg
    page = b"<p>" + b"y" * 190 + TOKEN.encode()  # across the 200-character cut
    error = envelope.api_error(502, page, trace_id=None, retry_after=None, secrets=secrets)
    assert error.msg is not None and "tok" not in error.msg

