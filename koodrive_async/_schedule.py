"""When to poll a job next: a growing interval, made progress-aware.

Pure logic (no I/O, no asyncio): the waiter feeds each successful poll to
``PollSchedule.observe`` and asks ``PollSchedule.next_delay`` how long to sleep. The user's
bounds come from ``PollPolicy`` (config); the estimator's own constants are ``Tuning``, private.

The blind part is the usual one: a first look at once, then an interval that starts at
``initial_interval`` and grows by ``multiplier`` up to ``Tuning.max_fallback_interval``
(never past ``max_interval``), with jitter. It serves while the job is pending or its progress
is unknown or not moving.

Once ``progress`` (an integer percent) has moved, the schedule predicts the finish. It keeps
the *change events* of the current run: the first poll that saw each new percent. Between two
events the rate is (percent gained) / (time between them); an event's time is pulled back by
half of the time it can have been late (its poll gap, at most one percent's worth), which
cancels most of the quantisation bias. The rate is taken over the last ``rate_window`` percent
of progress, so a job that speeds up or slows down is followed, while a slow job that shows
the same percent for several polls is still seen to move (the rate only drops as far as "the
next percent has not come yet" proves it must). The next poll is then aimed at ``lead`` of the
predicted remaining time: every poll shrinks the uncertainty with the remaining time, so a
finish is approached in a few geometric steps, and a last step is aimed at the predicted end
itself once the steps would be finer than the resolution the caller cares about
(``lag_tolerance`` of the time waited so far, but never less than the least delay).
"""

from __future__ import annotations

import math
import random
from typing import Any, Final

import attrs

from ._progress import Change, Run
from ._state import ScheduleState
from .config import PollPolicy
from .models import JobStatus

# PollPolicy is re-exported for the modules that imported it from here in 0.1.
__all__ = ["DEFAULT_TUNING", "PollPolicy", "PollSchedule", "Tuning"]

_SHARED_RNG: Final = random.Random()


def _within(low: float, high: float, *, open_low: bool = False, integral: bool = False) -> Any:
    """A validator: a finite number in [low, high] ((low, high] if ``open_low``)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        ok = isinstance(value, int if integral else int | float) and not isinstance(value, bool)
        if ok:
            number = float(value)  # type: ignore[arg-type]
            ok = math.isfinite(number) and (low < number if open_low else low <= number) and (
                number <= high
            )
        if not ok:
            kind = "an int" if integral else "a finite number"
            bracket = "(" if open_low else "["
            raise ValueError(f"{attribute.name} must be {kind} in {bracket}{low}, {high}], "
                             f"got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class Tuning:
    """The estimator's constants: private, and never stronger than the user's PollPolicy
    (``min_interval`` and ``max_fallback_interval`` yield to ``initial_interval`` and
    ``max_interval``).

    Attributes:
        lead: Fraction of the predicted remaining time to wait before the next poll; smaller
            costs polls, larger risks polling after the end when the job speeds up.
        lag_tolerance: Detection lag accepted near the finish, as a fraction of the time
            waited so far; near the predicted finish, polls are never closer than this.
        rate_window: Percentage points of recent progress the rate is measured over.
        stale_steps: Missing this many expected percent steps in a row means "not moving":
            back to the blind interval.
        extrapolation: A predicted delay is at most this multiple of the time the current
            run has been watched: a rate measured briefly is trusted only briefly.
        pending_factor: Pending jobs are polled this many times more slowly than running ones.
        min_interval: Seconds; the floor of any delay (``initial_interval`` if smaller).
        max_fallback_interval: Seconds; the cap of the blind interval (``max_interval`` if
            smaller, ``initial_interval`` if larger).
    """

    lead: float = attrs.field(default=0.6, validator=_within(0, 1, open_low=True))
    lag_tolerance: float = attrs.field(default=0.005, validator=_within(0, math.inf))
    rate_window: int = attrs.field(default=30, validator=_within(1, 100, integral=True))
    stale_steps: float = attrs.field(default=4.0, validator=_within(1, math.inf))
    extrapolation: float = attrs.field(default=2.0, validator=_within(0, math.inf, open_low=True))
    pending_factor: float = attrs.field(default=2.0, validator=_within(1, math.inf))
    min_interval: float = attrs.field(default=0.25, validator=_within(0, math.inf, open_low=True))
    max_fallback_interval: float = attrs.field(
        default=30.0, validator=_within(0, math.inf, open_low=True)
    )


DEFAULT_TUNING: Final = Tuning()


class PollSchedule:
    """The poll schedule of one wait: feed it observations, ask it for delays.

    Not thread-safe and not shared: one schedule per wait. Times are the caller's monotonic
    clock in seconds; only differences between them are used.

    Args:
        policy: The user's bounds of the schedule.
        rng: Source of the jitter; a shared ``random.Random()`` when None (seed one in tests).
        tuning: The estimator's constants (tests and benchmarks only).
    """

    __slots__ = (
        "_elapsed_before", "_fallback", "_first_t", "_gap", "_origin", "_policy", "_polls",
        "_rng", "_run", "_status", "_tuning",
    )

    def __init__(
        self, policy: PollPolicy, *, rng: random.Random | None = None,
        tuning: Tuning = DEFAULT_TUNING,
    ) -> None:
        self._policy = policy
        self._tuning = tuning
        # One generator for all schedules: a Random of its own costs 2.5 KiB per wait.
        self._rng = rng if rng is not None else _SHARED_RNG
        self._polls = 0
        self._fallback = policy.initial_interval
        self._status: int | None = None
        # Times are seconds since ``_origin`` (the caller's clock at the first observation or
        # at the resume), so saved ages survive a round trip exactly.
        self._origin: float | None = None
        self._first_t: float | None = None
        # Seconds waited before this process took over (from a saved state).
        self._elapsed_before = 0.0
        self._run = Run()
        self._gap = False

    @property
    def policy(self) -> PollPolicy:
        """The policy this schedule follows."""
        return self._policy

    @property
    def polls(self) -> int:
        """How many observations were fed so far (saved states included)."""
        return self._polls

    @property
    def min_delay(self) -> float:
        """Seconds; the shortest delay asked for: ``Tuning.min_interval``, or the policy's
        ``initial_interval`` if that is shorter (the user's number wins)."""
        return min(self._tuning.min_interval, self._policy.initial_interval)

    def observe(self, now: float, status: int | None, progress: int | None) -> None:
        """Record one successful poll.

        Args:
            now: Monotonic seconds when the answer arrived.
            status: ``jobInfo.status`` (0 pending, 1 processing, 2 completed, 3 canceled),
                None when absent. A status this version does not know is "processing,
                progress unknown": its progress is not believed, the fallback interval
                applies (JobStatus.is_terminal says what ends a job, not this schedule).
            progress: ``jobInfo.progress`` in percent, None when absent.
        """
        now = self._local(now)
        run = self._run
        if status is not None and not JobStatus.is_known(status):
            progress = None
        if progress is not None and not 0 <= progress <= 100:
            progress = min(max(progress, 0), 100)
        gap = self._gap
        if gap:
            # The clock of the saved state is gone: keep what it taught (the rate, the age of
            # the run), but no time difference across the gap is meaningful.
            self._gap = False
            run.prior_rate = run.rate(bounded=False) or run.prior_rate
            run.events = ()
        if self._first_t is None:
            self._first_t = now
        was_stale = run.stale(self._tuning.stale_steps)
        previous_t, previous_status = run.last_t, self._status
        self._polls += 1
        self._status = status
        run.last_t = now
        if status == JobStatus.PENDING:
            run.progress = progress
            run.restart()
            return
        previous = run.progress if run.start_t is not None else None
        if previous_status == JobStatus.PENDING and previous_t is not None and not gap:
            # A job that just started may be short: look again soon. It was at 0 when last
            # seen pending, so its run starts there, and its progress since is a first event.
            self._fallback = self._policy.initial_interval
            run.restart(previous_t, 0)
            previous = 0
        run.progress = progress
        if progress is None:
            run.restart()
        elif previous is None or previous_t is None or progress < previous:
            run.restart(now, progress)
            run.prior_rate = None
        elif gap:
            # Moved across the gap at some unknown time: not an event.
            pass
        elif progress > previous:
            if was_stale:
                # Moving again after a stall: the rate from before the stall says nothing
                # about the speed now, so a new run starts at the last stalled poll.
                run.restart(previous_t, previous)
            run.add(Change(now, progress, max(now - previous_t, 0.0)))
            run.trim(self._tuning.rate_window)
        elif not run.events and run.start_t is not None:
            # Not moved yet: the run starts at the last poll before it moves, so a job that
            # sat at 0 for long and then starts is not taken for a slow one.
            run.start_t, run.start_progress = now, progress

    def next_delay(self, now: float) -> float:
        """Seconds to wait before the next poll.

        Args:
            now: Monotonic seconds, at or after the last observation.

        Returns:
            A finite delay within ``[min_delay, policy.max_interval]``, jittered.
        """
        policy = self._policy
        now = self._local(now)
        base = self._base_delay(now, self._floor(now))
        if not math.isfinite(base):
            base = self._fallback_delay()
        if policy.jitter:
            base *= self._rng.uniform(1.0 - policy.jitter, 1.0 + policy.jitter)
        return min(max(base, self.min_delay), policy.max_interval)

    def predicted_finish(self, now: float) -> float | None:
        """The predicted time of the finish on the caller's clock, None while unknown.

        Args:
            now: Monotonic seconds, at or after the last observation.
        """
        local = self._local(now)
        run = self._run
        if run.progress is None or self._status == JobStatus.PENDING:
            return None
        if JobStatus.is_terminal(self._status):
            return None
        rate = run.rate(bounded=True)
        if rate is None:
            return None
        return now + (run.finish(local, rate) - local)

    def state(self) -> ScheduleState:
        """A snapshot free of absolute times, for ``from_state`` (in a ``WaitState``)."""
        return self._run.to_state(fallback=self._fallback, status=self._status)

    def to_state(self) -> dict[str, Any]:
        """``state()`` as JSON values (the waiter's Schedule protocol)."""
        return self.state().to_json()

    @classmethod
    def from_state(
        cls, policy: PollPolicy, state: ScheduleState, *, now: float, polls: int = 0,
        elapsed: float = 0.0, rng: random.Random | None = None, tuning: Tuning = DEFAULT_TUNING,
    ) -> PollSchedule:
        """Rebuild a schedule saved by ``state``, maybe in another process.

        The last observation of the saved schedule is placed at ``now``; the rate it measured
        is kept, but the next observation starts a new run, since the time between the save
        and the resume is unknown.

        Args:
            policy: The policy to follow from now on.
            state: What ``state`` returned (``WaitState.schedule``).
            now: The current monotonic time of this process, in seconds.
            polls: Observations made before the save (``WaitState.polls``).
            elapsed: Seconds waited before the save (``WaitState.elapsed``).
            rng, tuning: As for ``PollSchedule``.
        """
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        schedule = cls(policy, rng=rng, tuning=tuning)
        schedule._polls = polls
        schedule._elapsed_before = elapsed
        schedule._fallback = min(state.fallback, schedule._fallback_cap())
        schedule._status = state.status
        schedule._run = Run.from_state(state, resumed=polls > 0)
        schedule._origin = now
        if polls:
            schedule._first_t = 0.0
            schedule._gap = True
        return schedule

    # -- internals -------------------------------------------------------------------------

    def _local(self, now: float) -> float:
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def _fallback_cap(self) -> float:
        policy = self._policy
        cap = max(self._tuning.max_fallback_interval, policy.initial_interval)
        return min(cap, policy.max_interval)

    def _floor(self, now: float) -> float:
        elapsed = self._elapsed_before
        if self._first_t is not None:
            elapsed += max(now - self._first_t, 0.0)
        lag = self._tuning.lag_tolerance * elapsed
        return min(max(lag, self.min_delay), self._policy.max_interval)

    def _fallback_delay(self) -> float:
        delay = self._fallback
        self._fallback = min(delay * self._policy.multiplier, self._fallback_cap())
        return delay

    def _base_delay(self, now: float, floor: float) -> float:
        policy, tuning, run = self._policy, self._tuning, self._run
        status = self._status
        if JobStatus.is_terminal(status):
            # Terminal: nothing left to learn; the waiter should not be asking.
            return self.min_delay
        if status == JobStatus.PENDING:
            # Capped by max_interval in next_delay: a fixed policy polls pending jobs as often.
            return max(self._fallback_delay() * tuning.pending_factor, floor)
        if not policy.adaptive or run.progress is None or run.last_t is None:
            return max(self._fallback_delay(), floor)
        rate = run.rate(bounded=True)
        if rate is None or run.stale(tuning.stale_steps):
            return max(self._fallback_delay(), floor)
        if len(run.events) < 2 and run.prior_rate is None:
            # Moved only once in this run: the rate assumes the job moved steadily since the
            # last poll before, which a job that just started or resumed breaks; so do not
            # wait longer than the fallback interval.
            remaining = run.finish(now, rate) - now
            return max(min(tuning.lead * remaining, self._fallback_delay()), floor)
        return run.aim(now, rate, floor, lead=tuning.lead, extrapolation=tuning.extrapolation)
