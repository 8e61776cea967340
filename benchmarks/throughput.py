"""Lookup throughput and client CPU per lookup: KooDriveClient against raw aiohttp (issue 4).

One local server process (``benchmarks/_server.py``, on loopback, its own port) answers every
GetJobDetail with the seed's example response. At each concurrency c, N distinct job ids are
looked up by four variants:

- (a) raw aiohttp: ``session.get(url)`` and ``await resp.read()``;
- (b) raw aiohttp + ``orjson.loads`` of the body: the baseline of every ratio;
- (c) ``KooDriveClient.get_job``;
- (d) ``KooDriveClient.get_jobs(ids, concurrency=c)``;
- (e) what a user would write instead of us: aiohttp + ``orjson.loads`` sending the same
  headers from a plain dict (``Authorization``, ``X-User-Id``, a fresh ``X-Date`` and
  ``X-Traceid`` per request) and checking the envelope's ``code``.

(a), (b), (c) and (e) are driven alike: c coroutines, each looping over one shared iterator of the
ids; (d) is the client's own fan-out. The raw variants share one session whose connector has
``limit=c, limit_per_host=0``; (c) and (d) share one client with ``max_connections=c``. Every
variant first runs a warm-up (which also opens the pool's connections), then the repetitions
interleave the variants, their order rotated each repetition (a, b, c, d, e, then b, c, d, e,
a, ...), so that the machine's noise hits all alike. Each run reports lookups/s (wall clock),
client CPU per lookup (``time.process_time`` of this process / N) and the server's CPU per
lookup (``/proc``, Linux only). Ratios are taken per repetition against (b) of the same
repetition; the tables give their median and range.
Latency: every lookup is timed (for (d), inside the client's fan-out, by a subclass whose
``get_job`` times the inherited one); the table gives p50, p99 and p99 / p50 per variant,
the starvation figure of the fan-out at concurrency 500.

Run: ``python benchmarks/throughput.py [--lookups N] [--repeats R] [--concurrency 1,10,100,500]
[--loop asyncio|uvloop]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _instructions import count_instructions

import koodrive_async as kd

THIS: Final = Path(__file__).resolve()
SERVER: Final = THIS.parent / "_server.py"
PREFIX: Final = "/koodrive/ose/v1/"
FIRST_ID: Final = 1309243162258308352
GOAL_CONCURRENCY: Final = 100
#: Throughput of (c) and (d) against (b): at the goal concurrency, and at every other one.
GOAL_RATIO: Final = 0.90
GOAL_RATIO_EVERYWHERE: Final = 0.85
#: Client CPU per lookup of (c) against (e), the hand-written loop with the same headers.
GOAL_CPU_VS_HANDWRITTEN: Final = 1.05
#: p99 / p50 latency of the lookups of (d) at concurrency 500.
GOAL_STARVATION: Final = 5.0
#: Lookups whose Python instructions are counted at the goal concurrency (tracing is slow).
COUNTED_LOOKUPS: Final = 300
STARVATION_CONCURRENCY: Final = 500
#: Lookups of the two callgrind runs per variant (their difference is counted), after
#: CALLGRIND_WARMUP lookups that open the pool's connections.
CALLGRIND_LOOKUPS: Final = (200, 1200)
CALLGRIND_WARMUP: Final = 400
VARIANTS: Final = {
    "a": "raw aiohttp, read()",
    "b": "raw aiohttp + orjson.loads",
    "c": "KooDriveClient.get_job",
    "d": "KooDriveClient.get_jobs",
    "e": "hand-written aiohttp + orjson, same headers",
}
BASELINE: Final = "b"

Run = Callable[[Sequence[str]], Awaitable[None]]


@dataclass
class Sample:
    """One timed run of one variant."""

    rate: float  # lookups per second
    cpu_us: float  # client CPU per lookup
    server_cpu_us: float | None  # server CPU per lookup
    p50_ms: float = 0.0  # latency of one lookup
    p99_ms: float = 0.0


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # throughput / baseline's, per repetition
    cpu_ratios: list[float] = field(default_factory=list)  # CPU per lookup / baseline's
    instructions: float | None = None  # Python instructions per lookup (goal concurrency)
    machine: float | None = None  # machine instructions per lookup, C included (callgrind)


class Server:
    """``_server.py`` in a child process, on a port of its own."""

    def __init__(self, *arguments: str) -> None:
        self.arguments = arguments  # passed on to _server.py
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    async def __aenter__(self) -> Server:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-W", "error", str(SERVER), "--port", "0", *self.arguments,
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


#: Seconds each lookup of the current run took (appended by every variant alike).
LATENCIES: list[float] = []


async def drive(concurrency: int, ids: Sequence[str], lookup: Callable[[str], Awaitable[object]]
                ) -> None:
    """c coroutines, each looking up the next id of one shared iterator until none is left."""
    shared: Iterator[str] = iter(ids)
    clock, record = time.perf_counter, LATENCIES.append

    async def worker() -> None:
        for job_id in shared:
            started = clock()
            await lookup(job_id)
            record(clock() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class TimedClient(kd.KooDriveClient):
    """The client, timing each lookup its fan-out makes (the latency a caller's job sees)."""

    async def get_job(self, job_id: str, **options: Any) -> kd.JobDetail:
        started = time.perf_counter()
        detail = await super().get_job(job_id, **options)
        LATENCIES.append(time.perf_counter() - started)
        return detail


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

    async def by_hand(job_id: str) -> object:
        headers = {
            "Authorization": "Bearer t",
            "X-User-Id": "u",
            "X-Date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
            "X-Traceid": uuid.uuid4().hex,
        }
        async with session.get(url_prefix + job_id, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            envelope = orjson.loads(await resp.read())
            if envelope.get("code") != 0:
                raise RuntimeError(f"code {envelope.get('code')}")
            return envelope["data"]

    async def run_a(ids: Sequence[str]) -> None:
        await drive(concurrency, ids, read)

    async def run_b(ids: Sequence[str]) -> None:
        await drive(concurrency, ids, read_decode)

    # The inherited get_job: TimedClient's own times only the fan-out's lookups.
    get_job = functools.partial(kd.KooDriveClient.get_job, client)

    async def run_c(ids: Sequence[str]) -> None:
        await drive(concurrency, ids, get_job)

    async def run_d(ids: Sequence[str]) -> None:
        count = 0
        async for _, outcome in client.get_jobs(ids, concurrency=concurrency):
            if isinstance(outcome, kd.KooDriveError):
                raise outcome
            count += 1
        if count != len(ids):
            raise RuntimeError(f"get_jobs gave {count} outcomes for {len(ids)} ids")

    async def run_e(ids: Sequence[str]) -> None:
        await drive(concurrency, ids, by_hand)

    return {"a": run_a, "b": run_b, "c": run_c, "d": run_d, "e": run_e}


async def timed(run: Run, ids: Sequence[str], server: Server) -> Sample:
    LATENCIES.clear()
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
    ranked = sorted(LATENCIES)
    if len(ranked) != len(ids):
        raise RuntimeError(f"{len(ranked)} lookups timed for {len(ids)} ids")
    p50 = ranked[len(ranked) // 2] * 1e3
    p99 = ranked[min(len(ranked) - 1, len(ranked) * 99 // 100)] * 1e3
    return Sample(len(ids) / wall, cpu / len(ids) * 1e6, server_us, p50, p99)


async def bench_concurrency(server: Server, concurrency: int, lookups: int, repeats: int
                            ) -> dict[str, Series]:
    ids = [str(FIRST_ID + i) for i in range(lookups)]
    warmup = ids[: max(lookups // 5, 2 * concurrency)]
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        TimedClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                    max_connections=concurrency) as client,
    ):
        runs = variants(session, client, server.base_url, concurrency)
        for run in runs.values():
            await run(warmup)
        series = {name: Series() for name in runs}
        names = list(runs)
        for repeat in range(repeats):
            # Rotated each repetition: no variant always runs after the same one.
            order = names[repeat % len(names):] + names[:repeat % len(names)]
            round_ = {name: await timed(runs[name], ids, server) for name in order}
            base = round_[BASELINE]
            for name in names:
                sample = round_[name]
                series[name].samples.append(sample)
                series[name].ratios.append(sample.rate / base.rate)
                series[name].cpu_ratios.append(sample.cpu_us / base.cpu_us)
        if concurrency == GOAL_CONCURRENCY:
            counted = ids[:COUNTED_LOOKUPS]
            for name, run in runs.items():
                total, _ = await count_instructions(functools.partial(run, counted))
                series[name].instructions = total / len(counted)
    return series


async def callgrind_worker(port: int, variant: str, concurrency: int, lookups: int) -> None:
    """One variant's lookups against a running server: what ``--callgrind`` runs under
    valgrind, twice (a warm-up of WARMUP lookups, then ``lookups``)."""
    base_url = f"http://127.0.0.1:{port}"
    ids = [str(FIRST_ID + i) for i in range(CALLGRIND_WARMUP + lookups)]
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        TimedClient(base_url, user_id="u", auth=kd.TokenAuth("t"),
                    max_connections=concurrency) as client,
    ):
        run = variants(session, client, base_url, concurrency)[variant]
        await run(ids[:CALLGRIND_WARMUP])
        # Both runs of a variant start the counted lookups with the collector in one state:
        # else whether a collection of the warm-up's leftovers falls among them is chance.
        gc.collect()
        await run(ids[CALLGRIND_WARMUP:])


async def _callgrind_total(port: int, variant: str, concurrency: int, lookups: int,
                           out: Path) -> int:
    proc = await asyncio.create_subprocess_exec(
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
        str(THIS), "--callgrind-worker", variant, "--port", str(port),
        "--concurrency", str(concurrency), "--lookups", str(lookups),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"callgrind run of ({variant}) failed: {err.decode()[-500:]}")
    return _callgrind_total_of(out)


def _callgrind_total_of(out: Path) -> int:
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {out}")


async def count_machine_instructions(server: Server, series: dict[str, Series],
                                     concurrency: int) -> None:
    """Each variant's machine instructions per lookup (its Python, asyncio, aiohttp, yarl,
    multidict, orjson and the interpreter: all the client's user-space CPU work), from two
    callgrind runs of ``--callgrind-worker`` that differ only by the lookups made, so that
    start-up and warm-up cancel out. Two variants at a time, one per core."""
    small, large = CALLGRIND_LOOKUPS
    slots = asyncio.Semaphore(2)

    async def one(name: str) -> None:
        async with slots:
            with tempfile.TemporaryDirectory() as tmp:
                totals = [await _callgrind_total(server.port, name, concurrency, n,
                                                 Path(tmp) / f"{n}.out") for n in (small, large)]
        series[name].machine = (totals[1] - totals[0]) / (large - small)

    await asyncio.gather(*(one(name) for name in series))


def _spread(values: Sequence[float], fmt: str) -> str:
    median = statistics.median(values)
    return f"{median:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def print_tables(results: dict[int, dict[str, Series]], lookups: dict[int, int], repeats: int
                 ) -> None:
    print(f"Each cell: median (min-max) of {repeats} interleaved repetitions. Ratios are per "
          f"repetition against ({BASELINE}) {VARIANTS[BASELINE]} in the same repetition.\n")
    print("| concurrency | variant | lookups/s | ratio to (b) | client CPU us/lookup "
          "| CPU ratio to (b) | server CPU us/lookup | latency p50 / p99 ms | p99 / p50 |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for concurrency, series in results.items():
        for name, s in series.items():
            server = [x.server_cpu_us for x in s.samples if x.server_cpu_us is not None]
            server_cell = f"{statistics.median(server):.0f}" if server else "n/a"
            p50 = statistics.median(x.p50_ms for x in s.samples)
            p99 = statistics.median(x.p99_ms for x in s.samples)
            print(
                f"| {concurrency} (N={lookups[concurrency]}) | ({name}) {VARIANTS[name]} "
                f"| {_spread([x.rate for x in s.samples], '.0f')} "
                f"| {_spread(s.ratios, '.2f')} "
                f"| {_spread([x.cpu_us for x in s.samples], '.0f')} "
                f"| {_spread(s.cpu_ratios, '.2f')} | {server_cell} "
                f"| {p50:.2f} / {p99:.2f} "
                f"| {_spread([x.p99_ms / x.p50_ms for x in s.samples], '.1f')} |"
            )
    counted = {name: s.instructions for name, s in results.get(GOAL_CONCURRENCY, {}).items()
               if s.instructions is not None}
    if counted:
        print(f"\nPython instructions per lookup at concurrency {GOAL_CONCURRENCY} "
              f"({COUNTED_LOOKUPS} lookups counted; asyncio's and aiohttp's Python included, C "
              "code not counted): a cost the machine's load does not move.\n")
        print("| variant | instructions per lookup | ratio to (b) | ratio to (e) |")
        print("|---|---:|---:|---:|")
        for name, count in counted.items():
            print(f"| ({name}) {VARIANTS[name]} | {count:,.0f} | {count / counted[BASELINE]:.2f} "
                  f"| {count / counted['e']:.2f} |")
    machine = {name: s.machine for name, s in results.get(GOAL_CONCURRENCY, {}).items()
               if s.machine is not None}
    if machine:
        small, large = CALLGRIND_LOOKUPS
        print(f"\nMachine instructions per lookup at concurrency {GOAL_CONCURRENCY}, C code "
              f"included (valgrind's callgrind; {large:,} lookups less {small:,}, so start-up "
              "cancels out): the client's user-space CPU work, whatever the machine's load. "
              "System calls are not in it, and they are the same for every variant.\n")
        print("| variant | machine instructions per lookup | ratio to (b) | ratio to (e) |")
        print("|---|---:|---:|---:|")
        for name, count in machine.items():
            print(f"| ({name}) {VARIANTS[name]} | {count:,.0f} | {count / machine[BASELINE]:.3f} "
                  f"| {count / machine['e']:.3f} |")
    print()
    for line in goals(results):
        print(line)


def goals(results: dict[int, dict[str, Series]]) -> list[str]:
    """Each goal of the speed issue this benchmark measures: met or not, with its figures."""
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    for name in ("c", "d"):
        if GOAL_CONCURRENCY in results:
            ratios = results[GOAL_CONCURRENCY][name].ratios
            lines.append(
                f"- {verdict(statistics.median(ratios) >= GOAL_RATIO)}: ({name}) "
                f"{VARIANTS[name]} throughput at concurrency {GOAL_CONCURRENCY} >= "
                f"{GOAL_RATIO} x ({BASELINE}): {_spread(ratios, '.2f')}"
            )
        worst = min(results, key=lambda c: statistics.median(results[c][name].ratios))
        ratios = results[worst][name].ratios
        lines.append(
            f"- {verdict(statistics.median(ratios) >= GOAL_RATIO_EVERYWHERE)}: ({name}) "
            f">= {GOAL_RATIO_EVERYWHERE} x ({BASELINE}) at every concurrency run "
            f"(lowest at {worst}: {_spread(ratios, '.2f')})"
        )
    if GOAL_CONCURRENCY in results:
        series = results[GOAL_CONCURRENCY]
        cpu = [c.cpu_us / e.cpu_us for c, e in zip(series["c"].samples, series["e"].samples,
                                                  strict=True)]
        machine_c, machine_e = series["c"].machine, series["e"].machine
        if machine_c is not None and machine_e is not None:
            # Counted, this is the figure that decides: the timed one moves with the load.
            ratio = machine_c / machine_e
            lines.append(
                f"- {verdict(ratio <= GOAL_CPU_VS_HANDWRITTEN)}: (c) client CPU per lookup <= "
                f"{GOAL_CPU_VS_HANDWRITTEN} x (e) at concurrency {GOAL_CONCURRENCY}, in machine "
                f"instructions: {ratio:.3f} (timed: {_spread(cpu, '.2f')})"
            )
        else:
            lines.append(
                f"- {verdict(statistics.median(cpu) <= GOAL_CPU_VS_HANDWRITTEN)}: (c) client "
                f"CPU per lookup <= {GOAL_CPU_VS_HANDWRITTEN} x (e) at concurrency "
                f"{GOAL_CONCURRENCY}, timed: {_spread(cpu, '.2f')}"
            )
    if STARVATION_CONCURRENCY in results:
        spread = [x.p99_ms / x.p50_ms for x in results[STARVATION_CONCURRENCY]["d"].samples]
        lines.append(
            f"- {verdict(statistics.median(spread) <= GOAL_STARVATION)}: (d) p99 / p50 "
            f"latency at concurrency {STARVATION_CONCURRENCY} <= {GOAL_STARVATION:g}: "
            f"{_spread(spread, '.1f')}"
        )
    return lines


async def run(concurrencies: Sequence[int], lookups: int, repeats: int, callgrind: bool
              ) -> None:
    results: dict[int, dict[str, Series]] = {}
    sizes: dict[int, int] = {}
    started = time.perf_counter()
    async with Server() as server:
        for concurrency in concurrencies:
            sizes[concurrency] = max(lookups, concurrency)
            results[concurrency] = await bench_concurrency(
                server, concurrency, sizes[concurrency], repeats
            )
        if callgrind and GOAL_CONCURRENCY in results:
            await count_machine_instructions(server, results[GOAL_CONCURRENCY],
                                             GOAL_CONCURRENCY)
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
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the event loop every variant runs on (uvloop: the speedups "
                             "extra)")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count machine instructions per lookup, C included, under "
                             "valgrind (must be on PATH; adds a few minutes)")
    parser.add_argument("--callgrind-worker", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lookups < 1 or args.repeats < 1:
        parser.error("--lookups and --repeats must be >= 1")
    if args.callgrind_worker:
        asyncio.run(callgrind_worker(args.port, args.callgrind_worker, args.concurrency[0],
                                     args.lookups))
        return 0
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind on PATH")
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    print(f"event loop: {args.loop}")
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(args.concurrency, args.lookups, args.repeats, args.callgrind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
