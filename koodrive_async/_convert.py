"""The one converter: wire JSON <-> models, both directions, with every rename and variant.

Built by one factory (``make_converter``) so tests can build a strict twin (unknown keys
forbidden) that catches a rename typo, while production ignores keys it does not know.
Renames come from one hook on ``attrs.has``: snake_case attribute -> camelCase wire name,
plus the few irregular names.

Reading (``from_wire``, ``structure``): each model's hook runs its generated fast function
first (``_fastpath``: the documented common case, nothing checked that need not be; it
pays for itself, see ``benchmarks/decode.py``), and only a model it does not take goes on to
cattrs, whose readers (``_fastpath`` too) accept the documented variants (numbers sent as
strings and back, ``subFileList`` as one object) and reject anything else with a message, so
a wrong document becomes a ResponseDecodeError naming each wire path. The secrets an error
must not quote are worked out only then. Writing (``to_wire``): the wire's names and
formats, None and empty lists left out, so that ``from_wire(type(x), to_wire(x)) == x``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.cols import is_sequence, iterable_unstructure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

from ._bounds import MAX_FILE_DEPTH, check_file_depth, structure_items
from ._fastpath import (
    build_fast_structurers,
    describe,
    enum_value,
    int_enum_reader,
    read_epoch_millis,
    read_int,
    read_int_or_str,
    read_local_time,
    read_mapping,
    read_str,
    str_enum_reader,
    write_epoch_millis,
    write_local_time,
)
from ._redact import Secret, redact, redact_document
from .errors import ResponseDecodeError
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

__all__ = [
    "MODELS", "decode_job_id", "from_wire", "job_detail", "make_converter", "structure",
    "structure_list", "to_wire", "wire_name",
]

T = TypeVar("T")
#: The models with a wire form (the endpoints' ``data``), nested ones first.
MODELS: Final = (UncompressedFileInfo, TaskInfo, JobInfo, JobDetail)
#: Lazily worked-out secrets: a sequence, or a function giving one (called on failure only).
Secrets = Sequence[Secret] | Callable[[], Sequence[Secret]]


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


# Fields whose wire format is not their type's usual one: (reader, writer), and the kind the
# fast path gives them.
_FIELD_FORMATS: Final[Mapping[tuple[type, str], tuple[Callable[..., Any], ...]]] = {
    (UncompressedFileInfo, "updated_at"): (read_epoch_millis, write_epoch_millis),
}
_FAST_KINDS: Final[Mapping[tuple[type, str], str]] = {
    (UncompressedFileInfo, "updated_at"): "epoch_ms",
}


@functools.cache
def fast_structurers() -> Mapping[type, Callable[[Any], Any]]:
    """The generated fast function of each model (built once; raise on anything uncommon)."""
    return build_fast_structurers(
        MODELS, wire_name=wire_name, aliases=_ALIASES, overrides=_FAST_KINDS
    )


def make_converter(*, strict: bool = False, fast_path: bool | None = None) -> cattrs.Converter:
    """Build the converter for wire documents, both directions.

    Args:
        strict: Forbid keys the models do not know (for tests); production ignores them.
        fast_path: Try the generated fast functions first (``_fastpath``); default: unless
            strict, since they ignore unknown keys.
    """
    if fast_path is None:
        fast_path = not strict
    converter = cattrs.Converter(detailed_validation=True)

    for hook_type, hook in (
        (str | None, read_str),
        (int | None, read_int),
        (int | str | None, read_int_or_str),
        (datetime | None, read_local_time),
        (Mapping[str, Any] | None, read_mapping),
        (JobStatus | int | None, int_enum_reader(JobStatus)),
        (TaskResultCode | int | None, int_enum_reader(TaskResultCode)),
        (TaskType | int | None, int_enum_reader(TaskType)),
        (ActionType | int | None, int_enum_reader(ActionType)),
        (FileType | int | None, int_enum_reader(FileType)),
        (TaskStatus | str | None, str_enum_reader(TaskStatus)),
    ):
        converter.register_structure_hook(hook_type, hook)
    converter.register_unstructure_hook(datetime, write_local_time)
    for enum_cls in (JobStatus, TaskResultCode, TaskType, ActionType, FileType, TaskStatus):
        # Each by name: a StrEnum would otherwise pass as the str it also is.
        converter.register_unstructure_hook(enum_cls, enum_value)

    def is_tuple(t: Any) -> bool:
        return is_sequence(t) and getattr(t, "__origin__", None) is tuple

    def model_tuple_factory(tuple_type: Any) -> Callable[[Any, object], Any]:
        # A missing list is an empty tuple; one object where a list is documented (subFileList)
        # is a list of one. Reading stops after a few bad items (see _bounds).
        item_type = tuple_type.__args__[0]
        try:
            item = converter.get_structure_hook(item_type)
        except RecursionError:  # UncompressedFileInfo holds its own kind: bound late
            item = converter.structure

        def structure(value: Any, _: object = None) -> tuple[Any, ...]:
            if value is None:
                return ()
            if type(value) is dict:
                value = [value]
            elif type(value) is not list:
                raise ValueError(f"expected a list, got {describe(value)}")
            return structure_items(value, item, item_type, tuple_type)

        return structure

    converter.register_structure_hook_factory(is_tuple, model_tuple_factory)
    converter.register_unstructure_hook_factory(
        is_tuple, lambda t: iterable_unstructure_factory(t, converter, unstructure_to=list)
    )

    def model_factory(cls: Any) -> Callable[[Any, object], Any]:
        overrides = {
            field.name: override(
                rename=wire_name(cls, field.name),
                struct_hook=_FIELD_FORMATS.get((cls, field.name), (None,))[0],
            )
            for field in attrs.fields(cls)
        }
        build = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=strict, **overrides  # type: ignore[arg-type]
        )
        aliases = _ALIASES.get(cls, {})

        def structure(value: Any, _: object = None) -> Any:
            if type(value) is not dict:
                raise ValueError(f"expected an object, got {describe(value)}")
            for alias, name in aliases.items():
                if alias in value and name not in value:
                    value = {**value, name: value[alias]}
                    del value[alias]
            return build(value, cls)

        fast = fast_structurers().get(cls) if fast_path else None
        if fast is None:
            return structure

        def structure_fast_first(value: Any, _: object = None) -> Any:
            # Per model: when one TaskInfo of a thousand is unusual, only it goes the slow way.
            try:
                return fast(value)
            except Exception:  # any surprise: the full path decides, and names the problem
                return structure(value)

        structure_fast_first.full = structure  # type: ignore[attr-defined]
        return structure_fast_first

    def model_unstructure_factory(cls: Any) -> Callable[[Any], dict[str, Any]]:
        overrides = {
            field.name: override(
                rename=wire_name(cls, field.name),
                unstruct_hook=_FIELD_FORMATS.get((cls, field.name), (None, None))[1],
            )
            for field in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(  # None and () are the defaults: left out
            cls, converter, _cattrs_omit_if_default=True, **overrides  # type: ignore[arg-type]
        )

    converter.register_structure_hook_factory(attrs.has, model_factory)
    converter.register_unstructure_hook_factory(attrs.has, model_unstructure_factory)
    return converter


_converter: Final = make_converter()
_HOOKS: Final[Mapping[type, Callable[[Any, Any], Any]]] = {
    cls: _converter.get_structure_hook(cls) for cls in MODELS
}
# structure() runs a model's fast function itself (a call fewer than through its hook), then,
# for a document it refuses, the hook's full path, so that nothing is tried fast twice.
_FAST: Final = fast_structurers()
_FULL: Final[Mapping[type, Callable[[Any, Any], Any]]] = {
    cls: getattr(hook, "full", hook) for cls, hook in _HOOKS.items()
}
_FAST_JOB_DETAIL: Final = _FAST[JobDetail]


def to_wire(obj: JobDetail | JobInfo | TaskInfo | UncompressedFileInfo) -> dict[str, Any]:
    """A model as the API sends it: a JSON-ready dict with the wire's names and formats.

    Keys are the documented camelCase names (``reservatioinInfo`` spelled as the wire does);
    enums are their raw values (``jobInfo.status`` the int, ``taskInfos[].status`` the
    string, an unknown value as kept); times are ``yyyyMMddHHmmss`` strings, and
    ``updatedAt`` epoch milliseconds. A field that is None, and an empty list, is left out, as
    the service leaves it out; ``from_wire`` reads either back as None and ``()``, so
    ``from_wire(type(x), to_wire(x)) == x`` for every model the wire can carry.

    Raises:
        TypeError: ``obj`` is not one of the four models.
        ValueError: ``obj`` is nested too deeply to write.
    """
    if type(obj) not in _HOOKS:
        raise TypeError(f"to_wire takes a {_MODEL_NAMES}, got {type(obj).__name__}")
    try:
        result: dict[str, Any] = _converter.unstructure(obj)
    except RecursionError:  # only a model built by hand: a decoded one is MAX_FILE_DEPTH deep
        raise ValueError(f"to_wire: sub_file_list deeper than {MAX_FILE_DEPTH} levels") from None
    return result


def from_wire(cls: type[T], data: Any) -> T:
    """Read a model from its wire JSON (decoded), exactly as the client reads its answers.

    Unknown keys are ignored and unknown enum values kept raw, as in the client.

    Raises:
        ResponseDecodeError: ``data`` is not the documented shape; ``.problems`` names each
            wire path (``$.jobInfo.status``) with what was wrong there.
        TypeError: ``cls`` is not one of the four models.
    """
    if cls not in _HOOKS:
        raise TypeError(f"from_wire reads a {_MODEL_NAMES}, not {cls!r}")
    return structure(data, cls, what=cls.__name__, root="$")


_MODEL_NAMES: Final = "JobDetail, JobInfo, TaskInfo or UncompressedFileInfo"
# Attribute name -> wire name over every model, for error paths in the wire's own words.
_WIRE_NAMES: Final = {
    field.name: wire_name(cls, field.name) for cls in MODELS for field in attrs.fields(cls)
}
_PATH_PART: Final = re.compile(r"\.([a-z_]+)")
_STRUCTURE_ERRORS: Final = (cattrs.BaseValidationError, ValueError, TypeError)


def _format(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return format_exception(exc, type_)


def _problems(exc: BaseException, root: str) -> tuple[str, ...]:
    return tuple(
        _PATH_PART.sub(lambda m: "." + _WIRE_NAMES.get(m.group(1), m.group(1)), problem)
        for problem in cattrs.transform_error(exc, root, _format)
    )


def structure(
    data: Any, cls: type[T], *, what: str, secrets: Secrets = (), root: str = "$.data"
) -> T:
    """Structure ``data`` into ``cls``; raise ResponseDecodeError naming each bad path.

    The problems quote the values they found (cut short): with ``secrets`` (worked out only
    on failure when given as a function), they are found again in a redacted copy of
    ``data``, so no part of a secret can be quoted. ``root`` is the path of ``data``.
    """
    if cls is JobDetail or cls is UncompressedFileInfo:
        check_file_depth(data, what, root, detail=cls is JobDetail)
    fast = _FAST.get(cls)
    if fast is not None:
        try:
            return fast(data)  # type: ignore[no-any-return]
        except Exception:  # anything uncommon: the full path decides, and names the problem
            pass
    return _structure_fully(data, cls, what, secrets, root)


def _structure_fully(data: Any, cls: type[T], what: str, secrets: Secrets, root: str) -> T:
    """``structure`` without its fast path: every variant accepted, every problem named."""
    hook = _FULL.get(cls)
    try:
        if hook is not None:
            return hook(data, cls)  # type: ignore[no-any-return]
        return _converter.structure(data, cls)
    except _STRUCTURE_ERRORS as exc:
        problems = _problems(exc, root)
    found = secrets() if callable(secrets) else secrets
    if found:
        # Found again in a redacted copy: the converter cuts the values it quotes, so
        # redacting its messages could leave the start of a secret. (Raised outside the
        # except blocks, so no unredacted exception rides along as ``__context__``.)
        problems = ()
        try:
            _converter.structure(redact_document(data, found), cls)
        except _STRUCTURE_ERRORS as redacted_exc:
            problems = tuple(redact(p, found) for p in _problems(redacted_exc, root))
    shown = "; ".join(problems[:5])
    if len(problems) > 5:
        shown += f" (+{len(problems) - 5} more)"
    message = f"{what}: unexpected document: {shown}" if shown else f"{what}: unexpected document"
    raise ResponseDecodeError(message, problems=problems)


def structure_list(data: Any, cls: type[T], *, what: str, secrets: Secrets = ()) -> list[T]:
    """Structure a JSON array of ``cls`` in ``$.data`` (a missing array is empty)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ResponseDecodeError(f"{what}: expected a list in $.data, got {type(data).__name__}")
    return [structure(item, cls, what=what, secrets=secrets) for item in data]


def job_detail(data: Any, job_id: str, *, secrets: Secrets = ()) -> JobDetail:
    """GetJobDetail's ``data`` for ``job_id``: a JobDetail about that job and no other.

    A missing ``jobInfo.taskId`` is accepted (every field is optional in practice); a
    ``taskId`` naming another job is refused, since believing it would report another
    job's status, files and download URL as this one's (a cache or a proxy mixing answers).
    Problems quote server values with ``secrets`` redacted.

    Raises:
        ResponseDecodeError: ``data`` is not an object, does not structure, or is about
            another job (the message names both ids).
    """
    try:
        detail: JobDetail = _FAST_JOB_DETAIL(data)  # the usual answer, without a call more
    except Exception:
        if not isinstance(data, dict):
            raise ResponseDecodeError(
                f"GetJobDetail {job_id}: expected an object in $.data, got "
                f"{type(data).__name__}"
            ) from None
        check_file_depth(data, f"GetJobDetail {job_id}", "$.data", detail=True)
        detail = _structure_fully(data, JobDetail, f"GetJobDetail {job_id}", secrets, "$.data")
    else:
        if detail.uncompressed_file_list:  # an archive listing: no deeper than allowed
            check_file_depth(data, f"GetJobDetail {job_id}", "$.data", detail=True)
    info = detail.job_info
    if info is not None and info.task_id is not None and info.task_id != job_id:
        text = redact(info.task_id, secrets() if callable(secrets) else secrets)
        quoted = repr(text if len(text) <= 80 else text[:77] + "...")
        raise ResponseDecodeError(
            f"GetJobDetail {job_id}: the answer is about job {quoted}, not job {job_id!r} "
            "($.data.jobInfo.taskId)",
            problems=(f"$.data.jobInfo.taskId: expected {job_id!r}",),
        )
    return detail


def decode_job_id(data: Any) -> str:
    """CreateJob's ``data``: the new job id, a non-empty string (or a number)."""
    if isinstance(data, int) and not isinstance(data, bool):
        return str(data)
    if isinstance(data, str) and data:
        return data
    # Only the kind of value is named: $.data is server text, and may echo a secret.
    got = "an empty string" if data == "" else type(data).__name__
    raise ResponseDecodeError(f"CreateJob: expected the new job id in $.data, got {got}")
