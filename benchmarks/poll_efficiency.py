"""Poll-efficiency benchmark of the job waiter (issue 3): polls per job against detection lag.

A seeded population of simulated jobs is waited on, in virtual time, by each strategy:

- fixed 1 s (openai-python's polling helpers), fixed 15 s (a typical botocore waiter),
  fixed 30 s (azure-core's default polling interval);
- exponential from 1 s, x2, capped at 60 s, with full jitter (google-api-core);
- ``koodrive_async.PollPolicy()`` with its defaults.

Jobs: durations log-uniform from 2 s to 2 h; progress rises linearly with noise (the speed
changes from segment to segment), reported as an integer percent that never decreases and
reaches 100 only with the completed status; 20 % first sit at 0 (half of them pending, half
processing at 0 %) for 10 % to 50 % of their duration. Lag is the time from the job's real end
to the poll that sees it completed; as a fraction, it is divided by the job's whole duration.

Run: ``python benchmarks/poll_efficiency.py [--jobs N] [--seed S]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from koodrive_async import PollPolicy, waiter
from koodrive_async._schedule import PollSchedule
from koodrive_async.models import JobDetail, JobInfo, JobStatus

PENDING, PROCESSING, COMPLETED = 0, 1, 2
MIN_DURATION, MAX_DURATION = 2.0, 7200.0
STUCK_SHARE = 0.2
SEGMENTS = 8
# Speed of each segment relative to the job's mean speed: log-normal with this sigma.
SPEED_SIGMA = 0.35


class Strategy(Protocol):
    def observe(self, now: float, status: int | None, progress: int | None) -> None: ...

    def next_delay(self, now: float) -> float: ...

    def to_state(self) -> dict[str, Any]: ...


class Job:
    """A simulated job: stuck at 0 until ``start``, then piecewise-linear progress to ``end``."""

    def __init__(self, rng: random.Random) -> None:
        self.duration = math.exp(rng.uniform(math.log(MIN_DURATION), math.log(MAX_DURATION)))
        self.start = 0.0
        self.stuck_status = PROCESSING
        if rng.random() < STUCK_SHARE:
            self.start = self.duration * rng.uniform(0.1, 0.5)
            self.stuck_status = rng.choice((PENDING, PROCESSING))
        speeds = [rng.lognormvariate(0.0, SPEED_SIGMA) for _ in range(SEGMENTS)]
        total = sum(speeds)
        self._knots = [0.0]
        for speed in speeds:
            self._knots.append(self._knots[-1] + 100.0 * speed / total)

    def state(self, t: float) -> tuple[int, int]:
        """(status, progress) as GetJobDetail reports them at job time ``t``."""
        if t >= self.duration:
            return COMPLETED, 100
        if t < self.start:
            return self.stuck_status, 0
        u = (t - self.start) / (self.duration - self.start) * SEGMENTS
        i = min(int(u), SEGMENTS - 1)
        value = self._knots[i] + (self._knots[i + 1] - self._knots[i]) * (u - i)
        return PROCESSING, min(int(value), 99)


class Fixed:
    """A fixed interval (openai-python, botocore, azure-core)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def observe(self, now: float, status: int | None, progress: int | None) -> None:
        pass

    def next_delay(self, now: float) -> float:
        return self.interval

    def to_state(self) -> dict[str, Any]:
        return {}


class Exponential:
    """google-api-core: ceiling from ``initial`` x ``multiplier`` up to ``maximum``, full jitter."""

    def __init__(
        self,
        rng: random.Random,
        initial: float = 1.0,
        maximum: float = 60.0,
        multiplier: float = 2.0,
    ) -> None:
        self.rng = rng
        self.ceiling = initial
        self.maximum = maximum
        self.multiplier = multiplier

    def observe(self, now: float, status: int | None, progress: int | None) -> None:
        pass

    def next_delay(self, now: float) -> float:
        delay = self.rng.uniform(0.0, self.ceiling)
        self.ceiling = min(self.ceiling * self.multiplier, self.maximum)
        return delay

    def to_state(self) -> dict[str, Any]:
        return {}


class VirtualClock:
    """Time that moves only when slept through."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class SimulatedSource:
    """A JobSource answering GetJobDetail from a simulated job, at no cost in virtual time."""

    def __init__(self, job: Job, clock: VirtualClock) -> None:
        self.job = job
        self.clock = clock

    async def get_job(self, job_id: str, *, total_timeout: float | None = None) -> JobDetail:
        status, progress = self.job.state(self.clock.now)
        info = JobInfo(task_id=job_id, status=JobStatus(status), progress=progress)
        return JobDetail(job_info=info)

    async def cancel_job(self, job_id: str, *, total_timeout: float | None = None) -> None:
        raise AssertionError("the benchmark never cancels")


async def drive(job: Job, strategy: Strategy) -> tuple[int, float]:
    """Wait for ``job`` with the real waiter loop and ``strategy``; return (polls, lag)."""
    clock = VirtualClock()
    result = await waiter.wait_for_job(
        SimulatedSource(job, clock), "1", timeout=None, clock=clock, sleep=clock.sleep,
        schedule=strategy,
    )
    return result.polls, clock.now - job.duration


def _p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def _strategies(seed: int) -> list[tuple[str, Callable[[int], Strategy]]]:
    def ours(i: int) -> Strategy:
        return PollSchedule(PollPolicy(), rng=random.Random(seed * 1_000_003 + i))

    def exponential(i: int) -> Strategy:
        return Exponential(random.Random(seed * 1_000_033 + i))

    return [
        ("fixed 1 s (openai-python)", lambda i: Fixed(1.0)),
        ("fixed 15 s (botocore)", lambda i: Fixed(15.0)),
        ("fixed 30 s (azure-core)", lambda i: Fixed(30.0)),
        ("exp 1-60 s x2, full jitter (google-api-core)", exponential),
        ("koodrive_async PollPolicy()", ours),
    ]


async def run(jobs: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    population = [Job(rng) for _ in range(jobs)]
    rows = []
    for name, make in _strategies(seed):
        polls, lags, fractions = [], [], []
        for i, job in enumerate(population):
            count, lag = await drive(job, make(i))
            polls.append(count)
            lags.append(lag)
            fractions.append(lag / job.duration)
        rows.append(
            {
                "name": name,
                "polls": statistics.fmean(polls),
                "lag_p50": statistics.median(lags),
                "lag_p95": _p95(lags),
                "frac_p50": statistics.median(fractions),
                "frac_p95": _p95(fractions),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = asyncio.run(run(args.jobs, args.seed))
    took = time.perf_counter() - started
    print(f"{args.jobs} jobs, seed {args.seed}, driven by koodrive_async.waiter.wait_for_job,"
          f" {took:.1f} s\n")
    print(
        "| strategy | polls/job (mean) | lag p50 | lag p95 | lag/duration p50 | lag/duration p95 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['name']} | {r['polls']:.1f} | {r['lag_p50']:.2f} s | {r['lag_p95']:.2f} s "
            f"| {r['frac_p50']:.1%} | {r['frac_p95']:.1%} |"
        )
    exp, ours = rows[3], rows[4]
    checks = [
        ("polls <= half of exponential", ours["polls"] <= exp["polls"] / 2),
        ("p95 lag <= exponential's", ours["lag_p95"] <= exp["lag_p95"]),
        ("p95 lag/duration < 10 %", ours["frac_p95"] < 0.10),
    ]
    print()
    for label, ok in checks:
        print(f"- {'met' if ok else 'NOT met'}: {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
