"""When to poll a job next: a growing interval, made progress-aware.

Pure logic (no I/O, no asyncio): the waiter feeds each successful poll to
``PollSchedule.observe`` and asks ``PollSchedule.next_delay`` how long to sleep.

The blind part is the usual one: a first look at once, then an interval that starts at
``initial_interval`` and grows by ``multiplier`` up to ``max_fallback_interval``, with jitter.
It serves while the job is pending or its progress is unknown or not moving.

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
(``lag_tolerance`` of the time waited so far, but never less than ``min_interval``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from typing import Any, Final

import attrs

from .models import JobStatus

__all__ = [
    "DEFAULT_POLL_EXTRAPOLATION",
    "DEFAULT_POLL_INITIAL_INTERVAL",
    "DEFAULT_POLL_JITTER",
    "DEFAULT_POLL_LAG_TOLERANCE",
    "DEFAULT_POLL_LEAD",
    "DEFAULT_POLL_MAX_FALLBACK_INTERVAL",
    "DEFAULT_POLL_MAX_INTERVAL",
    "DEFAULT_POLL_MIN_INTERVAL",
    "DEFAULT_POLL_MULTIPLIER",
    "DEFAULT_POLL_PENDING_FACTOR",
    "DEFAULT_POLL_RATE_WINDOW",
    "DEFAULT_POLL_STALE_STEPS",
    "PollPolicy",
    "PollSchedule",
]

#: Seconds before the second poll (the first one is immediate).
DEFAULT_POLL_INITIAL_INTERVAL: Final = 1.0
#: Growth of the blind (fallback) interval after each poll that taught nothing.
DEFAULT_POLL_MULTIPLIER: Final = 1.5
#: Seconds; the cap of the blind interval, used while progress is unknown or not moving.
DEFAULT_POLL_MAX_FALLBACK_INTERVAL: Final = 30.0
#: Seconds; the cap of any delay, reached only when the finish is predicted far away.
DEFAULT_POLL_MAX_INTERVAL: Final = 300.0
#: Seconds; the floor of any delay, predicted ones included.
DEFAULT_POLL_MIN_INTERVAL: Final = 0.25
#: Relative jitter: each delay is multiplied by a uniform draw in [1 - jitter, 1 + jitter].
DEFAULT_POLL_JITTER: Final = 0.1
#: Pending jobs are polled this many times more slowly than running ones.
DEFAULT_POLL_PENDING_FACTOR: Final = 2.0
#: Fraction of the predicted remaining time to wait before the next poll.
DEFAULT_POLL_LEAD: Final = 0.6
#: Detection lag accepted near the finish, as a fraction of the time waited so far.
DEFAULT_POLL_LAG_TOLERANCE: Final = 0.005
#: Percentage points of recent progress over which the rate is measured.
DEFAULT_POLL_RATE_WINDOW: Final = 30
#: Missing this many expected percent steps in a row means "not moving": back to the fallback.
DEFAULT_POLL_STALE_STEPS: Final = 4.0

#: A predicted delay is at most this multiple of the time the progress has been watched.
DEFAULT_POLL_EXTRAPOLATION: Final = 2.0

_STATE_VERSION: Final = 1
_SHARED_RNG: Final = random.Random()
# Bounds the memory of a schedule (and of its saved state) whatever the job does.
_MAX_EVENTS: Final = 100


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 1):
        raise ValueError(f"{attribute.name} must be a finite number >= 1, got {value!r}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and 0 < value <= 1):
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value!r}")


def _jitter(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and 0 <= value < 1):
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


def _percent_points(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"{attribute.name} must be an int in [1, 100], got {value!r}")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How often a job is polled while waiting for it.

    The first poll is immediate. While the job is pending, or its progress is unknown or not
    moving, the delay starts at ``initial_interval`` and grows by ``multiplier`` up to
    ``max_fallback_interval``. When ``adaptive`` and progress moves, the finish is predicted
    from the measured rate and the next poll is aimed at ``lead`` of the remaining time, up to
    ``max_interval``. Every delay is jittered and kept within ``[min_interval, max_interval]``.

    Attributes:
        initial_interval: Seconds between the first and the second poll.
        multiplier: Growth (>= 1) of the fallback interval after each poll.
        max_fallback_interval: Seconds; the cap of the fallback interval.
        max_interval: Seconds; the cap of any delay, predicted ones included.
        min_interval: Seconds; the floor of any delay, predicted ones included.
        jitter: Relative jitter in [0, 1): 0.1 multiplies each delay by a draw in [0.9, 1.1],
            so waiters that started together do not poll together.
        pending_factor: Pending jobs (status 0) are polled this many times (>= 1) more slowly.
        adaptive: Predict the finish from the progress; False keeps the fallback interval.
        lead: Fraction (0, 1] of the predicted remaining time waited before the next poll;
            smaller costs polls, larger risks polling after the end when the job speeds up.
        lag_tolerance: Fraction of the time waited so far that is an acceptable detection
            lag; near the predicted finish, polls are never closer together than this.
        rate_window: Percentage points of recent progress the rate is measured over.
        extrapolation: A predicted delay is at most this multiple of the time the current
            run of progress has been watched: a rate measured briefly is trusted only briefly.
        stale_steps: Progress that misses this many expected percent steps is treated as not
            moving, and the fallback interval takes over.
    """

    initial_interval: float = attrs.field(
        default=DEFAULT_POLL_INITIAL_INTERVAL, validator=_positive
    )
    multiplier: float = attrs.field(default=DEFAULT_POLL_MULTIPLIER, validator=_at_least_one)
    max_fallback_interval: float = attrs.field(
        default=DEFAULT_POLL_MAX_FALLBACK_INTERVAL, validator=_positive
    )
    max_interval: float = attrs.field(default=DEFAULT_POLL_MAX_INTERVAL, validator=_positive)
    min_interval: float = attrs.field(default=DEFAULT_POLL_MIN_INTERVAL, validator=_positive)
    jitter: float = attrs.field(default=DEFAULT_POLL_JITTER, validator=_jitter)
    pending_factor: float = attrs.field(
        default=DEFAULT_POLL_PENDING_FACTOR, validator=_at_least_one
    )
    adaptive: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    lead: float = attrs.field(default=DEFAULT_POLL_LEAD, validator=_fraction)
    lag_tolerance: float = attrs.field(default=DEFAULT_POLL_LAG_TOLERANCE, validator=_non_negative)
    rate_window: int = attrs.field(default=DEFAULT_POLL_RATE_WINDOW, validator=_percent_points)
    stale_steps: float = attrs.field(default=DEFAULT_POLL_STALE_STEPS, validator=_at_least_one)
    extrapolation: float = attrs.field(default=DEFAULT_POLL_EXTRAPOLATION, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.min_interval > self.max_interval:
            raise ValueError(
                f"min_interval ({self.min_interval!r}) must be <= "
                f"max_interval ({self.max_interval!r})"
            )
        if self.max_fallback_interval > self.max_interval:
            raise ValueError(
                f"max_fallback_interval ({self.max_fallback_interval!r}) must be <= "
                f"max_interval ({self.max_interval!r})"
            )


@attrs.define
class _Event:
    """The first poll that saw a new percent: ``progress`` reached within ``gap`` before ``t``."""

    t: float
    progress: int
    gap: float


class PollSchedule:
    """The poll schedule of one wait: feed it observations, ask it for delays.

    Not thread-safe and not shared: one schedule per wait. Times are the caller's monotonic
    clock in seconds; only differences between them are used.

    Args:
        policy: The bounds and tuning of the schedule.
        rng: Source of the jitter; a private ``random.Random()`` when None (seed one in tests).
    """

    __slots__ = (
        "_elapsed_before", "_events", "_fallback", "_first_t", "_gap", "_last_t", "_origin",
        "_policy", "_polls", "_prior_rate", "_progress", "_rng", "_run_start", "_status",
    )

    def __init__(self, policy: PollPolicy, *, rng: random.Random | None = None) -> None:
        self._policy = policy
        # One generator for all schedules: a Random of its own costs 2.5 KiB per wait.
        self._rng = rng if rng is not None else _SHARED_RNG
        self._polls = 0
        self._fallback = policy.initial_interval
        self._status: int | None = None
        self._progress: int | None = None
        # Times below are seconds since ``_origin`` (the caller's clock at the first
        # observation or at the resume), so saved ages survive a round trip exactly.
        self._origin: float | None = None
        self._first_t: float | None = None
        self._last_t: float | None = None
        # Seconds waited before this process took over (from a saved state).
        self._elapsed_before = 0.0
        # The current run: a stretch of polls whose progress is known and never goes back;
        # it starts at the last of its polls before the progress moved.
        self._run_start: tuple[float, int] | None = None
        self._events: list[_Event] = []
        # A rate (percent per second) carried across a resume, whose clock gap is unknown.
        self._prior_rate: float | None = None
        self._gap = False

    @property
    def policy(self) -> PollPolicy:
        """The policy this schedule follows."""
        return self._policy

    @property
    def polls(self) -> int:
        """How many observations were fed so far (saved states included)."""
        return self._polls

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
        if status is not None and not JobStatus.is_known(status):
            progress = None
        if progress is not None and not 0 <= progress <= 100:
            progress = min(max(progress, 0), 100)
        gap = self._gap
        if gap:
            # The clock of the saved state is gone: keep what it taught (the rate, the age of
            # the run), but no time difference across the gap is meaningful.
            self._gap = False
            self._prior_rate = self._rate(bounded=False) or self._prior_rate
            self._events.clear()
        if self._first_t is None:
            self._first_t = now
        was_stale = self._stale()
        previous_t = self._last_t
        previous_status = self._status
        self._polls += 1
        self._status = status
        self._last_t = now
        if status == JobStatus.PENDING:
            self._progress = progress
            self._run_start = None
            self._events.clear()
            return
        previous = self._progress if self._run_start is not None else None
        if previous_status == JobStatus.PENDING and previous_t is not None and not gap:
            # A job that just started may be short: look again soon. It was at 0 when last
            # seen pending, so its run starts there, and its progress since is a first event.
            self._fallback = self._policy.initial_interval
            self._run_start = (previous_t, 0)
            self._events.clear()
            previous = 0
        self._progress = progress
        if progress is None:
            self._run_start = None
            self._events.clear()
        elif previous is None or previous_t is None or progress < previous:
            self._run_start = (now, progress)
            self._events.clear()
            self._prior_rate = None
        elif gap:
            # Moved across the gap at some unknown time: not an event.
            pass
        elif progress > previous:
            if was_stale:
                # Moving again after a stall: the rate from before the stall says nothing
                # about the speed now, so a new run starts at the last stalled poll.
                self._run_start = (previous_t, previous)
                self._events.clear()
            self._events.append(_Event(now, progress, max(now - previous_t, 0.0)))
            self._trim_events()
        elif not self._events and self._run_start is not None:
            # Not moved yet: the run starts at the last poll before it moves, so a job that
            # sat at 0 for long and then starts is not taken for a slow one.
            self._run_start = (now, progress)

    def next_delay(self, now: float) -> float:
        """Seconds to wait before the next poll.

        Args:
            now: Monotonic seconds, at or after the last observation.

        Returns:
            A finite delay within ``[min_interval, max_interval]``, jittered.
        """
        policy = self._policy
        now = self._local(now)
        floor = self._floor(now)
        base = self._base_delay(now, floor)
        if not math.isfinite(base):
            base = self._fallback_delay()
        if policy.jitter:
            base *= self._rng.uniform(1.0 - policy.jitter, 1.0 + policy.jitter)
        return min(max(base, policy.min_interval), policy.max_interval)

    def predicted_finish(self, now: float) -> float | None:
        """The predicted time of the finish on the caller's clock, None while unknown.

        Args:
            now: Monotonic seconds, at or after the last observation.
        """
        local = self._local(now)
        status = self._status
        if self._progress is None or status == JobStatus.PENDING:
            return None
        if JobStatus.is_terminal(status):
            return None
        rate = self._rate(bounded=True)
        if rate is None:
            return None
        return now + (self._finish(local, rate) - local)

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot, free of absolute times, for ``from_state``."""
        last_t = self._last_t
        events: list[list[float]] = []
        elapsed = self._elapsed_before
        if last_t is not None and self._first_t is not None:
            elapsed += last_t - self._first_t
            events = [[last_t - e.t, e.progress, e.gap] for e in self._events]
        run_age: float | None = None
        run_progress: int | None = None
        if self._run_start is not None and last_t is not None:
            run_age = last_t - self._run_start[0]
            run_progress = self._run_start[1]
        return {
            "version": _STATE_VERSION,
            "polls": self._polls,
            "elapsed": elapsed,
            "fallback": self._fallback,
            "status": self._status,
            "progress": self._progress,
            "run_age": run_age,
            "run_progress": run_progress,
            "events": events,
            "prior_rate": self._prior_rate,
        }

    @classmethod
    def from_state(
        cls,
        policy: PollPolicy,
        state: Mapping[str, Any],
        *,
        now: float,
        rng: random.Random | None = None,
    ) -> PollSchedule:
        """Rebuild a schedule saved by ``to_state``, maybe in another process.

        The last observation of the saved schedule is placed at ``now``; the rate it measured
        is kept, but the next observation starts a new run, since the time between the save
        and the resume is unknown.

        Args:
            policy: The policy to follow from now on.
            state: What ``to_state`` returned (after a JSON round trip, if wanted).
            now: The current monotonic time of this process, in seconds.
            rng: As for ``PollSchedule``.

        Raises:
            ValueError: The state is malformed; the message names the faulty key.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"poll state must be a mapping, got {type(state).__name__}")
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        version = state.get("version")
        if version != _STATE_VERSION:
            raise ValueError(f"poll state 'version' must be {_STATE_VERSION}, got {version!r}")
        polls = _get_int(state, "polls", lower=0, upper=None)
        elapsed = _get_float(state, "elapsed")
        fallback = _get_float(state, "fallback", strict=True)
        status = _get_optional_int(state, "status", lower=None, upper=None)
        progress = _get_optional_int(state, "progress", lower=0, upper=100)
        run_age = _get_optional_float(state, "run_age")
        run_progress = _get_optional_int(state, "run_progress", lower=0, upper=100)
        prior_rate = _get_optional_float(state, "prior_rate", strict=True)
        if (run_age is None) != (run_progress is None):
            raise ValueError("poll state 'run_age' and 'run_progress' must both be set or null")
        raw_events = state.get("events")
        if not isinstance(raw_events, list) or len(raw_events) > _MAX_EVENTS:
            raise ValueError(f"poll state 'events' must be a list of at most {_MAX_EVENTS}")
        events: list[_Event] = []
        for item in raw_events:
            events.append(_parse_event(item))
        for earlier, later in itertools.pairwise(events):
            if not (earlier.t <= later.t and earlier.progress < later.progress):
                raise ValueError("poll state 'events' must rise in time and in progress")

        schedule = cls(policy, rng=rng)
        schedule._polls = polls
        schedule._elapsed_before = elapsed
        schedule._fallback = min(fallback, policy.max_fallback_interval)
        schedule._status = status
        schedule._progress = progress
        schedule._events = events
        schedule._prior_rate = prior_rate
        if run_age is not None and run_progress is not None:
            schedule._run_start = (-run_age, run_progress)
        schedule._origin = now
        if polls:
            schedule._first_t = 0.0
            schedule._last_t = 0.0
            schedule._gap = True
        return schedule

    # -- internals -------------------------------------------------------------------------

    def _local(self, now: float) -> float:
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def _floor(self, now: float) -> float:
        policy = self._policy
        elapsed = self._elapsed_before
        if self._first_t is not None:
            elapsed += max(now - self._first_t, 0.0)
        return min(max(policy.lag_tolerance * elapsed, policy.min_interval), policy.max_interval)

    def _fallback_delay(self) -> float:
        delay = self._fallback
        self._fallback = min(delay * self._policy.multiplier, self._policy.max_fallback_interval)
        return delay

    def _base_delay(self, now: float, floor: float) -> float:
        policy = self._policy
        status = self._status
        if JobStatus.is_terminal(status):
            # Terminal: nothing left to learn; the waiter should not be asking.
            return policy.min_interval
        if status == JobStatus.PENDING:
            return max(self._fallback_delay() * policy.pending_factor, floor)
        if not policy.adaptive or self._progress is None or self._last_t is None:
            return max(self._fallback_delay(), floor)
        rate = self._rate(bounded=True)
        if rate is None or self._stale():
            return max(self._fallback_delay(), floor)
        remaining = self._finish(now, rate) - now
        if len(self._events) < 2 and self._prior_rate is None:
            # Moved only once in this run: the rate assumes the job moved steadily since the
            # last poll before, which a job that just started or resumed breaks; so do not
            # wait longer than the fallback interval.
            return max(min(policy.lead * remaining, self._fallback_delay()), floor)
        if remaining <= 0:
            # Past the predicted end (sitting at 99 %): as long again as it is overdue.
            delay = policy.lead * -remaining
        elif policy.lead * remaining >= floor:
            delay = policy.lead * remaining
        else:
            # Steps finer than the floor would cost polls for lag nobody asked to save: aim
            # at the predicted end itself.
            delay = remaining
        # A rate measured over a short run is a poor guide far ahead (jobs speed up and slow
        # down): look again before extrapolating further than the run has been watched.
        if self._run_start is not None:
            delay = min(delay, policy.extrapolation * max(now - self._run_start[0], 0.0))
        return max(delay, floor)

    def _rate(self, *, bounded: bool) -> float | None:
        """Percent per second of the current run, None when unknown or not moving.

        ``bounded`` caps it by what the last poll proves: the next percent was not reached.
        """
        events = self._events
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
        elif self._prior_rate is not None:
            return self._prior_rate
        elif self._run_start is not None and self._progress is not None:
            anchor_t, anchor_p = self._run_start
            if self._progress <= anchor_p or self._last_t is None:
                return None
            rate = (self._progress - anchor_p) / max(self._last_t - anchor_t, 1e-9)
        else:
            return None
        last_t = self._last_t
        if bounded and self._progress is not None and last_t is not None and last_t > anchor_t:
            ceiling = (self._progress + 1 - anchor_p) / (last_t - anchor_t)
            rate = min(rate, ceiling)
        return rate if rate > 0 and math.isfinite(rate) else None

    def _finish(self, now: float, rate: float) -> float:
        progress = self._progress if self._progress is not None else 0
        if self._events:
            last = self._events[-1]
            reached = last.t - 0.5 * min(last.gap, 1.0 / rate)
            finish = reached + (100 - progress) / rate
        else:
            seen = self._last_t if self._last_t is not None else now
            finish = seen + (100 - progress - 0.5) / rate
        if progress < 99 and self._last_t is not None:
            # The next percent was not reached by the last poll.
            finish = max(finish, self._last_t + (99 - progress) / rate)
        return finish

    def _stale(self) -> bool:
        rate = self._rate(bounded=False)
        if not self._events or self._last_t is None or rate is None:
            return False
        return self._last_t - self._events[-1].t > self._policy.stale_steps / rate

    def _trim_events(self) -> None:
        events = self._events
        if self._progress is None:
            return
        horizon = self._progress - self._policy.rate_window
        keep_from = 0
        # Keep at least two events, and the newest one at or before the window's start.
        for index in range(len(events) - 2, -1, -1):
            if events[index].progress <= horizon:
                keep_from = index
                break
        keep_from = max(keep_from, len(events) - _MAX_EVENTS)
        if keep_from:
            del events[:keep_from]


def _parse_event(item: object) -> _Event:
    if (
        not isinstance(item, list)
        or len(item) != 3
        or not all(_is_number(x) for x in item)
        or isinstance(item[1], float)
    ):
        raise ValueError("poll state 'events' items must be [age, progress, gap] numbers")
    age, progress, gap = float(item[0]), int(item[1]), float(item[2])
    if not (math.isfinite(age) and age >= 0 and math.isfinite(gap) and gap >= 0):
        raise ValueError("poll state 'events' ages and gaps must be finite and >= 0")
    if not 0 <= progress <= 100:
        raise ValueError("poll state 'events' progress must be within [0, 100]")
    return _Event(-age, progress, gap)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _get_float(state: Mapping[str, Any], key: str, *, strict: bool = False) -> float:
    """A finite number >= 0 (> 0 if ``strict``) at ``key``."""
    value: object = state.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"poll state {key!r} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (strict and value == 0):
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"poll state {key!r} must be finite and {bound}, got {value!r}")
    return float(value)


def _get_optional_float(
    state: Mapping[str, Any], key: str, *, strict: bool = False
) -> float | None:
    if key not in state:
        raise ValueError(f"poll state {key!r} is missing")
    return None if state[key] is None else _get_float(state, key, strict=strict)


def _get_int(state: Mapping[str, Any], key: str, *, lower: int | None, upper: int | None) -> int:
    value: object = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"poll state {key!r} must be an int, got {value!r}")
    if (lower is not None and value < lower) or (upper is not None and value > upper):
        raise ValueError(f"poll state {key!r} is out of range [{lower}, {upper}]: {value!r}")
    return value


def _get_optional_int(
    state: Mapping[str, Any], key: str, *, lower: int | None, upper: int | None
) -> int | None:
    if key not in state:
        raise ValueError(f"poll state {key!r} is missing")
    return None if state[key] is None else _get_int(state, key, lower=lower, upper=upper)
