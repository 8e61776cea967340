"""The saved state of a wait: what ``resume=`` accepts and every checkpoint hands out.

One version, one ``polls``: ``WaitState`` carries what the waiter counted and, nested, what
the poll schedule needs to go on (``ScheduleState``). Both are frozen attrs classes; JSON is
made and read by a small cattrs converter whose scalar hooks are strict (a bool is not a
number, ``"1"`` is not an int), and every range is an attrs validator, so a bad state is a
ValueError that names the field.

States written by 0.1 (version 1: the schedule's part nested its own ``version``, ``polls``
and ``elapsed``, and there was no ``saved_at``) are still accepted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote

__all__ = ["STATE_VERSION", "Event", "ScheduleState", "WaitState", "make_state_converter"]

#: The version ``WaitState.to_json`` writes.
STATE_VERSION: Final = 2
# Version 1 is 0.1's format: read, never written.
_READABLE_VERSIONS: Final = (1, STATE_VERSION)
# Bounds the memory of a schedule (and of its saved state) whatever the job does.
MAX_EVENTS: Final = 100

_T = TypeVar("_T")

#: One change of progress: (seconds before the last poll, percent reached, poll gap seconds).
Event = tuple[float, int, float]


def _finite(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be finite and >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be finite and > 0, got {value!r}")


def _percent(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise ValueError(f"{attribute.name} must be within [0, 100], got {value!r}")


def _events(_: object, attribute: attrs.Attribute[Any], value: tuple[Event, ...]) -> None:
    if len(value) > MAX_EVENTS:
        raise ValueError(f"events must hold at most {MAX_EVENTS} items, got {len(value)}")
    for age, progress, gap in value:
        if not (math.isfinite(age) and age >= 0 and math.isfinite(gap) and gap >= 0):
            raise ValueError("events: ages and gaps must be finite and >= 0")
        if not 0 <= progress <= 100:
            raise ValueError("events: progress must be within [0, 100]")
    for (age, progress, _gap), (later_age, later_progress, _) in itertools.pairwise(value):
        if not (later_age <= age and progress < later_progress):
            raise ValueError("events must rise in time and in progress")


@attrs.frozen(kw_only=True)
class ScheduleState:
    """What a poll schedule needs to go on, free of absolute times (ages before the last poll).

    Attributes:
        fallback: Seconds; the next blind interval.
        status: The last status seen, None before any.
        progress: The last progress seen (percent), None while unknown.
        run_age: Seconds from the start of the current run of progress to the last poll.
        run_progress: The progress at the start of that run; set exactly when ``run_age`` is.
        events: The changes of progress of the run, oldest first.
        prior_rate: Percent per second carried across an earlier resume, None if none.
    """

    fallback: float = attrs.field(validator=_positive)
    status: int | None
    progress: int | None = attrs.field(validator=_percent)
    run_age: float | None = attrs.field(validator=_non_negative)
    run_progress: int | None = attrs.field(validator=_percent)
    events: tuple[Event, ...] = attrs.field(validator=_events)
    prior_rate: float | None = attrs.field(validator=_positive)

    def __attrs_post_init__(self) -> None:
        if (self.run_age is None) != (self.run_progress is None):
            raise ValueError("run_age and run_progress must both be set or both be null")

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON values."""
        data: dict[str, Any] = _CONVERTER.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: object) -> ScheduleState:
        """Read what ``to_json`` wrote; ValueError naming the malformed field."""
        return _structure(data, cls)


def _version(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value != STATE_VERSION:
        raise ValueError(f"version must be {STATE_VERSION}, got {value!r}")


@attrs.frozen(kw_only=True)
class WaitState:
    """A wait, saved: JSON-serialisable through ``to_json``, read back by ``from_json``.

    Attributes:
        version: The format's version.
        job_id: The job waited for.
        polls: Answered polls so far.
        elapsed: Seconds waited so far (all earlier runs included).
        saved_at: Wall-clock epoch seconds of the save, None when unknown (a 0.1 state).
        last_status: The last status seen (as an int), None before any answer.
        last_progress: The last progress seen, None while unknown.
        schedule: The poll schedule's own part.
    """

    version: int = attrs.field(default=STATE_VERSION, validator=_version)
    job_id: str
    polls: int = attrs.field(validator=attrs.validators.ge(0))
    elapsed: float = attrs.field(validator=_non_negative)
    saved_at: float | None = attrs.field(validator=_finite)
    last_status: int | None
    last_progress: int | None
    schedule: ScheduleState

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON values (dicts, lists, str, numbers, None)."""
        data: dict[str, Any] = _CONVERTER.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: object, *, job_id: str) -> WaitState:
        """Read a state written by ``to_json`` (maybe in another process, maybe by 0.1).

        Args:
            data: The decoded JSON.
            job_id: The job being resumed: a state of another job is refused.

        Raises:
            ValueError: Another version, another job, or a malformed field (named).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a wait state must be a mapping, got {type(data).__name__}")
        version = data.get("version")
        if isinstance(version, bool) or version not in _READABLE_VERSIONS:
            raise ValueError(
                f"wait state 'version' must be {STATE_VERSION} (or 1, from 0.1), "
                f"got {version!r:.40}"
            )
        if data.get("job_id") != job_id:
            raise ValueError(
                f"the wait state is for job {data.get('job_id')!r:.60}, not for job {job_id!r}"
            )
        if version == 1:
            data = _upgrade_v1(data)
        return _structure(data, cls)


def _upgrade_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """0.1's format in this one's terms: no saved_at, no counters inside the schedule."""
    upgraded = {**data, "version": STATE_VERSION, "saved_at": None}
    schedule = data.get("schedule")
    if isinstance(schedule, Mapping):
        upgraded["schedule"] = {
            k: v for k, v in schedule.items() if k not in ("version", "polls", "elapsed")
        }
    return upgraded


def _structure(data: object, cls: type[_T]) -> _T:
    try:
        return _CONVERTER.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        where = cattrs.transform_error(exc, path="state", format_exception=_describe)
        raise ValueError(f"malformed wait state: {'; '.join(where)}") from None
    except (ValueError, TypeError) as exc:  # a check across fields, in __attrs_post_init__
        raise ValueError(f"malformed wait state: {exc}") from None


def _describe(exc: BaseException, _: type | None) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    return str(exc) or type(exc).__name__


def _number(value: object, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"must be a number, not {type(value).__name__}")
    return float(value)


def _integer(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be an int, not {type(value).__name__}")
    return value


def _string(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a str, not {type(value).__name__}")
    return value


def _structure_events(value: object, _: object) -> tuple[Event, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"must be a list of [age, progress, gap], not {type(value).__name__}")
    events = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 3:
            raise TypeError("items must be [age, progress, gap]")
        events.append((_number(item[0], None), _integer(item[1], None), _number(item[2], None)))
    return tuple(events)


def _attrs_structure_factory(converter: cattrs.Converter) -> Callable[[type], Any]:
    """Structure an attrs class field by field, running each field's validator at once, so
    that every bad field is reported (cattrs alone would stop before the validators)."""

    def factory(cls: type) -> Callable[[object, object], object]:
        fields = attrs.fields(attrs.resolve_types(cls))

        def structure(data: object, _: object) -> object:
            if not isinstance(data, Mapping):
                raise TypeError(f"must be an object, not {type(data).__name__}")
            values: dict[str, object] = {}
            errors: list[Exception] = []
            for field in fields:
                try:
                    if field.name not in data:
                        if field.default is attrs.NOTHING:
                            raise KeyError(field.name)
                        continue
                    value = converter.structure(data[field.name], field.type)
                    if field.validator is not None:
                        field.validator(None, field, value)
                    values[field.name] = value
                except Exception as exc:  # collected, re-raised below as one group
                    note = f"Structuring class {cls.__qualname__} @ attribute {field.name}"
                    exc.add_note(AttributeValidationNote(note, field.name, field.type))
                    errors.append(exc)
            if errors:
                raise cattrs.ClassValidationError(f"While structuring {cls.__name__}", errors, cls)
            return cls(**values)

        return structure

    return factory


def make_state_converter() -> cattrs.Converter:
    """The converter of wait states: strict scalars, events as lists of three numbers, every
    field's validator run while structuring."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    hooks: dict[type, Callable[[object, object], object]] = {
        float: _number, int: _integer, str: _string,
    }
    for kind, hook in hooks.items():
        converter.register_structure_hook(kind, hook)
    events_type = tuple[Event, ...]
    converter.register_structure_hook_func(lambda t: t == events_type, _structure_events)
    converter.register_unstructure_hook_func(
        lambda t: t == events_type, lambda events: [list(e) for e in events]
    )
    converter.register_structure_hook_factory(attrs.has, _attrs_structure_factory(converter))
    return converter


_CONVERTER: Final = make_state_converter()
