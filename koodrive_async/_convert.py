"""The one cattrs converter: wire JSON -> models, with every rename and every tolerated variant.

Built by a factory so tests can build a strict twin (unknown keys forbidden) that catches a
rename typo, while production ignores keys it does not know. Renames come from one hook on
``attrs.has``: snake_case attribute -> camelCase wire name, plus the few irregular names.

The scalar hooks are deliberately small and explicit: they accept the documented variants
(numbers sent as strings and back, ``subFileList`` as one object) and reject anything else
with a message, so a wrong document becomes a ResponseDecodeError naming the path.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence
from cattrs.gen import make_dict_structure_fn, override

from ._fastpath import build_fast_structurers
from .models import (
    ActionType,
    FileType,
    JobDetail,
    JobInfo,
    JobStatus,
    TaskInfo,
    TaskResultCode,
    TaskStatus,
    TaskType,
    UncompressedFileInfo,
)

__all__ = ["make_converter", "wire_name"]


# Wire names that are not the camelCase of the attribute name.
_IRREGULAR_NAMES: Final[Mapping[tuple[type, str], str]] = {
    (UncompressedFileInfo, "reservation_info"): "reservatioinInfo",
}
# Wire names a sibling page uses for the same field: alias -> documented name.
_ALIASES: Final[Mapping[type, Mapping[str, str]]] = {
    UncompressedFileInfo: {"updateAt": "updatedAt"},
}


def wire_name(cls: type, attribute: str) -> str:
    """The JSON key of ``cls.attribute`` on the wire."""
    irregular = _IRREGULAR_NAMES.get((cls, attribute))
    if irregular is not None:
        return irregular
    head, *rest = attribute.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _str(value: Any, _: object = None) -> str | None:
    if value is None or type(value) is str:
        return value
    if type(value) is int:  # an id sent as a JSON number
        return str(value)
    raise ValueError(f"expected a string, got {_describe(value)}")


def _to_int(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is str:
        text = value.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    elif type(value) is float and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {_describe(value)}")


def _int(value: Any, _: object = None) -> int | None:
    return None if value is None else _to_int(value)


def _int_or_str(value: Any, _: object = None) -> int | str | None:
    """A code documented as an integer that may also come as a string such as "APIGW.0301"."""
    if value is None:
        return None
    try:
        return _to_int(value)
    except ValueError:
        if type(value) is str:
            return value
        raise


def _int_enum_hook(enum_cls: type[enum.IntEnum]) -> Callable[[Any, object], Any]:
    members = enum_cls._value2member_map_

    def structure(value: Any, _: object = None) -> Any:
        if value is None:
            return None
        number = _to_int(value)
        return members.get(number, number)

    return structure


def _str_enum_hook(enum_cls: type[enum.StrEnum]) -> Callable[[Any, object], Any]:
    members = enum_cls._value2member_map_

    def structure(value: Any, _: object = None) -> Any:
        if value is None:
            return None
        text = value if type(value) is str else _str(value)
        return members.get(text, text)

    return structure


@functools.lru_cache(maxsize=4096)
def _parse_local_time(text: str) -> datetime:
    # The same few times recur in a document (begin, end, create; every file's createTime),
    # and parsing costs 15 times a cache hit. datetimes are immutable: sharing them is safe.
    if len(text) == 14 and text.isdigit() and text.isascii():
        return datetime.fromisoformat(f"{text[:8]}T{text[8:]}")
    raise ValueError(f"expected a yyyyMMddHHmmss time, got {_describe(text)}")


def _local_time(value: Any, _: object = None) -> datetime | None:
    """``yyyyMMddHHmmss`` (no zone stated, so a naive datetime); empty means absent."""
    if value is None or value == "":
        return None
    if type(value) is str:
        return _parse_local_time(value)
    if type(value) is int:
        return _parse_local_time(str(value))
    raise ValueError(f"expected a yyyyMMddHHmmss time, got {_describe(value)}")


def _epoch_millis(value: Any, _: object = None) -> datetime | None:
    """Epoch milliseconds, as a number or a string, to an aware UTC datetime."""
    if value is None or value == "":
        return None
    millis = _to_int(value)
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch milliseconds out of range: {_describe(value)}") from None


def _mapping(value: Any, _: object = None) -> Mapping[str, Any] | None:
    if value is None or type(value) is dict:
        return value
    raise ValueError(f"expected an object, got {_describe(value)}")


_FIELD_HOOKS: Final[Mapping[tuple[type, str], Callable[[Any, object], Any]]] = {
    (UncompressedFileInfo, "updated_at"): _epoch_millis,
}
_FAST_KINDS: Final[Mapping[tuple[type, str], str]] = {
    (UncompressedFileInfo, "updated_at"): "epoch_ms",
}
#: The structured types of the endpoints' ``data``, nested ones first.
MODELS: Final = (UncompressedFileInfo, TaskInfo, JobInfo, JobDetail)
_FAST: Final = build_fast_structurers(
    MODELS, wire_name=wire_name, aliases=_ALIASES, overrides=_FAST_KINDS,
    local_time=_local_time, epoch_millis=_epoch_millis,
)


def make_converter(*, strict: bool = False, fast_path: bool | None = None) -> cattrs.Converter:
    """Build the converter for wire documents.

    Args:
        strict: Forbid keys the models do not know (for tests); production ignores them.
        fast_path: Try the generated fast functions first (``_fastpath``); default: unless
            strict, since they ignore unknown keys.
    """
    if fast_path is None:
        fast_path = not strict
    converter = cattrs.Converter(detailed_validation=True)

    for hook_type, hook in (
        (str | None, _str),
        (int | None, _int),
        (int | str | None, _int_or_str),
        (datetime | None, _local_time),
        (Mapping[str, Any] | None, _mapping),
        (JobStatus | int | None, _int_enum_hook(JobStatus)),
        (TaskResultCode | int | None, _int_enum_hook(TaskResultCode)),
        (TaskType | int | None, _int_enum_hook(TaskType)),
        (ActionType | int | None, _int_enum_hook(ActionType)),
        (FileType | int | None, _int_enum_hook(FileType)),
        (TaskStatus | str | None, _str_enum_hook(TaskStatus)),
    ):
        converter.register_structure_hook(hook_type, hook)

    def model_tuple_factory(tuple_type: Any) -> Callable[[Any, object], Any]:
        # A missing list is an empty tuple; one object where a list is documented (subFileList)
        # is a list of one.
        items = homogenous_tuple_structure_factory(tuple_type, converter)

        def structure(value: Any, _: object = None) -> tuple[Any, ...]:
            if value is None:
                return ()
            if type(value) is dict:
                value = [value]
            elif type(value) is not list:
                raise ValueError(f"expected a list, got {_describe(value)}")
            result: tuple[Any, ...] = items(value, tuple_type)
            return result

        return structure

    converter.register_structure_hook_factory(
        lambda t: is_sequence(t) and getattr(t, "__origin__", None) is tuple,
        model_tuple_factory,
    )

    def model_factory(cls: Any) -> Callable[[Any, object], Any]:
        overrides = {}
        for field in attrs.fields(cls):
            field_hook = _FIELD_HOOKS.get((cls, field.name))
            overrides[field.name] = override(
                rename=wire_name(cls, field.name), struct_hook=field_hook
            )
        build = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=strict, **overrides  # type: ignore[arg-type]
        )
        aliases = _ALIASES.get(cls, {})

        def structure(value: Any, _: object = None) -> Any:
            if type(value) is not dict:
                raise ValueError(f"expected an object, got {_describe(value)}")
            for alias, name in aliases.items():
                if alias in value and name not in value:
                    value = {**value, name: value[alias]}
                    del value[alias]
            return build(value, cls)

        fast = _FAST.get(cls) if fast_path else None
        if fast is None:
            return structure

        def structure_fast_first(value: Any, _: object = None) -> Any:
            try:
                return fast(value)
            except Exception:  # any surprise: the full path decides, and names the problem
                return structure(value)

        return structure_fast_first

    converter.register_structure_hook_factory(attrs.has, model_factory)
    return converter
