"""Checkpoints: the state of a wait after every answered poll, and resuming from the last one.

Over real sockets to the emulator in virtual time: the client's clock, sleep and wall clock
and the emulator's job clock move together; the last test kills a waiting process for real.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import koodrive_async as kd
from koodrive_async.testing import KooDriveEmulator, ManualClock

from .conftest import VirtualTime, make_client

#: Epoch seconds of the virtual clock's zero: the wall clock moves with the virtual one.
EPOCH = 1_790_000_000.0
STEADY = kd.PollPolicy(jitter=0.0)  # no jitter: two waits of the same job poll alike


@pytest.fixture(autouse=True)
def shared_wall_clock(emulator: KooDriveEmulator, vt: VirtualTime) -> None:
    """The emulator's wall clock moves with the virtual one too (X-Date is checked on it)."""
    emulator.wall_clock = wall(vt)


def wall(vt: VirtualTime) -> Any:
    return lambda: EPOCH + vt.clock()


async def test_a_checkpointed_wait_makes_exactly_the_polls_of_a_plain_one(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    plain_job = emulator.add_job(duration=30)
    async with make_client(emulator, vt, wall_clock=wall(vt)) as client:
        plain = await client.wait_for_job(plain_job, poll=STEADY)
        saved: list[dict[str, Any]] = []
        checked = await client.wait_for_job(emulator.add_job(duration=30), poll=STEADY,
                                            on_checkpoint=saved.append)
    assert plain.polls == checked.polls, (plain.polls, checked.polls)
    assert len(saved) == checked.polls, "one checkpoint per answered poll"
    assert [s["polls"] for s in saved] == list(range(1, checked.polls + 1))
    assert saved[-1]["last_status"] == int(kd.JobStatus.COMPLETED)
    json.dumps(saved)  # plain JSON, to save anywhere


async def test_a_wait_resumes_from_its_last_checkpoint_counting_the_dead_time(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=14)
    saved: list[dict[str, Any]] = []
    three = asyncio.Event()

    async def save(state: dict[str, Any]) -> None:  # a coroutine function is fine too
        saved.append(json.loads(json.dumps(state)))
        if len(saved) == 3:
            three.set()

    async with make_client(emulator, vt, wall_clock=wall(vt)) as client:
        crashed = asyncio.ensure_future(client.wait_for_job(job_id, poll=STEADY,
                                                            on_checkpoint=save))
        await three.wait()
        crashed.cancel()  # the process dies here: only the saved state survives
        with pytest.raises(asyncio.CancelledError):
            await crashed
    polls_before = saved[-1]["polls"]
    vt.clock.advance(4.0)  # four seconds dead, between the crash and the new replica
    async with make_client(emulator, vt, wall_clock=wall(vt)) as client:
        result = await client.wait_for_job(job_id, poll=STEADY, resume=saved[-1])
    assert result.ok
    assert result.polls > polls_before
    # The job ran 14 s (plus the pending time it spent first); 0.1 said 5.3 s across a crash.
    assert result.elapsed >= 14.0, result.elapsed


async def test_a_state_of_another_job_or_version_is_refused_before_any_request(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    saved: list[dict[str, Any]] = []
    async with make_client(emulator, vt, wall_clock=wall(vt)) as client:
        await client.wait_for_job(emulator.add_job(duration=3), on_checkpoint=saved.append)
        sent = len(emulator.requests)
        other = emulator.add_job(duration=3)
        with pytest.raises(ValueError, match=r"for job '\d+', not for job"):
            await client.wait_for_job(other, resume=saved[-1])
        with pytest.raises(ValueError, match="version"):
            await client.wait_for_job(saved[-1]["job_id"], resume={**saved[-1], "version": 99})
    assert len(emulator.requests) == sent


async def test_a_raising_checkpoint_is_that_jobs_callback_error_in_a_fan_out(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    ids = [emulator.add_job(duration=5 + i % 4) for i in range(20)]
    cursed = ids[7]
    seen: Counter[str] = Counter()

    def save(state: dict[str, Any]) -> None:
        seen[state["job_id"]] += 1
        if state["job_id"] == cursed:
            raise OSError("the state store is down")

    async with make_client(emulator, vt, wall_clock=wall(vt)) as client:
        outcomes = dict([item async for item in client.wait_for_jobs(ids, on_checkpoint=save)])
    assert set(outcomes) == set(ids)
    error = outcomes[cursed]
    assert isinstance(error, kd.CallbackError) and "on_checkpoint" in str(error)
    assert isinstance(error.__cause__, OSError)
    assert all(isinstance(outcomes[i], kd.JobResult) for i in ids if i != cursed)
    for job_id in ids:  # every job's checkpoints say which job they are
        if job_id != cursed:
            result = outcomes[job_id]
            assert isinstance(result, kd.JobResult) and seen[job_id] == result.polls


async def test_watch_job_checkpoints_every_answered_poll(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=20)
    saved: list[dict[str, Any]] = []
    async with make_client(emulator, vt, wall_clock=wall(vt)) as client:
        snapshots = [s async for s in client.watch_job(job_id, on_checkpoint=saved.append)]
    assert snapshots[-1].terminal
    polls = sum(1 for r in emulator.requests if r.path.endswith(job_id))
    assert len(saved) == polls >= len(snapshots)


#: The waiting process of the next test: checkpoints to a file (replaced atomically), as a
#: service would to its store, until it is killed.
_WAITER = """
import asyncio, json, os, sys
import koodrive_async as kd
base_url, token, user_id, job_id, path = sys.argv[1:]

def save(state):
    with open(path + ".tmp", "w") as file:
        json.dump(state, file)
    os.replace(path + ".tmp", path)

async def main():
    async with kd.KooDriveClient(base_url, user_id=user_id, auth=kd.TokenAuth(token)) as client:
        await client.wait_for_job(job_id, poll=kd.PollPolicy.fixed(0.05), on_checkpoint=save)

asyncio.run(main())
"""


async def test_a_state_saved_by_a_killed_process_resumes_in_another(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)  # the job is processing until the test moves this clock
    saved_path = tmp_path / "state.json"
    with KooDriveEmulator(clock=clock).run_in_thread() as emu:
        job_id = emu.add_job(pending_for=0.0, duration=60.0)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-W", "error", "-c", _WAITER, emu.base_url, emu.token,
            emu.user_id, job_id, str(saved_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(60):
                while not (saved_path.exists()
                           and json.loads(saved_path.read_text())["polls"] >= 5):
                    assert child.returncode is None, await child.communicate()
                    await asyncio.sleep(0.02)
        finally:
            child.kill()  # SIGKILL: no cleanup, only the saved state survives
            await child.communicate()
        state = json.loads(saved_path.read_text())
        killed_at = time.time()
        polled_by_child = sum(r.path.endswith("/" + job_id) for r in emu.requests)
        await asyncio.sleep(0.5)  # dead time, before another process takes over
        clock.advance(120.0)  # the job has completed meanwhile
        async with kd.KooDriveClient(emu.base_url, user_id=emu.user_id,
                                     auth=kd.TokenAuth(emu.token)) as client:
            result = await client.wait_for_job(job_id, resume=state)
        total = sum(r.path.endswith("/" + job_id) for r in emu.requests)
    assert result.ok
    # Polls add up: the saved ones, plus this process's single poll (the job had ended).
    assert result.polls == state["polls"] + 1
    assert total - polled_by_child == 1 and polled_by_child >= state["polls"]
    # elapsed counts the dead time since the state was saved (wall clock, saved_at).
    assert result.elapsed >= state["elapsed"] + (killed_at - state["saved_at"]) + 0.5
