"""Where the command line finds its settings: flags first, then the environment.

Secrets (the token, the app secret) are read here and handed to the client; they never appear
in a message, a repr or ``--json`` output.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Final

import attrs

import koodrive_async as kd

from ._exit import UsageError
from ._output import Output

__all__ = [
    "ENV_ALLOW_INSECURE_HTTP",
    "ENV_APP_ID",
    "ENV_APP_SECRET",
    "ENV_BASE_URL",
    "ENV_TOKEN",
    "ENV_USER_ID",
    "INSECURE_HTTP_HINT",
    "Context",
    "Settings",
    "add_arguments",
    "connect",
    "is_utf8",
    "resolve",
]

ENV_BASE_URL: Final = "KOODRIVE_BASE_URL"
ENV_USER_ID: Final = "KOODRIVE_USER_ID"
ENV_TOKEN: Final = "KOODRIVE_TOKEN"
ENV_APP_ID: Final = "KOODRIVE_APP_ID"
ENV_APP_SECRET: Final = "KOODRIVE_APP_SECRET"
ENV_ALLOW_INSECURE_HTTP: Final = "KOODRIVE_ALLOW_INSECURE_HTTP"
#: How to override the refusal of a plain-http base URL, in the command line's own words.
INSECURE_HTTP_HINT: Final = f"pass --allow-insecure-http or set {ENV_ALLOW_INSECURE_HTTP}=1"
_YES: Final = frozenset({"1", "true", "yes", "on"})
_NO: Final = frozenset({"", "0", "false", "no", "off"})


@attrs.frozen
class Settings:
    """What a KooDriveClient needs; ``auth`` holds the secret and never prints it."""

    base_url: str
    user_id: str
    auth: kd.TokenAuth | kd.AppAuth = attrs.field(repr=False)
    allow_insecure_http: bool = False


def is_utf8(text: str) -> bool:
    """Whether ``text`` is valid UTF-8: argv and the environment carry undecodable bytes as
    lone surrogates, which no request body or header can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the connection flags to a command that talks to the API."""
    group = parser.add_argument_group(
        "connection (before or after the command; flags win over the variables named)"
    )
    group.add_argument("--base-url", metavar="URL", help=f"service root (${ENV_BASE_URL})")
    group.add_argument("--user-id", metavar="ID", help=f"KooDrive user id (${ENV_USER_ID})")
    group.add_argument(
        "--token", metavar="TOKEN",
        help=f"access token (${ENV_TOKEN}; prefer the variable: flags show in ps)",
    )
    group.add_argument("--app-id", metavar="ID", help=f"app id for app auth (${ENV_APP_ID})")
    group.add_argument(
        "--app-secret", metavar="SECRET", help=f"app secret for app auth (${ENV_APP_SECRET})"
    )
    group.add_argument(
        "--allow-insecure-http", action="store_true",
        help="allow a plain http:// base URL to a host that is not loopback, although the"
             f" credentials then travel in clear (${ENV_ALLOW_INSECURE_HTTP}=1)",
    )


def _pick(flag_value: str | None, env: Mapping[str, str], name: str) -> str | None:
    value = flag_value if flag_value is not None else env.get(name)
    if value is not None and not is_utf8(value):
        # Flags were checked when parsed: this is the variable. Its value may be a secret.
        raise UsageError(f"${name} is not valid UTF-8")
    value = value.strip() if value is not None else None
    return value or None


def _switch(flag: bool, env: Mapping[str, str], name: str) -> bool:
    """A yes/no setting: the flag, or the variable set to 1/true/yes/on (0/false/no/off)."""
    if flag:
        return True
    value = (_pick(None, env, name) or "").lower()
    if value not in _YES | _NO:
        raise UsageError(f"${name} must be 1 or 0 (or true/false, yes/no, on/off)")
    return value in _YES


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """The settings from the parsed flags and the environment.

    Raises:
        UsageError: A setting is missing, naming the flag and the variable that give it.
    """
    base_url = _pick(args.base_url, env, ENV_BASE_URL)
    if base_url is None:
        raise UsageError(f"no base URL: pass --base-url or set {ENV_BASE_URL}")
    user_id = _pick(args.user_id, env, ENV_USER_ID)
    if user_id is None:
        raise UsageError(f"no user id: pass --user-id or set {ENV_USER_ID}")
    token = _pick(args.token, env, ENV_TOKEN)
    app_id = _pick(args.app_id, env, ENV_APP_ID)
    app_secret = _pick(args.app_secret, env, ENV_APP_SECRET)
    auth: kd.TokenAuth | kd.AppAuth
    if token is not None:
        auth = kd.TokenAuth(token)
    elif app_id is not None and app_secret is not None:
        auth = kd.AppAuth(app_id, app_secret)
    elif app_id is not None:
        raise UsageError(f"no app secret for the app id: pass --app-secret or set {ENV_APP_SECRET}")
    elif app_secret is not None:
        raise UsageError(f"no app id for the app secret: pass --app-id or set {ENV_APP_ID}")
    else:
        raise UsageError(
            f"no credentials: pass --token or set {ENV_TOKEN}"
            f" (or --app-id and --app-secret, {ENV_APP_ID} and {ENV_APP_SECRET})"
        )
    return Settings(
        base_url=base_url, user_id=user_id, auth=auth,
        allow_insecure_http=_switch(args.allow_insecure_http, env, ENV_ALLOW_INSECURE_HTTP),
    )


def _client(settings: Settings, *, allow_insecure_http: bool) -> kd.KooDriveClient:
    return kd.KooDriveClient(
        settings.base_url, user_id=settings.user_id, auth=settings.auth,
        allow_insecure_http=allow_insecure_http,
    )


def connect(settings: Settings) -> kd.KooDriveClient:
    """A client for the configured service.

    Raises:
        UsageError: The base URL or user id is not acceptable; a plain-http base URL that
            only ``--allow-insecure-http`` would let through names that flag and its variable.
    """
    try:
        return _client(settings, allow_insecure_http=settings.allow_insecure_http)
    except ValueError as exc:
        error = str(exc)
    if not settings.allow_insecure_http:
        # Asking the client again, rather than repeating its rule of what is loopback, tells
        # whether plain http was the only objection. It opens nothing: the session is lazy.
        try:
            _client(settings, allow_insecure_http=True)
        except ValueError:
            pass
        else:
            error = (
                f"base URL {settings.base_url} is not https: refused, as the credentials would"
                f" travel in clear (loopback addresses are allowed); {INSECURE_HTTP_HINT}"
            )
    raise UsageError(error)


@attrs.frozen
class Context:
    """What every command is given besides its arguments: the output and the environment."""

    out: Output
    env: Mapping[str, str] = attrs.field(repr=False)

    def connect(self, args: argparse.Namespace) -> kd.KooDriveClient:
        """A client for the service the flags and the environment name.

        Raises:
            UsageError: A setting is missing or not acceptable.
        """
        return connect(resolve(args, self.env))
