"""Quick start: create batch jobs on the embedded KooDrive emulator and wait for them.

Run it with ``.venv/bin/python examples/quickstart.py`` (see README.md). It needs no
configuration and no network: the emulator serves the KooDrive API on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import io
import sys
import zipfile

import aiohttp

import koodrive_async as kd
from koodrive_async.testing import JobDefaults, KooDriveEmulator


def show(detail: kd.JobDetail) -> None:
    info = detail.job_info
    assert info is not None
    status = kd.JobStatus(info.status).name if info.status in set(kd.JobStatus) else info.status
    print(f"  job {info.task_id}: {status:<10} {info.progress or 0:>3} %")


async def main() -> int:
    # Jobs created over the wire take 1 s plus 0.3 s per file on the emulator.
    defaults = JobDefaults(pending_for=0.5, base_duration=1.0, per_file_duration=0.3)
    async with KooDriveEmulator(job_defaults=defaults) as emulator:
        print(f"KooDrive emulator on {emulator.base_url}")
        async with kd.KooDriveClient(
            emulator.base_url, user_id=emulator.user_id, auth=kd.TokenAuth(emulator.token)
        ) as client:
            package = await client.create_job(
                kd.TaskType.PACKAGE_DOWNLOAD,
                src_container_id="space-1",
                dst_container_id="space-1",
                files=[kd.FileRef(f"file-{i}", f"/reports/q{i}.pdf") for i in range(1, 5)],
            )
            copy = await client.create_job(
                kd.TaskType.COPY,
                src_container_id="space-1",
                dst_container_id="space-2",
                files=["photo-1", "photo-2", "fail-photo-3"],  # the emulator fails "fail" ids
                new_file_path="/backup",
            )
            print(f"created package download {package} and copy {copy}")

            print("waiting for the package, reporting each change:")
            result = await client.wait_for_job(package, timeout=60, on_progress=show)
            print(f"package: ok={result.ok}, {result.polls} polls in {result.elapsed:.1f} s")
            print(f"  downloadUrl: {result.download_url}")

            copied = await client.wait_for_job(copy, timeout=60)
            print(f"copy: ok={copied.ok}, taskResultCode={copied.task_result_code!r}")
            for task in copied.succeeded:
                print(f"  copied {task.file_id} -> {task.new_file_path}")
            for task in copied.failed:
                print(f"  FAILED {task.file_id}: {task.result_code} {task.result_desc}")

            print("jobs on the server:")
            async for info in client.list_jobs():
                print(f"  {info.task_id} type={info.task_type!r} status={info.status!r}")

        assert result.download_url is not None
        async with aiohttp.ClientSession() as session, session.get(result.download_url) as r:
            archive = zipfile.ZipFile(io.BytesIO(await r.read()))
        names = archive.namelist()
        print(f"package zip: {len(names)} files, integrity {archive.testzip() or 'ok'}")
        good = result.ok and not copied.ok and len(copied.failed) == 1 and len(names) == 4
    print("quick start finished" if good else "quick start found a problem")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
