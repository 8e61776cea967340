"""The service root a client is given: checked once, its path kept as a prefix."""

from __future__ import annotations

import ipaddress
from typing import Final

import yarl

from . import _protocol as proto

__all__ = ["check_base_url", "is_loopback"]

_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine: localhost, or a loopback address (v4 or v6)."""
    if host is None:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> yarl.URL:
    """The service root as a URL, its path kept as a prefix; ValueError if unusable."""
    if not isinstance(base_url, str) or not base_url:
        raise ValueError("base_url is required, e.g. 'https://intl.myhuaweicloud-koodrive.com'")
    url = yarl.URL(base_url)
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
    if url.user or url.password:
        raise ValueError("base_url must not carry credentials")
    if url.query_string or url.fragment:
        raise ValueError("base_url must not have a query or a fragment")
    if url.scheme == "http" and not (allow_insecure_http or is_loopback(url.host)):
        raise ValueError(
            f"base_url {base_url!r} is not https: refused, as tokens would travel in clear "
            "(loopback addresses are allowed; pass allow_insecure_http=True to override)"
        )
    # A path is a prefix every request path goes under (a gateway's mount point), so the
    # API's own path must not be in it: it would be sent twice.
    prefix = url.path.rstrip("/")
    if (prefix + "/").endswith(proto.API_PREFIX):
        raise ValueError(
            f"base_url {base_url!r} ends with the API path {proto.API_PREFIX!r}: give the "
            "service root (a gateway's prefix is fine), the client adds the API path"
        )
    return url.with_path(prefix)
