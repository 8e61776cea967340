"""The poll schedule in virtual time: bounds, jitter, growth, prediction, saved state."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koodrive_async import _schedule
from koodrive_async._schedule import PollPolicy, PollSchedule

PENDING, PROCESSING, COMPLETED, CANCELED = 0, 1, 2, 3
STILL = PollPolicy(jitter=0.0)

Progress = Callable[[float], tuple[int, int | None]]


def linear(duration: float, start: float = 0.0, stuck_status: int = PROCESSING) -> Progress:
    """A job at 0 (``stuck_status``) until ``start``, then linear to 100 at ``duration``."""

    def state(t: float) -> tuple[int, int | None]:
        if t >= duration:
            return COMPLETED, 100
        if t < start:
            return stuck_status, 0
        return PROCESSING, min(int(100 * (t - start) / (duration - start)), 99)

    return state


def wait(
    job: Progress,
    policy: PollPolicy = STILL,
    *,
    seed: int = 0,
    t0: float = 0.0,
    max_polls: int = 10_000,
) -> tuple[list[tuple[float, int, int | None, float | None]], float]:
    """The waiter's loop in virtual time; returns the polls (t, status, progress, predicted
    finish) and the time the terminal status was seen."""
    schedule = PollSchedule(policy, rng=random.Random(seed))
    t = t0
    polls: list[tuple[float, int, int | None, float | None]] = []
    for _ in range(max_polls):
        status, progress = job(t - t0)
        schedule.observe(t, status, progress)
        if status >= COMPLETED:
            polls.append((t - t0, status, progress, None))
            return polls, t - t0
        finish = schedule.predicted_finish(t)
        polls.append((t - t0, status, progress, None if finish is None else finish - t0))
        t += schedule.next_delay(t)
    raise AssertionError(f"no end after {max_polls} polls")


# -- the policy -----------------------------------------------------------------------------


def test_policy_defaults_are_the_named_constants() -> None:
    policy = PollPolicy()
    assert policy.initial_interval == _schedule.DEFAULT_POLL_INITIAL_INTERVAL == 1.0
    assert policy.multiplier == _schedule.DEFAULT_POLL_MULTIPLIER == 1.5
    assert policy.max_fallback_interval == _schedule.DEFAULT_POLL_MAX_FALLBACK_INTERVAL == 30.0
    assert policy.max_interval == _schedule.DEFAULT_POLL_MAX_INTERVAL
    assert policy.min_interval == _schedule.DEFAULT_POLL_MIN_INTERVAL
    assert policy.jitter == _schedule.DEFAULT_POLL_JITTER
    assert policy.pending_factor == _schedule.DEFAULT_POLL_PENDING_FACTOR
    assert policy.lead == _schedule.DEFAULT_POLL_LEAD
    assert policy.lag_tolerance == _schedule.DEFAULT_POLL_LAG_TOLERANCE
    assert policy.rate_window == _schedule.DEFAULT_POLL_RATE_WINDOW
    assert policy.stale_steps == _schedule.DEFAULT_POLL_STALE_STEPS
    assert policy.extrapolation == _schedule.DEFAULT_POLL_EXTRAPOLATION
    assert policy.adaptive is True
    assert policy.min_interval <= policy.initial_interval <= policy.max_fallback_interval
    assert policy.max_fallback_interval <= policy.max_interval


def test_policy_is_frozen_and_keyword_only() -> None:
    policy = PollPolicy()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.jitter = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        PollPolicy(1.0)  # type: ignore[call-arg]
    assert attrs.evolve(policy, adaptive=False).adaptive is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial_interval", 0.0),
        ("initial_interval", -1.0),
        ("initial_interval", math.nan),
        ("multiplier", 0.9),
        ("max_fallback_interval", 0.0),
        ("max_interval", math.inf),
        ("min_interval", 0.0),
        ("jitter", 1.0),
        ("jitter", -0.1),
        ("pending_factor", 0.5),
        ("lead", 0.0),
        ("lead", 1.5),
        ("lag_tolerance", -0.01),
        ("rate_window", 0),
        ("rate_window", 101),
        ("rate_window", 2.5),
        ("stale_steps", 0.5),
        ("extrapolation", 0.0),
        ("adaptive", "yes"),
    ],
)
def test_policy_rejects_a_bad_value_naming_the_field(field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        PollPolicy(**{field: value})  # type: ignore[arg-type]


def test_policy_rejects_inconsistent_bounds() -> None:
    with pytest.raises(ValueError, match="min_interval"):
        PollPolicy(min_interval=10.0, max_interval=5.0, max_fallback_interval=5.0)
    with pytest.raises(ValueError, match="max_fallback_interval"):
        PollPolicy(max_fallback_interval=60.0, max_interval=30.0)


# -- the fallback interval ------------------------------------------------------------------


def test_fallback_starts_small_and_grows_to_its_cap() -> None:
    schedule = PollSchedule(STILL)
    delays = []
    t = 0.0
    for _ in range(15):
        schedule.observe(t, PROCESSING, None)
        delay = schedule.next_delay(t)
        delays.append(delay)
        t += delay
    assert delays[:4] == pytest.approx([1.0, 1.5, 2.25, 3.375])
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == STILL.max_fallback_interval


def test_progress_that_does_not_move_keeps_the_fallback() -> None:
    schedule = PollSchedule(STILL)
    delays = []
    t = 0.0
    for _ in range(12):
        schedule.observe(t, PROCESSING, 40)
        delays.append(schedule.next_delay(t))
        t += delays[-1]
    assert delays[:3] == pytest.approx([1.0, 1.5, 2.25])
    assert max(delays) == STILL.max_fallback_interval
    assert schedule.predicted_finish(t) is None


def test_pending_jobs_are_polled_more_slowly_than_processing_ones() -> None:
    def delays(status: int) -> list[float]:
        schedule = PollSchedule(STILL)
        out, t = [], 0.0
        for _ in range(12):
            schedule.observe(t, status, 0)
            out.append(schedule.next_delay(t))
            t += out[-1]
        return out

    pending, processing = delays(PENDING), delays(PROCESSING)
    assert pending[0] == pytest.approx(STILL.pending_factor * STILL.initial_interval)
    assert all(p >= q for p, q in zip(pending, processing, strict=True))
    assert sum(pending) > 1.5 * sum(processing)


def test_a_job_that_starts_after_pending_is_looked_at_again_soon() -> None:
    schedule = PollSchedule(STILL)
    t = 0.0
    for _ in range(10):
        schedule.observe(t, PENDING, 0)
        t += schedule.next_delay(t)
    assert t > 200.0
    schedule.observe(t, PROCESSING, 0)
    # initial_interval, or the lag tolerated after so long a wait if that is longer.
    assert schedule.next_delay(t) == pytest.approx(max(1.0, STILL.lag_tolerance * t))


def test_without_adaptive_only_the_fallback_is_used() -> None:
    policy = PollPolicy(jitter=0.0, adaptive=False)
    polls, _ = wait(linear(2000.0), policy)
    delays = [b[0] - a[0] for a, b in itertools.pairwise(polls)]
    assert max(delays) == pytest.approx(policy.max_fallback_interval)


# -- jitter and bounds ----------------------------------------------------------------------


def test_jitter_varies_the_delays_within_its_bounds() -> None:
    policy = PollPolicy()
    firsts = set()
    for seed in range(20):
        schedule = PollSchedule(policy, rng=random.Random(seed))
        schedule.observe(0.0, PROCESSING, None)
        firsts.add(schedule.next_delay(0.0))
    assert len(firsts) == 20
    low, high = 1.0 - policy.jitter, 1.0 + policy.jitter
    assert all(low * policy.initial_interval <= d <= high * policy.initial_interval for d in firsts)


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    assert wait(linear(500.0), PollPolicy(), seed=7) == wait(linear(500.0), PollPolicy(), seed=7)
    assert wait(linear(500.0), PollPolicy(), seed=7) != wait(linear(500.0), PollPolicy(), seed=8)


observations = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=1e5, allow_nan=False),
        st.one_of(st.none(), st.integers(min_value=-2, max_value=5)),
        st.one_of(st.none(), st.integers(min_value=-10, max_value=110)),
        st.floats(min_value=0.0, max_value=1e4, allow_nan=False),
    ),
    max_size=40,
)


@st.composite
def policies(draw: st.DrawFn) -> PollPolicy:
    low = draw(st.floats(min_value=0.001, max_value=10.0))
    high = draw(st.floats(min_value=low, max_value=1e4))
    fallback = draw(st.floats(min_value=0.001, max_value=high))
    return PollPolicy(
        min_interval=low,
        max_interval=high,
        max_fallback_interval=fallback,
        initial_interval=draw(st.floats(min_value=0.001, max_value=100.0)),
        multiplier=draw(st.floats(min_value=1.0, max_value=10.0)),
        jitter=draw(st.floats(min_value=0.0, max_value=0.99)),
        pending_factor=draw(st.floats(min_value=1.0, max_value=10.0)),
        lead=draw(st.floats(min_value=0.01, max_value=1.0)),
        lag_tolerance=draw(st.floats(min_value=0.0, max_value=1.0)),
        rate_window=draw(st.integers(min_value=1, max_value=100)),
        extrapolation=draw(st.floats(min_value=0.01, max_value=100.0)),
        adaptive=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(policy=st.one_of(st.just(PollPolicy()), policies()), steps=observations, seed=st.integers())
def test_every_delay_is_finite_and_within_the_bounds(
    policy: PollPolicy, steps: list[tuple[float, int | None, int | None, float]], seed: int
) -> None:
    schedule = PollSchedule(policy, rng=random.Random(seed))
    t = 1000.0
    for before, status, progress, after in steps:
        t += before
        schedule.observe(t, status, progress)
        t += after
        delay = schedule.next_delay(t)
        assert math.isfinite(delay)
        assert policy.min_interval <= delay <= policy.max_interval
        # A resume in the middle must keep the same guarantees.
        restored = PollSchedule.from_state(
            policy, json.loads(json.dumps(schedule.to_state())), now=t * 3, rng=random.Random(0)
        )
        assert policy.min_interval <= restored.next_delay(t * 3) <= policy.max_interval


# -- the progress-aware prediction ----------------------------------------------------------


def test_prediction_converges_on_a_steady_job() -> None:
    polls, seen = wait(linear(1000.0), PollPolicy(), seed=1)
    errors = [abs(finish - 1000.0) for _, _, _, finish in polls if finish is not None]
    assert len(errors) >= 5
    assert errors[-1] < 0.02 * 1000.0
    assert errors[-1] < errors[0] / 5
    # Polls gather near the end rather than being spread evenly ...
    late = [t for t, *_ in polls if t >= 900.0]
    assert len(late) >= 3
    # ... and the end is seen promptly, with far fewer polls than a fixed 30 s interval.
    assert 0 <= seen - 1000.0 < 0.01 * 1000.0
    assert len(polls) < 1000.0 / 30.0


@pytest.mark.parametrize("duration", [3.0, 20.0, 300.0, 7200.0])
def test_steady_jobs_of_any_length_are_seen_to_end_with_a_small_lag(duration: float) -> None:
    for seed in range(5):
        polls, seen = wait(linear(duration), PollPolicy(), seed=seed)
        assert 0 <= seen - duration < max(0.1 * duration, 0.3)
        assert len(polls) <= 40


def test_a_slow_job_showing_the_same_percent_for_several_polls_is_not_stalled() -> None:
    polls, seen = wait(linear(20_000.0), PollPolicy(jitter=0.0))
    delays = [b[0] - a[0] for a, b in itertools.pairwise(polls)]
    repeats = sum(1 for a, b in itertools.pairwise(polls) if a[2] == b[2])
    assert repeats >= 5
    # The fallback would never wait longer than its cap; the prediction does.
    assert max(delays) > 5 * PollPolicy().max_fallback_interval
    assert len(polls) < 20_000.0 / 100.0
    assert seen - 20_000.0 < 0.01 * 20_000.0


@pytest.mark.parametrize("stuck_status", [PENDING, PROCESSING])
def test_a_job_that_sits_at_zero_then_starts_is_followed(stuck_status: int) -> None:
    polls, seen = wait(linear(660.0, start=600.0, stuck_status=stuck_status), PollPolicy())
    assert seen - 660.0 < 0.1 * 60.0
    # The long wait at 0 does not make the 60 s run look slow.
    assert len([t for t, *_ in polls if t >= 600.0]) >= 3


def test_a_job_sitting_at_99_percent_is_not_hammered() -> None:
    def job(t: float) -> tuple[int, int | None]:
        if t >= 660.0:
            return COMPLETED, 100
        return PROCESSING, min(int(t / 60.0 * 99), 99)

    polls, seen = wait(job, PollPolicy())
    assert len(polls) < 60
    assert seen - 660.0 <= PollPolicy().max_fallback_interval * 1.1


def test_a_stall_then_a_fast_finish_is_not_overshot_by_the_old_rate() -> None:
    def job(t: float) -> tuple[int, int | None]:
        if t < 300.0:
            return PROCESSING, int(t / 10.0)
        if t < 2300.0:
            return PROCESSING, 30
        if t < 2400.0:
            return PROCESSING, min(30 + int((t - 2300.0) * 0.7), 99)
        return COMPLETED, 100

    _, seen = wait(job, PollPolicy())
    assert seen - 2400.0 < 30.0


def test_a_terminal_status_asks_for_nothing_long() -> None:
    schedule = PollSchedule(STILL)
    schedule.observe(0.0, PROCESSING, 50)
    schedule.observe(5.0, CANCELED, 50)
    assert schedule.next_delay(5.0) == STILL.min_interval
    assert schedule.predicted_finish(5.0) is None


def test_observe_rejects_a_time_that_is_not_finite() -> None:
    schedule = PollSchedule(STILL)
    with pytest.raises(ValueError, match="now"):
        schedule.observe(math.nan, PROCESSING, 0)
    with pytest.raises(ValueError, match="now"):
        schedule.next_delay(math.inf)


# -- saved state ----------------------------------------------------------------------------


def _schedule_midway(t0: float = 1e6) -> tuple[PollSchedule, float]:
    job = linear(1000.0)
    schedule = PollSchedule(PollPolicy(), rng=random.Random(3))
    t = t0
    while t - t0 < 400.0:
        status, progress = job(t - t0)
        schedule.observe(t, status, progress)
        t += schedule.next_delay(t)
    return schedule, t


def _json_values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _json_values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _json_values(item)]
    return [value]


def test_state_round_trips_through_json() -> None:
    schedule, _t = _schedule_midway()
    state = schedule.to_state()
    text = json.dumps(state)
    assert json.loads(text) == state
    restored = PollSchedule.from_state(PollPolicy(), json.loads(text), now=42.0)
    assert restored.to_state() == state
    assert restored.polls == schedule.polls


def test_state_holds_no_absolute_time() -> None:
    schedule, _ = _schedule_midway(t0=1e6)
    numbers = [v for v in _json_values(schedule.to_state()) if isinstance(v, float | int)]
    assert numbers
    assert all(abs(v) < 1e4 for v in numbers)


def test_a_resumed_schedule_does_not_depend_on_the_new_clock() -> None:
    schedule, _ = _schedule_midway()
    state = json.loads(json.dumps(schedule.to_state()))
    here = PollSchedule.from_state(PollPolicy(), state, now=0.0, rng=random.Random(9))
    elsewhere = PollSchedule.from_state(PollPolicy(), state, now=5e7, rng=random.Random(9))
    assert here.next_delay(0.0) == elsewhere.next_delay(5e7)
    here_finish, elsewhere_finish = here.predicted_finish(0.0), elsewhere.predicted_finish(5e7)
    assert here_finish is not None
    assert elsewhere_finish is not None
    assert here_finish == pytest.approx(elsewhere_finish - 5e7)


def test_a_resumed_schedule_keeps_the_rate_across_the_unknown_gap() -> None:
    schedule, _ = _schedule_midway()
    state = json.loads(json.dumps(schedule.to_state()))
    # Another process, another clock; the job moved on meanwhile by an unknown amount.
    restored = PollSchedule.from_state(PollPolicy(jitter=0.0), state, now=10.0)
    restored.observe(10.5, PROCESSING, 60)
    finish = restored.predicted_finish(10.5)
    assert finish is not None
    # 40 % left at about 0.1 %/s: not "any moment" from a jump over half a second.
    assert 300.0 < finish - 10.5 < 500.0
    assert restored.next_delay(10.5) > 10.0


def test_a_fresh_state_round_trips() -> None:
    state = PollSchedule(PollPolicy()).to_state()
    assert PollSchedule.from_state(PollPolicy(), state, now=1.0).to_state() == state


def _valid_state() -> dict[str, Any]:
    schedule, _ = _schedule_midway()
    state: dict[str, Any] = json.loads(json.dumps(schedule.to_state()))
    assert len(state["events"]) >= 2
    return state


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        state[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        del state[key]

    return change


def _event(index: int, value: object) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        state["events"][index] = value

    return change


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_set("version", 2), "version"),
        (_drop("version"), "version"),
        (_set("polls", -1), "polls"),
        (_set("polls", True), "polls"),
        (_set("polls", 1.5), "polls"),
        (_drop("elapsed"), "elapsed"),
        (_set("elapsed", -1.0), "elapsed"),
        (_set("elapsed", "1"), "elapsed"),
        (_set("fallback", 0.0), "fallback"),
        (_set("status", "1"), "status"),
        (_drop("status"), "status"),
        (_set("progress", 101), "progress"),
        (_set("progress", -1), "progress"),
        (_set("run_age", None), "run_age"),
        (_set("run_progress", None), "run_age"),
        (_set("prior_rate", -0.5), "prior_rate"),
        (_set("events", {}), "events"),
        (_set("events", [[0.0, 1, 0.0]] * 101), "events"),
        (_event(0, [1.0, 2]), "events"),
        (_event(0, [1.0, 2.5, 0.0]), "events"),
        (_event(0, [-1.0, 2, 0.0]), "events"),
        (_event(0, [1.0, 2, "x"]), "events"),
        (_event(0, [1.0, 200, 0.0]), "events"),
        (_event(-1, [1e9, 99, 0.0]), "events"),
    ],
)
def test_a_malformed_state_is_rejected_naming_what_is_wrong(
    change: Callable[[dict[str, Any]], None], named: str
) -> None:
    state = _valid_state()
    change(state)
    with pytest.raises(ValueError, match=named):
        PollSchedule.from_state(PollPolicy(), state, now=0.0)


def test_a_state_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(ValueError, match="mapping"):
        PollSchedule.from_state(PollPolicy(), [], now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now"):
        PollSchedule.from_state(PollPolicy(), _valid_state(), now=math.nan)
