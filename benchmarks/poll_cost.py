"""What a poll costs the client while a big job is processing (issue 13).

One local server process (``benchmarks/_server.py --task-infos N --status 1``) answers every
GetJobDetail with the seed's document grown to N taskInfos (default 1,000; 186 KB), the job
processing. Client CPU (``time.process_time`` of this process) per request, for:

- (b) raw aiohttp + ``orjson.loads`` of the body (for scale);
- (f) ``KooDriveClient.get_job``: the whole answer, every TaskInfo structured;
- (p) ``KooDriveClient.poll_job``: the answer read up to its jobInfo;
- (w) the waiter's poll: ``wait_for_jobs`` on ``--waits`` jobs polling back to back
  (``PollPolicy.fixed(0.001)``) until their timeout, CPU divided by the polls answered.

The variants interleave over ``--repeats`` repetitions; each cell is the median and range.
The goal: (w) at most a quarter of (f). The terminal answer is read in full (the tests show
the result holds every TaskInfo: tests/test_light_polls.py).

Run: ``python benchmarks/poll_cost.py [--task-infos N] [--lookups L] [--repeats R]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import FIRST_ID, PREFIX, Server, drive

import koodrive_async as kd

GOAL: Final = 0.25
CONCURRENCY: Final = 10


async def waits(client: kd.KooDriveClient, ids: Sequence[str], seconds: float) -> int:
    """Polls answered by ``len(ids)`` waits polling back to back for ``seconds``."""
    polls = 0
    async for _, outcome in client.wait_for_jobs(
        ids, timeout=seconds, poll=kd.PollPolicy.fixed(0.001), concurrency=CONCURRENCY
    ):
        if not isinstance(outcome, kd.WaitTimeoutError) or outcome.state is None:
            raise RuntimeError(f"a wait ended otherwise: {outcome!r}")
        polls += int(outcome.state["polls"])
    return polls


async def run(task_infos: int, lookups: int, repeats: int, wait_jobs: int) -> list[str]:
    ids = [str(FIRST_ID + i) for i in range(lookups)]
    samples: dict[str, list[float]] = {"b": [], "f": [], "p": [], "w": []}
    async with Server("--task-infos", str(task_infos), "--status", "1") as server:
        connector = aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector) as session, kd.KooDriveClient(
            server.base_url, user_id="u", auth=kd.TokenAuth("t"), max_connections=CONCURRENCY,
        ) as client:
            url = server.base_url + PREFIX

            async def raw(job_id: str) -> object:
                async with session.get(url + job_id) as response:
                    return orjson.loads(await response.read())

            lookup: dict[str, Callable[[str], Awaitable[object]]] = {
                "b": raw, "f": client.get_job, "p": client.poll_job,
            }
            for _ in range(repeats + 1):  # the first round warms up, and is dropped
                for name in ("b", "f", "p", "w"):
                    started = time.process_time()
                    if name == "w":
                        count = await waits(client, ids[:wait_jobs], 1.0)
                    else:
                        await drive(CONCURRENCY, ids, lookup[name])
                        count = len(ids)
                    samples[name].append((time.process_time() - started) / count * 1e6)
    for values in samples.values():
        del values[0]
    full = samples["f"]

    def cell(name: str) -> str:
        values = samples[name]
        ratios = [v / f for v, f in zip(values, full, strict=True)]
        return (f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}) | "
                f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")

    names = {
        "b": "(b) raw aiohttp + orjson.loads",
        "f": "(f) KooDriveClient.get_job",
        "p": "(p) KooDriveClient.poll_job",
        "w": "(w) the waiter's poll (wait_for_jobs)",
    }
    lines = [
        f"A processing job with {task_infos:,} taskInfos; {repeats} interleaved repetitions of "
        f"{lookups:,} requests at concurrency {CONCURRENCY} (waits: {wait_jobs} jobs for 1 s).",
        "",
        "| variant | client CPU us/request | ratio to (f) |",
        "|---|---:|---:|",
        *(f"| {names[n]} | {cell(n)} |" for n in names),
        "",
    ]
    ratio = statistics.median(w / f for w, f in zip(samples["w"], full, strict=True))
    verdict = "met" if ratio <= GOAL else "NOT met"
    lines.append(f"- {verdict}: (w) client CPU per poll <= {GOAL} x (f) while processing: "
                 f"{ratio:.2f}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task-infos", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=500, help="requests per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--waits", type=int, default=10, help="jobs waited on in (w)")
    args = parser.parse_args(argv)
    print("\n".join(asyncio.run(run(args.task_infos, args.lookups, args.repeats, args.waits))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
