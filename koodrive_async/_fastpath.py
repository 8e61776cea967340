"""The wire's scalar formats, and the converter's fast path built on them.

Used only by ``_convert.make_converter``, the one converter factory. The readers (one per kind
of wire value: ids that may come as numbers, integers that may come as strings, enums kept
raw when unknown, the 14-digit local times, epoch milliseconds) are its cattrs hooks, and the
writers the formats ``to_wire`` writes back.

The fast path: for each model, one function is generated (unrolled Python, built once) that
accepts exactly the documented common case: each field absent, None or of its usual JSON type
(strings as strings, numbers as numbers, lists as lists). It does no per-field work the data
does not need and calls no hook per field; an instance of a dict class gets only the fields
the document has (the class holds the defaults), and a slotted one is filled by plain
stores. Anything else (a number sent as a string, one object where a list is documented, a
sibling spelling, a wrong type) raises, and each model's hook falls back to the cattrs
functions, which accept every variant and name the path of each problem. Both paths build
equal models from what the fast one accepts, with the same readers for times; a property test
checks it.
"""

from __future__ import annotations

import enum
import functools
import types
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Union, get_args, get_origin

import attrs

__all__ = [
    "Fallback",
    "build_fast_structurers",
    "describe",
    "enum_value",
    "int_enum_reader",
    "parse_local_time",
    "read_epoch_millis",
    "read_int",
    "read_int_or_str",
    "read_local_time",
    "read_mapping",
    "read_str",
    "str_enum_reader",
    "to_int",
    "write_epoch_millis",
    "write_local_time",
]


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


# -- The wire's scalar formats: one reader per kind of value (a cattrs hook), and the writers
# of the two time formats. Both paths read with these, so they agree by construction.


def describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_str(value: Any, _: object = None) -> str | None:
    if value is None or type(value) is str:
        return value
    if type(value) is int:  # an id sent as a JSON number
        return str(value)
    raise ValueError(f"expected a string, got {describe(value)}")


def to_int(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is str:
        text = value.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    elif type(value) is float and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {describe(value)}")


def read_int(value: Any, _: object = None) -> int | None:
    return None if value is None else to_int(value)


def read_int_or_str(value: Any, _: object = None) -> int | str | None:
    """A code documented as an integer that may also come as a string such as "APIGW.0301"."""
    if value is None:
        return None
    try:
        return to_int(value)
    except ValueError:
        if type(value) is str:
            return value
        raise


def int_enum_reader(enum_cls: type[enum.IntEnum]) -> Callable[[Any, object], Any]:
    members = enum_cls._value2member_map_

    def structure(value: Any, _: object = None) -> Any:
        if value is None:
            return None
        number = to_int(value)
        return members.get(number, number)

    return structure


def str_enum_reader(enum_cls: type[enum.StrEnum]) -> Callable[[Any, object], Any]:
    members = enum_cls._value2member_map_

    def structure(value: Any, _: object = None) -> Any:
        if value is None:
            return None
        text = value if type(value) is str else read_str(value)
        return members.get(text, text)

    return structure


@functools.lru_cache(maxsize=4096)
def parse_local_time(text: str) -> datetime:
    # The same few times recur in a document (begin, end, create; every file's createTime),
    # and parsing costs 15 times a cache hit. datetimes are immutable: sharing them is safe.
    if len(text) == 14 and text.isdigit() and text.isascii():
        return datetime.fromisoformat(f"{text[:8]}T{text[8:]}")
    raise ValueError(f"expected a yyyyMMddHHmmss time, got {describe(text)}")


def read_local_time(value: Any, _: object = None) -> datetime | None:
    """``yyyyMMddHHmmss`` (no zone stated, so a naive datetime); empty means absent."""
    if value is None or value == "":
        return None
    if type(value) is str:
        return parse_local_time(value)
    if type(value) is int:
        return parse_local_time(str(value))
    raise ValueError(f"expected a yyyyMMddHHmmss time, got {describe(value)}")


def read_epoch_millis(value: Any, _: object = None) -> datetime | None:
    """Epoch milliseconds, as a number or a string, to an aware UTC datetime (exactly: no
    float on the way, so every millisecond the wire can spell comes back as sent)."""
    if value is None or value == "":
        return None
    millis = to_int(value)
    try:
        return _EPOCH + millis * _MILLISECOND
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch milliseconds out of range: {describe(value)}") from None


def read_mapping(value: Any, _: object = None) -> Mapping[str, Any] | None:
    if value is None or type(value) is dict:
        return value
    raise ValueError(f"expected an object, got {describe(value)}")


def enum_value(member: enum.Enum) -> Any:
    return member.value


def write_local_time(value: datetime) -> str:
    """``yyyyMMddHHmmss``: the wall-clock fields as they are (any zone is not written, and
    the wire has no fraction of a second)."""
    return (f"{value.year:04d}{value.month:02d}{value.day:02d}"
            f"{value.hour:02d}{value.minute:02d}{value.second:02d}")


def write_epoch_millis(value: datetime | None) -> int | None:
    """Whole epoch milliseconds; a naive datetime is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MILLISECOND



# -- The generated fast path ------------------------------------------------------------


class Fallback(Exception):
    """The fast path does not take this document: use the full converter."""


def _field_kind(cls: type, field: attrs.Attribute[Any], overrides: Mapping[tuple[type, str], str],
                ) -> tuple[str, Any]:
    """What a field holds: ("str" | "int" | "int_or_str" | "enum" | "time" | "epoch_ms" |
    "mapping" | "model" | "models", detail)."""
    special = overrides.get((cls, field.name))
    if special is not None:
        return special, None
    hint = field.type
    origin = get_origin(hint)
    if origin is tuple:
        return "models", get_args(hint)[0]
    args = [a for a in get_args(hint) if a is not type(None)] if origin in (
        Union, types.UnionType) else [hint]
    enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
    if enums:
        return "enum", enums[0]
    if args == [str]:
        return "str", None
    if args == [int]:
        return "int", None
    if set(args) == {int, str}:
        return "int_or_str", None
    if args == [datetime]:
        return "time", None
    if len(args) == 1 and isinstance(args[0], type) and attrs.has(args[0]):
        return "model", args[0]
    if len(args) == 1 and get_origin(args[0]) is Mapping:
        return "mapping", None
    raise TypeError(f"no fast path for {cls.__name__}.{field.name}: {hint!r}")


# Kinds taken as they are when of this exact JSON type (digit strings for ints go the slow
# way, which converts them).
_PLAIN_TYPES: Final = {"str": "str", "int": "int", "int_or_str": "int", "mapping": "dict"}


def _check(name: str, kind: str, detail: Any, namespace: dict[str, Any]) -> list[str]:
    """The lines, indented for the body of ``if {name} is not None:``, that check the wire
    value in ``name`` and leave its structured value there."""
    plain = _PLAIN_TYPES.get(kind)
    if plain is not None:
        return [f"        if type({name}) is not {plain}: raise Fallback"]
    if kind == "enum":
        members = f"_members_{detail.__name__}"
        namespace[members] = detail._value2member_map_
        base = "str" if issubclass(detail, str) else "int"
        return [
            f"        if type({name}) is not {base}: raise Fallback",
            f"        {name} = {members}.get({name}, {name})",
        ]
    if kind == "time":  # the cached parser itself: times recur, and "" means absent
        return [
            f"        if type({name}) is not str: raise Fallback",
            f"        {name} = local_time({name}) if {name} else None",
        ]
    if kind == "epoch_ms":
        return [
            f"        if type({name}) is not int: raise Fallback",
            f"        {name} = epoch_millis({name})",
        ]
    if kind == "model":
        return [f"        {name} = fast_{detail.__name__}({name})"]
    if kind == "models":
        return [
            f"        if type({name}) is not list: raise Fallback",
            f"        {name} = tuple(map(fast_{detail.__name__}, {name}))",
        ]
    raise AssertionError(kind)  # pragma: no cover - _field_kind returns only these


def _source(
    cls: type,
    wire_name: Callable[[type, str], str],
    aliases: Mapping[str, str],
    overrides: Mapping[tuple[type, str], str],
    namespace: dict[str, Any],
) -> str:
    name = cls.__name__
    fields = attrs.fields(cls)
    slotted = "__slots__" in cls.__dict__
    for field in fields:  # an absent field takes its default: it must be a plain value
        if field.default is attrs.NOTHING or type(field.default) is attrs.Factory:
            raise TypeError(f"no fast path for {name}.{field.name}: no plain default")
    namespace[f"_cls_{name}"] = cls
    lines = [f"def fast_{name}(o):", "    if type(o) is not dict: raise Fallback",
             "    get = o.get"]
    lines += [f"    if {alias!r} in o: raise Fallback" for alias in aliases]
    if not slotted:
        # Only the fields the document has are stored (the class holds every default, see
        # models.defaults_on_class): the instance's dict stays a split table sharing the
        # class's keys, 240 bytes for TaskInfo, where update() from a dict of the defaults
        # would make it a combined copy of that dict, 520.
        for field in fields:
            if cls.__dict__.get(field.name, attrs.NOTHING) != field.default:
                raise TypeError(f"no fast path for {name}.{field.name}: default not on the class")
        lines += [f"    x = _new(_cls_{name})", "    d = x.__dict__"]
    for index, field in enumerate(fields):
        kind, detail = _field_kind(cls, field, overrides)
        lines.append(f"    v{index} = get({wire_name(cls, field.name)!r})")
        lines.append(f"    if v{index} is not None:")
        lines += _check(f"v{index}", kind, detail, namespace)
        if not slotted:
            lines.append(f"        d[{field.name!r}] = v{index}")
        elif field.default is not None:
            lines.append(f"    else: v{index} = {field.default!r}")
    if slotted:
        # Filled as an instance of a subclass with the same slots and object's own
        # __setattr__, then given its class: a plain store per slot (the interpreter's
        # cheapest, specialised to the slot) where a frozen class's setters are a call each.
        namespace[f"_fill_{name}"] = _filler(cls)
        lines.append(f"    x = _new(_fill_{name})")
        lines += [f"    x.{field.name} = v{index}" for index, field in enumerate(fields)]
        lines.append(f"    x.__class__ = _cls_{name}")
    lines.append("    return x")
    return "\n".join(lines)


def _filler(cls: type) -> type:
    """A subclass of slotted ``cls`` that adds no slot and whose attributes can be set: its
    instances can become ``cls`` instances by ``__class__`` assignment (same layout)."""
    return type(f"_Fill{cls.__name__}", (cls,), {
        "__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__,
    })


def build_fast_structurers(
    models: tuple[type, ...],
    *,
    wire_name: Callable[[type, str], str],
    aliases: Mapping[type, Mapping[str, str]],
    overrides: Mapping[tuple[type, str], str],
) -> dict[type, Callable[[Any], Any]]:
    """One generated fast function per model (they call each other for nested models)."""
    namespace: dict[str, Any] = {
        "Fallback": Fallback,
        "local_time": parse_local_time,  # the cached parser: times recur in a document
        "epoch_millis": read_epoch_millis,
        "_new": object.__new__,
    }
    for cls in models:
        attrs.resolve_types(cls)
        code = _source(cls, wire_name, aliases.get(cls, {}), overrides, namespace)
        exec(compile(code, f"<koodrive_async fast path for {cls.__name__}>", "exec"), namespace)
    return {cls: namespace[f"fast_{cls.__name__}"] for cls in models}

