"""Decoding alone: GetJobDetail documents with 1, 100 and 1,000 taskInfos.

Each contender turns the same bytes into typed objects (or, for the baseline, reads every
field of every item out of plain dicts):

- ``json + dicts``: the standard library's json, then plain dict access of every field;
- ``koodrive_async``: orjson, then the client's own decoder, ``kd.from_wire(kd.JobDetail, data)``;
- ``cattrs only``: the same converter built without its generated fast path
  (``make_converter(fast_path=False)``), to show what the fast path is worth;
- ``pydantic v2``: ``PEnvelope.model_validate_json`` with camelCase aliases, building the same
  output as ours: enums for the coded fields and ``datetime``s from the 14-digit times (a
  ``BeforeValidator``, as pydantic has no parser for that format);
- ``msgspec``: ``msgspec.json.decode(..., type=MEnvelope)`` with camelCase renames and the
  same enums; it leaves the 14-digit times as strings (it has no hook for that format at
  decode time), so it does a little less work than the others.

Times are the median of several repetitions of a timed loop (per document), measured in the
same run; the table gives each one's ratio to pydantic v2 and to msgspec. pydantic and msgspec
are benchmark-only dependencies (``pip install -e '.[bench]'``).

Run: ``python benchmarks/decode.py [--repeats R] [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import orjson
import pydantic
from pydantic.alias_generators import to_camel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import koodrive_async as kd
from koodrive_async._convert import make_converter
from koodrive_async.models import (
    ActionType,
    JobDetail,
    JobStatus,
    TaskResultCode,
    TaskStatus,
    TaskType,
)

SEED = json.loads((Path(__file__).resolve().parent.parent / "tests/data/seed_job_detail.json")
                  .read_text())
SIZES = (1, 100, 1000)


def document(size: int) -> bytes:
    """The seed's example with ``size`` taskInfos like its one (ids varied)."""
    doc = json.loads(json.dumps(SEED))
    (task,) = doc["data"]["taskInfos"]
    doc["data"]["taskInfos"] = [
        {**task, "fileId": f"{task['fileId']}{i}", "newFileId": f"{task['newFileId']}{i}"}
        for i in range(size)
    ]
    return json.dumps(doc).encode()


# -- pydantic v2 -----------------------------------------------------------------------------


def _time14(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 14 and value.isdigit():
        return datetime.fromisoformat(f"{value[:8]}T{value[8:]}")
    return value


Time14 = Annotated[datetime | None, pydantic.BeforeValidator(_time14)]

_camel = to_camel


class _PModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=_camel, populate_by_name=True,
                                       frozen=True)


class PJobInfo(_PModel):
    task_id: str | None = None
    task_name: str | None = None
    user_id: str | None = None
    task_type: TaskType | None = None
    action_type: ActionType | None = None
    status: JobStatus | None = None
    task_result_code: TaskResultCode | None = None
    result_code: int | None = None
    progress: int | None = None
    download_url: str | None = None
    content_num: int | None = None
    container_id: str | None = None
    tenant_id: str | None = None
    begin_time: Time14 = None
    end_time: Time14 = None
    create_time: Time14 = None


class PTaskInfo(_PModel):
    id: str | None = None
    file_id: str | None = None
    file_path: str | None = None
    status: TaskStatus | None = None
    new_file_id: str | None = None
    new_file_path: str | None = None
    src_container_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    tenant_id: str | None = None
    create_time: Time14 = None


class PJobDetail(_PModel):
    job_info: PJobInfo | None = None
    task_infos: tuple[PTaskInfo, ...] = ()


class PEnvelope(_PModel):
    code: int | str
    msg: str | None = None
    data: PJobDetail | None = None


# -- msgspec ---------------------------------------------------------------------------------


class MJobInfo(msgspec.Struct, rename="camel", frozen=True):
    task_id: str | None = None
    task_name: str | None = None
    user_id: str | None = None
    task_type: TaskType | None = None
    action_type: ActionType | None = None
    status: JobStatus | None = None
    task_result_code: TaskResultCode | None = None
    result_code: int | None = None
    progress: int | None = None
    download_url: str | None = None
    content_num: int | None = None
    container_id: str | None = None
    tenant_id: str | None = None
    begin_time: str | None = None
    end_time: str | None = None
    create_time: str | None = None


class MTaskInfo(msgspec.Struct, rename="camel", frozen=True):
    id: str | None = None
    file_id: str | None = None
    file_path: str | None = None
    status: TaskStatus | None = None
    new_file_id: str | None = None
    new_file_path: str | None = None
    src_container_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    tenant_id: str | None = None
    create_time: str | None = None


class MJobDetail(msgspec.Struct, rename="camel", frozen=True):
    job_info: MJobInfo | None = None
    task_infos: tuple[MTaskInfo, ...] = ()


class MEnvelope(msgspec.Struct, frozen=True):
    code: int | str
    msg: str | None = None
    data: MJobDetail | None = None


_msgspec_decoder = msgspec.json.Decoder(MEnvelope)

_INFO_KEYS = tuple(_camel(name) for name in PJobInfo.model_fields)
_TASK_KEYS = tuple(_camel(name) for name in PTaskInfo.model_fields)


def json_dicts(raw: bytes) -> Any:
    data = json.loads(raw)["data"]
    info = data["jobInfo"]
    fields = [info.get(k) for k in _INFO_KEYS]
    tasks = [[t.get(k) for k in _TASK_KEYS] for t in data["taskInfos"]]
    return fields, tasks


def ours(raw: bytes) -> JobDetail:
    return kd.from_wire(JobDetail, orjson.loads(raw)["data"])


_cattrs_only = make_converter(fast_path=False)


def cattrs_only(raw: bytes) -> JobDetail:
    detail: JobDetail = _cattrs_only.structure(orjson.loads(raw)["data"], JobDetail)
    return detail


def with_pydantic(raw: bytes) -> Any:
    return PEnvelope.model_validate_json(raw).data


def with_msgspec(raw: bytes) -> Any:
    return _msgspec_decoder.decode(raw).data


CONTENDERS: tuple[tuple[str, Callable[[bytes], Any]], ...] = (
    ("json + dicts", json_dicts),
    ("koodrive_async", ours),
    ("cattrs only", cattrs_only),
    ("pydantic v2", with_pydantic),
    ("msgspec", with_msgspec),
)


def measure(raw: bytes, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each contender, one timed loop (about 0.05 s) per round.

    The rounds interleave the contenders, their order rotated each round, so that the
    machine's noise (a shared VM) hits all alike and every ratio can be taken within a round.
    """
    timers = {}
    for name, function in CONTENDERS:
        timer = timeit.Timer(functools.partial(function, raw))
        number, _ = timer.autorange()  # the smallest count that takes 0.2 s or more
        timers[name] = (timer, max(1, number // 4))
    times: dict[str, list[float]] = {name: [] for name in timers}
    names = list(timers)
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            timer, number = timers[name]
            times[name].append(timer.timeit(number) / number)
    return times


def _ratios(ours: list[float], theirs: list[float]) -> list[float]:
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="2 rounds: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 2
    for size in SIZES:  # every contender must agree on the data before being timed
        raw = document(size)
        detail = ours(raw)
        assert len(detail.task_infos) == size
        assert cattrs_only(raw) == detail
        assert len(with_msgspec(raw).task_infos) == size
        typed = with_pydantic(raw)
        assert len(typed.task_infos) == size
        assert detail.job_info is not None
        assert typed.job_info.create_time == detail.job_info.create_time  # same work done
        assert typed.task_infos[0].status is detail.task_infos[0].status
    print(f"Decode + structure of one GetJobDetail document: {args.repeats} interleaved "
          "rounds; times are each contender's median, ratios the median (min-max) of the "
          "rounds' own\n")
    print("| taskInfos | " + " | ".join(name for name, _ in CONTENDERS)
          + " | ours / pydantic | ours / msgspec |")
    print("|---:|" + "---:|" * (len(CONTENDERS) + 2))
    verdicts = []
    for size in SIZES:
        times = measure(document(size), args.repeats)
        vs_pydantic = _ratios(times["koodrive_async"], times["pydantic v2"])
        vs_msgspec = _ratios(times["koodrive_async"], times["msgspec"])
        verdicts.append((size, statistics.median(vs_pydantic)))
        print(f"| {size} | "
              + " | ".join(_fmt(statistics.median(times[name])) for name, _ in CONTENDERS)
              + f" | {_spread(vs_pydantic, '.2f')} | {_spread(vs_msgspec, '.1f')} |")
    worst = max(verdicts, key=lambda verdict: verdict[1])
    print(f"\n- {'met' if worst[1] < 1 else 'NOT met'}: faster than pydantic v2 at every size "
          f"(slowest against it: {worst[1]:.2f}x at {worst[0]} taskInfos)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
