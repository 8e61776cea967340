"""The README's Python examples run as printed, against the emulator: only what a reader
fills in (the host, the credentials, a job id, a store) is substituted."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

import koodrive_async as kd
from koodrive_async.testing import JobDefaults, KooDriveEmulator

README = (Path(__file__).parent.parent / "README.md").read_text()


def block(starting: str) -> str:
    """The README's ```python block whose text starts with ``starting``."""
    for match in re.finditer(r"```python\n(.*?)```", README, re.S):
        if match.group(1).startswith(starting):
            return match.group(1)
    raise AssertionError(f"no ```python block in README.md starts with {starting!r}")


def substituted(source: str, replacements: dict[str, str]) -> str:
    for placeholder, value in replacements.items():
        assert placeholder in source, f"the README example no longer has {placeholder!r}"
        source = source.replace(placeholder, value)
    return source


async def run(source: str, namespace: dict[str, Any]) -> None:
    """Run ``source`` as a notebook would: top-level ``await`` and ``async with`` allowed."""
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    outcome = eval(code, namespace)  # the README's own text
    if outcome is not None:
        await outcome


async def test_using_it_runs_as_printed(capsys: pytest.CaptureFixture[str]) -> None:
    fast = JobDefaults(pending_for=0.05, base_duration=0.2, per_file_duration=0.02)
    async with KooDriveEmulator(job_defaults=fast) as emu:
        other = emu.add_job(duration=600)
        source = substituted(block("import koodrive_async as kd\n\nasync with"), {
            '"https://intl.myhuaweicloud-koodrive.com"': repr(emu.base_url),
            '"40086000004871666-369528171409614001"': repr(emu.user_id),
            'kd.TokenAuth("Bearer+013b...")': f"kd.TokenAuth({emu.token!r})",
        })
        namespace: dict[str, Any] = {"other_job_id": other}
        await run(source, namespace)
        job_id = namespace["job_id"]
        assert namespace["result"].ok
        assert emu.jobs[other].canceled_at is not None
        assert capsys.readouterr().out.splitlines()[0] == emu.download_url(job_id)


async def test_the_emulator_example_runs_as_printed() -> None:
    namespace: dict[str, Any] = {}
    await run(block("import koodrive_async as kd\nfrom koodrive_async.testing import"), namespace)
    result, clock, emu = namespace["result"], namespace["clock"], namespace["emu"]
    assert isinstance(result, kd.JobResult) and result.outcome == "partially_failed"
    assert clock.sleeps, "virtual time: the client's pauses were recorded, not slept"
    assert emu.requests


async def test_the_checkpoint_example_resumes_as_printed() -> None:
    class Store:  # the example's redis: set and get, awaited
        def __init__(self) -> None:
            self.values: dict[str, str] = {}

        async def set(self, key: str, value: str) -> None:
            self.values[key] = value

        async def get(self, key: str) -> str:
            return self.values[key]

    fast = JobDefaults(pending_for=0.05, base_duration=0.3)
    async with KooDriveEmulator(job_defaults=fast) as emu, kd.KooDriveClient(
        emu.base_url, user_id=emu.user_id, auth=kd.TokenAuth(emu.token)
    ) as client:
        job_id = emu.add_job()
        store = Store()
        namespace = {"client": client, "job_id": job_id, "redis": store, "json": json}
        await run(block("async def save(state: dict) -> None:"), namespace)
        assert namespace["result"].ok
        state = json.loads(store.values[f"wait:{job_id}"])
        assert state["job_id"] == job_id and state["polls"] > 1  # the resumed wait's last
