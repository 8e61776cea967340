"""Specialised structure functions for the models: the converter's fast path.

For each model, one function is generated (unrolled Python, built once at import) that
accepts exactly the documented common case: each field absent, None or of its usual JSON type
(strings as strings, numbers as numbers, lists as lists). It does no per-field work the data
does not need and calls no hook per field. Anything else (a number sent as a string, one
object where a list is documented, a sibling spelling, a wrong type) raises, and the
converter falls back to the cattrs functions, which accept every variant and name the path
of each problem. Both paths build equal models from what the fast one accepts; a property
test checks it.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, Union, get_args, get_origin

import attrs

__all__ = ["Fallback", "build_fast_structurers"]


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
    """Lines that leave the structured value of wire value ``name`` in ``name``."""
    plain = _PLAIN_TYPES.get(kind)
    if plain is not None:
        return [f"    if {name} is not None and type({name}) is not {plain}: raise Fallback"]
    if kind == "enum":
        members = f"_members_{detail.__name__}"
        namespace[members] = detail._value2member_map_
        base = "str" if issubclass(detail, str) else "int"
        return [
            f"    if {name} is not None:",
            f"        if type({name}) is not {base}: raise Fallback",
            f"        {name} = {members}.get({name}, {name})",
        ]
    if kind == "time":
        return [f"    if {name} is not None: {name} = local_time({name})"]
    if kind == "epoch_ms":
        return [
            f"    if {name} is not None:",
            f"        if type({name}) is not int: raise Fallback",
            f"        {name} = epoch_millis({name})",
        ]
    if kind == "model":
        return [f"    if {name} is not None: {name} = fast_{detail.__name__}({name})"]
    if kind == "models":
        return [
            f"    if {name} is None: {name} = ()",
            f"    elif type({name}) is list: {name} = tuple([fast_{detail.__name__}(x) "
            f"for x in {name}])",
            "    else: raise Fallback",
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
    lines = [
        f"def fast_{name}(o):",
        "    if type(o) is not dict: raise Fallback",
        "    get = o.get",
    ]
    lines += [f"    if {alias!r} in o: raise Fallback" for alias in aliases]
    for index, field in enumerate(fields):
        kind, detail = _field_kind(cls, field, overrides)
        lines.append(f"    v{index} = get({wire_name(cls, field.name)!r})")
        lines += _check(f"v{index}", kind, detail, namespace)
    namespace[f"_cls_{name}"] = cls
    lines.append(f"    x = _new(_cls_{name})")
    if "__slots__" in cls.__dict__:
        for index, field in enumerate(fields):
            setter = f"_set_{name}_{index}"
            namespace[setter] = cls.__dict__[field.name].__set__
            lines.append(f"    {setter}(x, v{index})")
    else:
        items = ", ".join(f"{field.name!r}: v{i}" for i, field in enumerate(fields))
        lines.append(f"    _setattr(x, '__dict__', {{{items}}})")
    lines.append("    return x")
    return "\n".join(lines)


def build_fast_structurers(
    models: tuple[type, ...],
    *,
    wire_name: Callable[[type, str], str],
    aliases: Mapping[type, Mapping[str, str]],
    overrides: Mapping[tuple[type, str], str],
    local_time: Callable[[Any], Any],
    epoch_millis: Callable[[Any], Any],
) -> dict[type, Callable[[Any], Any]]:
    """One generated fast function per model (they call each other for nested models).

    ``local_time`` and ``epoch_millis`` are the converter's own hooks for those fields, so
    both paths parse times the same way.
    """
    namespace: dict[str, Any] = {
        "Fallback": Fallback,
        "local_time": local_time,
        "epoch_millis": epoch_millis,
        "_new": object.__new__,
        "_setattr": object.__setattr__,
    }
    for cls in models:
        attrs.resolve_types(cls)
        code = _source(cls, wire_name, aliases.get(cls, {}), overrides, namespace)
        exec(compile(code, f"<koodrive_async fast path for {cls.__name__}>", "exec"), namespace)
    return {cls: namespace[f"fast_{cls.__name__}"] for cls in models}

