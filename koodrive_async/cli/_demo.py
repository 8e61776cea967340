"""``koodrive-async demo``: a tour on the embedded emulator, no configuration needed.

It creates one job of every task type (different sizes, so different durations), one with a
file that fails, and one it cancels midway; waits on all of them with the live bars; prints
the summary; then downloads the package zip and checks it. About five seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Final

import koodrive_async as kd
from koodrive_async.testing import JobDefaults, KooDriveEmulator

from ._args import poll_policy
from ._bars import byte_bar
from ._download import download
from ._exit import EXIT_ERROR, EXIT_OK, Outcome, classify
from ._output import Output
from ._waits import wait_and_report
from ._words import label

__all__ = ["run_demo"]

# Jobs made over the wire are pending 0.4 s, then take 1 s plus 0.35 s per file.
_DEFAULTS: Final = JobDefaults(
    pending_for=0.4, base_duration=1.0, per_file_duration=0.35, file_size=96 * 1024
)
_CANCEL_AFTER: Final = 1.6
_POLL_EVERY: Final = 0.25
_SPACE: Final = "demo-space"
_REPORTS: Final = [kd.FileRef(f"report-{i}", f"/reports/2024-q{i}.pdf") for i in range(1, 5)]
_PHOTOS: Final = [kd.FileRef(f"photo-{i}", f"/photos/img-{i:03}.jpg") for i in range(1, 13)]


def _plan() -> list[tuple[str, dict[str, Any], Outcome]]:
    """What to create: a caption, create_job's arguments, and how it should end."""
    return [
        ("copy 3 files to /backup", dict(
            task_type=kd.TaskType.COPY, files=_REPORTS[:3], new_file_path="/backup",
            dst_container_id="demo-archive"), Outcome.OK),
        ("delete 2 files to the recycle bin", dict(
            task_type=kd.TaskType.DELETE, files=_PHOTOS[:2],
            action_type=kd.ActionType.DELETE_TO_RECYCLE_BIN), Outcome.OK),
        ("move 4 files to /sorted", dict(
            task_type=kd.TaskType.MOVE, files=_PHOTOS[2:6], new_file_path="/sorted"), Outcome.OK),
        ("restore 1 file from the recycle bin", dict(
            task_type=kd.TaskType.RESTORE, files=_PHOTOS[:1]), Outcome.OK),
        ("extract an archive", dict(
            task_type=kd.TaskType.DECOMPRESS, files=[kd.FileRef("archive-1", "/inbox/photos.zip")],
            action_type=kd.ActionType.EXTRACT_ALL, new_file_path="/inbox/photos"), Outcome.OK),
        ("package 4 reports for download", dict(
            task_type=kd.TaskType.PACKAGE_DOWNLOAD, files=_REPORTS), Outcome.OK),
        ("empty the recycle bin", dict(
            task_type=kd.TaskType.EMPTY_RECYCLE_BIN, files=[],
            action_type=kd.ActionType.EMPTY_RECYCLE_BIN), Outcome.OK),
        ("copy 3 files, one of them missing", dict(
            task_type=kd.TaskType.COPY, files=[*_PHOTOS[6:8], kd.FileRef("fail-404", "/gone.jpg")],
            new_file_path="/backup"), Outcome.PARTIALLY_FAILED),
        (f"move 12 files, canceled after {_CANCEL_AFTER:g} s", dict(
            task_type=kd.TaskType.MOVE, files=_PHOTOS, new_file_path="/slow"), Outcome.CANCELED),
    ]


def _check_zip(path: Path, expected: list[str]) -> str | None:
    """What is wrong with the downloaded zip, or None."""
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
        names = sorted(archive.namelist())
    if bad is not None:
        return f"damaged entry {bad}"
    if names != sorted(expected):
        return f"entries {names}, expected {sorted(expected)}"
    return None


async def run_demo(args: argparse.Namespace, out: Output) -> int:
    """Run the tour; return 0 when every job ended as planned and the zip checks out."""
    async with KooDriveEmulator(job_defaults=_DEFAULTS) as emulator:
        out.note(f"KooDrive emulator started on {emulator.base_url} (in this process)")
        async with kd.KooDriveClient(
            emulator.base_url, user_id=emulator.user_id, auth=kd.TokenAuth(emulator.token)
        ) as client:
            plan = _plan()
            ids: list[str] = []
            for caption, spec, _ in plan:
                spec.setdefault("src_container_id", _SPACE)
                spec.setdefault("dst_container_id", _SPACE)
                job_id = await client.create_job(**spec)
                ids.append(job_id)
                kind = label(kd.TaskType, spec["task_type"])
                out.note(f"  created {job_id}  {kind:<22} {caption}")
            doomed = ids[-1]

            async def cancel_one() -> None:
                await asyncio.sleep(_CANCEL_AFTER)
                await client.cancel_job(doomed)
                out.note(f"  sent CancelJob for {doomed}")

            out.note(f"waiting for {len(ids)} jobs ...")
            _, outcomes = await wait_and_report(
                client, ids, out, timeout=60.0, poll=poll_policy(_POLL_EVERY), during=cancel_one
            )
            surprises = [
                f"job {job_id} ({caption}) ended {classify(outcome).value}, expected {want.value}"
                for (job_id, outcome), (caption, _, want) in zip(outcomes, plan, strict=True)
                if classify(outcome) is not want
            ]
            package = outcomes[5][1]
        problem = await _download_package(package, out) if not surprises else None
    for text in surprises:
        out.note(f"demo: {text}")
    if surprises or problem:
        if problem:
            out.note(f"demo: {problem}")
        out.note("demo finished with a problem")
        return EXIT_ERROR
    out.note("demo finished: every job ended as planned and the package checks out")
    return EXIT_OK


async def _download_package(package: kd.JobResult | kd.KooDriveError, out: Output) -> str | None:
    if not isinstance(package, kd.JobResult) or package.download_url is None:
        return "the package download has no downloadUrl"
    with tempfile.TemporaryDirectory(prefix="koodrive-demo-") as folder:
        out.note(f"downloading the package to {folder} ...")
        with byte_bar(enabled=out.bars) as bar:
            saved = await download(package.download_url, output=Path(folder), progress=bar)
        assert saved.path is not None  # downloaded to a folder, not to a stream
        expected = [Path(ref.file_path or ref.file_id).name for ref in _REPORTS]
        problem = _check_zip(saved.path, expected)
        if problem is None:
            out.note(
                f"  {saved.path.name}: {saved.size} bytes, {len(expected)} entries,"
                f" zip integrity ok (sha256 {saved.sha256[:16]}...)"
            )
        return problem
