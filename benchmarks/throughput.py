"""Lookup throughput and client CPU per lookup: KooDriveClient against raw aiohttp (issue 4).

One local server process (``benchmarks/_server.py``, on loopback, its own port) answers every
GetJobDetail with the seed's example response. At each concurrency c, N distinct job ids are
looked up by four variants:

- (a) raw aiohttp: ``session.get(url)`` and ``await resp.read()``;
- (b) raw aiohttp + ``orjson.loads`` of the body: the baseline of every ratio;
- (c) ``KooDriveClient.get_job``;
- (d) ``KooDriveClient.get_jobs(ids, concurrency=c)``.

(a), (b) and (c) are driven alike: c coroutines, each looping over one shared iterator of the
ids; (d) is the client's own fan-out. The raw variants share one session whose connector has
``limit=c, limit_per_host=0``; (c) and (d) share one client with ``max_connections=c``. Every
variant first runs a warm-up (which also opens the pool's connections), then the repetitions
interleave the variants (a, b, c, d, a, b, c, d, ...) so that the machine's noise hits all
alike. Each run reports lookups/s (wall clock), client CPU per lookup (``time.process_time``
of this process / N) and the server's CPU per lookup (``/proc``, Linux only). Ratios are taken
per repetition against (b) of the same repetition; the tables give their median and range.

Run: ``python benchmarks/throughput.py [--lookups N] [--repeats R] [--concurrency 1,10,100,500]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import koodrive_async as kd

SERVER: Final = Path(__file__).resolve().parent / "_server.py"
PREFIX: Final = "/koodrive/ose/v1/"
FIRST_ID: Final = 1309243162258308352
GOAL_CONCURRENCY: Final = 100
GOAL_RATIO: Final = 0.85
VARIANTS: Final = {
    "a": "raw aiohttp, read()",
    "b": "raw aiohttp + orjson.loads",
    "c": "KooDriveClient.get_job",
    "d": "KooDriveClient.get_jobs",
}
BASELINE: Final = "b"

Run = Callable[[Sequence[str]], Awaitable[None]]


@dataclass
class Sample:
    """One timed run of one variant."""

    rate: float  # lookups per second
    cpu_us: float  # client CPU per lookup
    server_cpu_us: float | None  # server CPU per lookup


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # throughput / baseline's, per repetition
    cpu_ratios: list[float] = field(default_factory=list)  # CPU per lookup / baseline's


class Server:
    """``_server.py`` in a child process, on a port of its own."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    async def __aenter__(self) -> Server:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-W", "error", str(SERVER), "--port", "0",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert self.proc.stdout is not None
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            if not line.startswith(b"ready"):
                raise RuntimeError(f"the benchmark server did not start: {line!r}")
            self.port = int(line.split()[1])
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server process so far, or None where /proc is missing."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._ticks


async def drive(concurrency: int, ids: Sequence[str], lookup: Callable[[str], Awaitable[object]]
                ) -> None:
    """c coroutines, each looking up the next id of one shared iterator until none is left."""
    shared: Iterator[str] = iter(ids)

    async def worker() -> None:
        for job_id in shared:
            await lookup(job_id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def variants(session: aiohttp.ClientSession, client: kd.KooDriveClient, base_url: str,
             concurrency: int) -> dict[str, Run]:
    url_prefix = base_url + PREFIX

    async def read(job_id: str) -> bytes:
        async with session.get(url_prefix + job_id) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return await resp.read()

    async def read_decode(job_id: str) -> object:
        async with session.get(url_prefix + job_id) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return orjson.loads(await resp.read())

    async def run_a(ids: Sequence[str]) -> None:
        await drive(concurrency, ids, read)

    async def run_b(ids: Sequence[str]) -> None:
        await drive(concurrency, ids, read_decode)

    async def run_c(ids: Sequence[str]) -> None:
        await drive(concurrency, ids, client.get_job)

    async def run_d(ids: Sequence[str]) -> None:
        count = 0
        async for _, outcome in client.get_jobs(ids, concurrency=concurrency):
            if isinstance(outcome, kd.KooDriveError):
                raise outcome
            count += 1
        if count != len(ids):
            raise RuntimeError(f"get_jobs gave {count} outcomes for {len(ids)} ids")

    return {"a": run_a, "b": run_b, "c": run_c, "d": run_d}


async def timed(run: Run, ids: Sequence[str], server: Server) -> Sample:
    server_before = server.cpu_seconds()
    cpu_before = time.process_time()
    started = time.perf_counter()
    await run(ids)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    server_after = server.cpu_seconds()
    server_us = (
        (server_after - server_before) / len(ids) * 1e6
        if server_before is not None and server_after is not None
        else None
    )
    return Sample(len(ids) / wall, cpu / len(ids) * 1e6, server_us)


async def bench_concurrency(server: Server, concurrency: int, lookups: int, repeats: int
                            ) -> dict[str, Series]:
    ids = [str(FIRST_ID + i) for i in range(lookups)]
    warmup = ids[: max(lookups // 5, 2 * concurrency)]
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                          max_connections=concurrency) as client,
    ):
        runs = variants(session, client, server.base_url, concurrency)
        for run in runs.values():
            await run(warmup)
        series = {name: Series() for name in runs}
        for _ in range(repeats):
            round_ = {name: await timed(run, ids, server) for name, run in runs.items()}
            base = round_[BASELINE]
            for name, sample in round_.items():
                series[name].samples.append(sample)
                series[name].ratios.append(sample.rate / base.rate)
                series[name].cpu_ratios.append(sample.cpu_us / base.cpu_us)
    return series


def _spread(values: Sequence[float], fmt: str) -> str:
    median = statistics.median(values)
    return f"{median:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def print_tables(results: dict[int, dict[str, Series]], lookups: dict[int, int], repeats: int
                 ) -> None:
    print(f"Each cell: median (min-max) of {repeats} interleaved repetitions. Ratios are per "
          f"repetition against ({BASELINE}) {VARIANTS[BASELINE]} in the same repetition.\n")
    print("| concurrency | variant | lookups/s | ratio to (b) | client CPU us/lookup "
          "| CPU ratio to (b) | server CPU us/lookup |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for concurrency, series in results.items():
        for name, s in series.items():
            server = [x.server_cpu_us for x in s.samples if x.server_cpu_us is not None]
            server_cell = f"{statistics.median(server):.0f}" if server else "n/a"
            print(
                f"| {concurrency} (N={lookups[concurrency]}) | ({name}) {VARIANTS[name]} "
                f"| {_spread([x.rate for x in s.samples], '.0f')} "
                f"| {_spread(s.ratios, '.2f')} "
                f"| {_spread([x.cpu_us for x in s.samples], '.0f')} "
                f"| {_spread(s.cpu_ratios, '.2f')} | {server_cell} |"
            )
    print()
    if GOAL_CONCURRENCY not in results:
        print(f"- goal not measured: concurrency {GOAL_CONCURRENCY} was not run")
        return
    for name in ("c", "d"):
        ratio = statistics.median(results[GOAL_CONCURRENCY][name].ratios)
        verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
        print(f"- {verdict}: ({name}) {VARIANTS[name]} throughput at concurrency "
              f"{GOAL_CONCURRENCY} >= {GOAL_RATIO} x ({BASELINE}) (median ratio {ratio:.2f})")


async def run(concurrencies: Sequence[int], lookups: int, repeats: int) -> None:
    results: dict[int, dict[str, Series]] = {}
    sizes: dict[int, int] = {}
    started = time.perf_counter()
    async with Server() as server:
        for concurrency in concurrencies:
            sizes[concurrency] = max(lookups, concurrency)
            results[concurrency] = await bench_concurrency(
                server, concurrency, sizes[concurrency], repeats
            )
    took = time.perf_counter() - started
    print(f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
          f"orjson {orjson.__version__}, {os.cpu_count()} CPUs; server and client on loopback; "
          f"{took:.0f} s\n")
    print_tables(results, sizes, repeats)


def _concurrencies(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of integers >= 1")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lookups", type=int, default=3000, help="lookups per run (N)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per variant")
    parser.add_argument("--concurrency", type=_concurrencies, default=[1, 10, 100, 500],
                        help="comma-separated concurrencies (default 1,10,100,500)")
    args = parser.parse_args(argv)
    if args.lookups < 1 or args.repeats < 1:
        parser.error("--lookups and --repeats must be >= 1")
    asyncio.run(run(args.concurrency, args.lookups, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
