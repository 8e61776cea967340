"""The poll estimator's memory of one run of progress: its changes, its rate, its finish.

Pure arithmetic for ``_schedule.PollSchedule`` (see its module docstring for the method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ._state import MAX_EVENTS, ScheduleState

__all__ = ["Change", "Run"]


@attrs.define
class Change:
    """The first poll that saw a new percent: ``progress`` reached within ``gap`` before ``t``."""

    t: float
    progress: int
    gap: float


@attrs.define(slots=True)
class Run:
    """What the estimator knows of the progress: the current run, its events, the rate.

    A run is a stretch of polls whose progress is known and never goes back; it starts at the
    last of its polls before the progress moved. Times are the schedule's local seconds.
    """

    last_t: float | None = None
    progress: int | None = None
    # The run's start (time, progress), two fields rather than a tuple, and no list until the
    # first event: a waiting job holds its Run for the whole wait (about 100 bytes saved).
    start_t: float | None = None
    start_progress: int = 0
    events: Sequence[Change] = ()
    # A rate (percent per second) carried across a resume, whose clock gap is unknown.
    prior_rate: float | None = None

    def rate(self, *, bounded: bool) -> float | None:
        """Percent per second of the current run, None when unknown or not moving.

        ``bounded`` caps it by what the last poll proves: the next percent was not reached.
        """
        events = self.events
        if len(events) >= 2:
            first, last = events[0], events[-1]
            span = last.t - first.t
            if span <= 0:
                return None
            rough = (last.progress - first.progress) / span
            # An event's percent was reached within its gap before it was seen, and at most
            # one percent's worth before; pulling both ends back by half of that removes most
            # of the quantisation bias.
            step = 1.0 / rough
            start = first.t - 0.5 * min(first.gap, step)
            end = last.t - 0.5 * min(last.gap, step)
            rate = (last.progress - first.progress) / max(end - start, 1e-9)
            anchor_t, anchor_p = start, first.progress
        elif self.prior_rate is not None:
            return self.prior_rate
        elif self.start_t is not None and self.progress is not None:
            anchor_t, anchor_p = self.start_t, self.start_progress
            if self.progress <= anchor_p or self.last_t is None:
                return None
            rate = (self.progress - anchor_p) / max(self.last_t - anchor_t, 1e-9)
        else:
            return None
        last_t = self.last_t
        if bounded and self.progress is not None and last_t is not None and last_t > anchor_t:
            ceiling = (self.progress + 1 - anchor_p) / (last_t - anchor_t)
            rate = min(rate, ceiling)
        return rate if rate > 0 and math.isfinite(rate) else None

    def finish(self, now: float, rate: float) -> float:
        """The predicted local time of the finish at ``rate``."""
        progress = self.progress if self.progress is not None else 0
        if self.events:
            last = self.events[-1]
            reached = last.t - 0.5 * min(last.gap, 1.0 / rate)
            finish = reached + (100 - progress) / rate
        else:
            seen = self.last_t if self.last_t is not None else now
            finish = seen + (100 - progress - 0.5) / rate
        if progress < 99 and self.last_t is not None:
            # The next percent was not reached by the last poll.
            finish = max(finish, self.last_t + (99 - progress) / rate)
        return finish

    def aim(
        self, now: float, rate: float, floor: float, *, lead: float, extrapolation: float
    ) -> float:
        """Seconds to the next poll, aimed at ``lead`` of the predicted remaining time, at
        least ``floor``."""
        remaining = self.finish(now, rate) - now
        if remaining <= 0:
            # Past the predicted end (sitting at 99 %): as long again as it is overdue.
            delay = lead * -remaining
        elif lead * remaining >= floor:
            delay = lead * remaining
        else:
            # Steps finer than the floor would cost polls for lag nobody asked to save: aim
            # at the predicted end itself.
            delay = remaining
        # A rate measured over a short run is a poor guide far ahead (jobs speed up and slow
        # down): look again before extrapolating further than the run has been watched.
        if self.start_t is not None:
            delay = min(delay, extrapolation * max(now - self.start_t, 0.0))
        return max(delay, floor)

    def stale(self, stale_steps: float) -> bool:
        """Whether the progress missed ``stale_steps`` expected percent steps."""
        rate = self.rate(bounded=False)
        if not self.events or self.last_t is None or rate is None:
            return False
        return self.last_t - self.events[-1].t > stale_steps / rate

    def restart(self, t: float | None = None, progress: int = 0) -> None:
        """Start a new run at local time ``t`` and ``progress``; None: no run."""
        self.start_t, self.start_progress = t, progress
        self.events = ()

    def add(self, change: Change) -> None:
        """Record that the progress moved."""
        if isinstance(self.events, list):
            self.events.append(change)
        else:
            self.events = [change]

    def trim(self, rate_window: int) -> None:
        """Keep at least two events, and the newest one at or before the window's start."""
        events = self.events
        if self.progress is None:
            return
        horizon = self.progress - rate_window
        keep_from = 0
        for index in range(len(events) - 2, -1, -1):
            if events[index].progress <= horizon:
                keep_from = index
                break
        keep_from = max(keep_from, len(events) - MAX_EVENTS)
        if keep_from:
            self.events = list(events[keep_from:])

    def to_state(self, *, fallback: float, status: int | None) -> ScheduleState:
        """The run as ages before its last poll, with the schedule's ``fallback`` and ``status``."""
        last_t = self.last_t
        events: tuple[tuple[float, int, float], ...] = ()
        run_age: float | None = None
        run_progress: int | None = None
        if last_t is not None:
            events = tuple((last_t - e.t, e.progress, e.gap) for e in self.events)
            if self.start_t is not None:
                run_age, run_progress = last_t - self.start_t, self.start_progress
        return ScheduleState(
            fallback=fallback, status=status, progress=self.progress, run_age=run_age,
            run_progress=run_progress, events=events, prior_rate=self.prior_rate,
        )

    @classmethod
    def from_state(cls, state: ScheduleState, *, resumed: bool) -> Run:
        """The run of ``state``, its last poll at local time 0 if ``resumed`` (polls made)."""
        run = cls(last_t=0.0 if resumed else None, progress=state.progress,
                  events=[Change(-age, progress, gap) for age, progress, gap in state.events],
                  prior_rate=state.prior_rate)
        if state.run_age is not None and state.run_progress is not None:
            run.start_t, run.start_progress = -state.run_age, state.run_progress
        return run
