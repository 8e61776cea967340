"""Soak: thousands of waits against an emulator injecting seeded random faults.

Short in CI; longer by hand, e.g.
``KOODRIVE_SOAK_JOBS=20000 KOODRIVE_SOAK_SEED=7 .venv/bin/pytest tests/test_soak.py -s``.
"""

from __future__ import annotations

import gc
import os
import random
import tracemalloc
from collections import Counter
from typing import Any

import koodrive_async as kd
from koodrive_async.testing import FaultKind, KooDriveEmulator

from .conftest import client_tasks, eventually

JOBS = int(os.environ.get("KOODRIVE_SOAK_JOBS", "2000"))
SEED = int(os.environ.get("KOODRIVE_SOAK_SEED", "1"))
CLIENT_TIMEOUT = 0.5
POLL = kd.PollPolicy(initial_interval=0.1, max_interval=0.5)
#: Stated bound: the faulted run makes at most this many times the fault-free run's requests.
REQUEST_BOUND = 2.5


def _populate(emulator: KooDriveEmulator, rng: random.Random) -> dict[str, str]:
    """Jobs of 0.2 to 2 s of every kind; returns the kind of each job id."""
    kinds: dict[str, str] = {}
    for _ in range(JOBS):
        kind = rng.choice(["ok", "ok", "package", "partial", "failed", "canceled", "archive"])
        duration = rng.uniform(0.2, 2.0)
        pending = rng.uniform(0, 0.5)
        if kind == "package":
            job_id = emulator.add_job(task_type=6, files=2, duration=duration,
                                      pending_for=pending)
        elif kind == "partial":
            job_id = emulator.add_job(files=4, failed_files=1, duration=duration,
                                      pending_for=pending)
        elif kind == "failed":
            job_id = emulator.add_job(files=2, failed_files=2, duration=duration,
                                      pending_for=pending)
        elif kind == "canceled":
            job_id = emulator.add_job(files=2, duration=10.0, cancel_after=duration,
                                      pending_for=pending)
        elif kind == "archive":
            job_id = emulator.add_job(task_type=5, duration=duration, pending_for=pending)
        else:
            job_id = emulator.add_job(files=3, duration=duration, pending_for=pending)
        kinds[job_id] = kind
    return kinds


def _client_memory() -> int:
    """Bytes traced now, but for what the emulator (in this process) allocated."""
    snapshot = tracemalloc.take_snapshot().filter_traces([
        tracemalloc.Filter(False, "*/koodrive_async/testing/*"),
        tracemalloc.Filter(False, "*/aiohttp/web*"),
        tracemalloc.Filter(False, tracemalloc.__file__),
    ])
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def _wait_all(emulator: KooDriveEmulator, ids: list[str], jump_clock: bool,
                    memory: list[int] | None = None) -> dict[str, Any]:
    outcomes: dict[str, Any] = {}
    seen: Counter[str] = Counter()
    async with kd.KooDriveClient(emulator.base_url, user_id=emulator.user_id,
                                 auth=kd.TokenAuth(emulator.token),
                                 timeout=CLIENT_TIMEOUT) as client:
        async for job_id, outcome in client.wait_for_jobs(ids, concurrency=50, timeout=120,
                                                          poll=POLL):
            seen[job_id] += 1
            outcomes[job_id] = outcome
            if jump_clock and len(outcomes) == len(ids) // 3:
                emulator.clock_skew = -600.0  # the server's clock jumps ten minutes back
            if memory is not None and len(outcomes) in (len(ids) // 4, len(ids) // 2):
                memory.append(_client_memory())
    assert seen == Counter(dict.fromkeys(ids, 1)), "every job exactly one outcome"
    return outcomes


async def test_soak_under_random_faults() -> None:
    before = client_tasks()
    # The fault-free run: the same population, for the request count to compare with.
    async with KooDriveEmulator() as clean:
        _populate(clean, random.Random(SEED))
        await _wait_all(clean, list(clean.jobs), jump_clock=False)
        fault_free = len(clean.requests)

    async with KooDriveEmulator() as emulator:
        kinds = _populate(emulator, random.Random(SEED))
        emulator.fault_mix(seed=SEED, status_5xx=0.10, rate_limited=0.05, drop=0.03,
                           delay=0.02, delay_seconds=CLIENT_TIMEOUT * 1.5, malformed=0.01,
                           retry_after=0.01)
        gc.collect()
        tracemalloc.start()
        memory: list[int] = []
        try:
            outcomes = await _wait_all(emulator, list(kinds), jump_clock=True, memory=memory)
            emulator.clear_fault_mix()
            await eventually(lambda: emulator.in_flight == 0)
            gc.collect()
            memory.append(_client_memory())
        finally:
            tracemalloc.stop()
        faulted = len(emulator.requests)
        truth = {job_id: emulator.job_detail(job_id)["jobInfo"] for job_id in kinds}
        faults = dict(emulator.fault_counts)

    errors = Counter(type(o).__name__ for o in outcomes.values()
                     if isinstance(o, kd.KooDriveError))
    finished = {i: o for i, o in outcomes.items() if isinstance(o, kd.JobResult)}
    for job_id, result in finished.items():
        info = truth[job_id]
        assert int(result.status) == info["status"], job_id  # type: ignore[arg-type]
        assert result.task_result_code == info.get("taskResultCode"), job_id
        assert result.download_url == info.get("downloadUrl"), job_id
        assert result.canceled == (kinds[job_id] == "canceled"), job_id
        assert result.ok == (kinds[job_id] in ("ok", "package", "archive")), job_id
    # No fault ends a wait: a malformed answer (1 % of them) is ridden out like the others,
    # up to three in a row (0.1 had 1.7 % of its waits ended by one).
    assert faults.get(FaultKind.BODY, 0) > 0, "the mix must have garbled some answers"
    assert not errors, errors
    assert faulted <= REQUEST_BOUND * fault_free, (faulted, fault_free)
    # Memory (the client's, not the emulator's records): small per job while waiting, flat
    # from a quarter to half of the run, and released at the end but for the outcomes.
    quarter, half, end = memory
    assert quarter < JOBS * 16 * 1024 and half < JOBS * 16 * 1024, memory
    assert half < quarter * 1.5 + 1024 * 1024, memory
    assert client_tasks() - before == set(), "nothing left running"
    print(
        f"\nsoak: {JOBS} jobs, seed {SEED}; faults injected {sum(faults.values())} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(faults.items()))}); "
        f"outcomes: {len(finished)} results matching the emulator, errors {dict(errors)}, "
        f"lost 0, duplicated 0; requests {faulted} against {fault_free} fault-free "
        f"({faulted / fault_free:.2f}x, bound {REQUEST_BOUND}x); client memory at 1/4, 1/2 "
        f"and the end: {quarter // 1024}, {half // 1024}, {end // 1024} KiB"
    )
