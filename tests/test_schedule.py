"""The poll schedule in virtual time: the policy, bounds, jitter, growth, prediction, saved
state; and PollPolicy over the emulator, in virtual time."""

from __future__ import annotations

import itertools
import json
import math
import pickle
import random
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import koodrive_async as kd
from koodrive_async import _poll, _schedule, config
from koodrive_async._schedule import DEFAULT_TUNING, PollSchedule, Tuning
from koodrive_async._state import STATE_VERSION, ScheduleState, WaitState
from koodrive_async.testing import KooDriveEmulator

from .conftest import VirtualTime, make_client

PollPolicy = kd.PollPolicy
PENDING, PROCESSING, COMPLETED, CANCELED = 0, 1, 2, 3
STILL = PollPolicy(jitter=0.0)
TUNING = DEFAULT_TUNING

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
    assert policy.initial_interval == config.DEFAULT_POLL_INITIAL_INTERVAL == 1.0
    assert policy.multiplier == config.DEFAULT_POLL_MULTIPLIER == 1.5
    assert policy.max_interval == config.DEFAULT_POLL_MAX_INTERVAL == 300.0
    assert policy.jitter == config.DEFAULT_POLL_JITTER == 0.1
    assert policy.adaptive is True
    assert [f.name for f in attrs.fields(PollPolicy)] == [
        "initial_interval", "max_interval", "multiplier", "jitter", "adaptive",
    ]
    assert kd.PollPolicy is config.PollPolicy is _schedule.PollPolicy


def test_the_estimators_constants_are_private_tuning() -> None:
    tuning = Tuning()
    assert tuning == DEFAULT_TUNING
    assert tuning.max_fallback_interval == 30.0
    assert tuning.min_interval == 0.25
    assert tuning.pending_factor == 2.0
    assert tuning.lead == 0.6
    assert tuning.lag_tolerance == 0.005
    assert tuning.rate_window == 30
    assert tuning.stale_steps == 4.0
    assert tuning.extrapolation == 2.0
    policy = PollPolicy()
    assert tuning.min_interval <= policy.initial_interval <= tuning.max_fallback_interval
    assert tuning.max_fallback_interval <= policy.max_interval


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
        ("max_interval", math.inf),
        ("jitter", 1.0),
        ("jitter", -0.1),
        ("adaptive", "yes"),
    ],
)
def test_policy_rejects_a_bad_value_naming_the_field(field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        PollPolicy(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_fallback_interval", 0.0),
        ("min_interval", 0.0),
        ("pending_factor", 0.5),
        ("lead", 0.0),
        ("lead", 1.5),
        ("lag_tolerance", -0.01),
        ("rate_window", 0),
        ("rate_window", 101),
        ("rate_window", 2.5),
        ("stale_steps", 0.5),
        ("extrapolation", 0.0),
        ("lead", True),
    ],
)
def test_tuning_rejects_a_bad_value_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        Tuning(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"max_interval": None}, TypeError, "max_interval must be a number, not NoneType"),
        ({"initial_interval": "1"}, TypeError, "initial_interval must be a number, not str"),
        ({"initial_interval": True}, TypeError, "initial_interval must be a number, not bool"),
        ({"multiplier": False}, TypeError, "multiplier must be a number, not bool"),
        ({"jitter": None}, TypeError, "jitter must be a number, not NoneType"),
        ({"max_interval": math.nan}, ValueError, "max_interval must be a number, got nan"),
        ({"multiplier": math.inf}, ValueError, "multiplier"),
        ({"adaptive": 1}, TypeError, "adaptive must be a bool, not int"),
    ],
)
def test_policy_names_the_field_and_the_type(
    options: dict[str, object], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        PollPolicy(**options)  # type: ignore[arg-type]


def test_policy_rejects_crossed_bounds_given_both() -> None:
    with pytest.raises(ValueError, match=r"initial_interval \(10.0\) must be <= max_interval"):
        PollPolicy(initial_interval=10.0, max_interval=5.0)
    # Given, even equal to its default: a bound the user wrote is never moved.
    with pytest.raises(ValueError, match=r"initial_interval \(400\) must be <= max_interval"):
        PollPolicy(initial_interval=400, max_interval=300.0)
    with pytest.raises(ValueError, match=r"initial_interval \(1.0\) must be <= max_interval"):
        PollPolicy(initial_interval=1.0, max_interval=0.5)


def test_any_one_field_may_be_set_alone() -> None:
    assert PollPolicy(max_interval=5).max_interval == 5
    assert PollPolicy(initial_interval=0.05, max_interval=0.2).initial_interval == 0.05
    # The other bound follows the one that was set.
    alone = PollPolicy(max_interval=0.5)
    assert (alone.initial_interval, alone.max_interval) == (0.5, 0.5)
    alone = PollPolicy(initial_interval=600)
    assert (alone.initial_interval, alone.max_interval) == (600, 600)
    assert PollPolicy(multiplier=1).multiplier == 1
    assert PollPolicy(jitter=0).jitter == 0
    assert PollPolicy(adaptive=False).adaptive is False
    # A default is a float (equal, hashed, pickled like one) that attrs.evolve passes on as
    # still left out: the other bound can still move it.
    default = PollPolicy()
    assert (default.initial_interval, default.max_interval) == (1.0, 300.0)
    assert pickle.loads(pickle.dumps(default)) == default and hash(default) == hash(PollPolicy())
    assert repr(default).startswith("PollPolicy(initial_interval=1.0, max_interval=300.0,")
    moved = attrs.evolve(default, initial_interval=400)
    assert (moved.initial_interval, moved.max_interval) == (400, 400)
    moved = attrs.evolve(default, max_interval=0.5)
    assert (moved.initial_interval, moved.max_interval) == (0.5, 0.5)
    with pytest.raises(ValueError, match="must be <= max_interval"):
        attrs.evolve(moved, initial_interval=2)  # 0.5 was given: it is not moved


def test_the_tuning_never_overrules_the_user() -> None:
    # A floor larger than the user's interval, a blind cap larger than the user's maximum.
    tuning = Tuning(min_interval=10.0, max_fallback_interval=60.0)
    policy = PollPolicy(initial_interval=0.5, max_interval=5.0, jitter=0.0)
    for status in (PENDING, PROCESSING):
        schedule = PollSchedule(policy, tuning=tuning)
        schedule.observe(0.0, status, 0)
        assert schedule.next_delay(0.0) == 0.5 * (tuning.pending_factor if status == PENDING else 1)
        t = 0.0
        for _ in range(30):
            schedule.observe(t, status, 0)
            delay = schedule.next_delay(t)
            assert 0.5 <= delay <= 5.0
            t += delay
        assert delay == 5.0


def test_a_small_initial_interval_is_not_raised_by_the_hidden_floor() -> None:
    schedule = PollSchedule(PollPolicy(initial_interval=0.05, jitter=0.0))
    schedule.observe(0.0, PROCESSING, 0)
    assert schedule.next_delay(0.0) == 0.05
    assert schedule.min_delay == 0.05
    assert PollSchedule(PollPolicy()).min_delay == TUNING.min_interval


def test_max_interval_caps_a_pending_jobs_delays() -> None:
    schedule = PollSchedule(PollPolicy(max_interval=5))
    t = 0.0
    for _ in range(40):
        schedule.observe(t, PENDING, 0)
        delay = schedule.next_delay(t)
        assert delay <= 5.0
        t += delay
    assert delay >= 4.5


@pytest.mark.parametrize("status", [PENDING, PROCESSING, None, 7])
def test_fixed_polls_at_exactly_its_interval_in_every_state(status: int | None) -> None:
    policy = PollPolicy.fixed(0.1)
    assert policy == PollPolicy(initial_interval=0.1, max_interval=0.1, multiplier=1.0,
                                jitter=0.0, adaptive=False)
    schedule = PollSchedule(policy)
    t = 0.0
    for step in range(5000):  # long enough for the lag floor (0.5 % of the wait) to pass 0.1
        schedule.observe(t, status, None if status is None else min(step // 10, 99))
        assert schedule.next_delay(t) == 0.1
        t += 0.1


@pytest.mark.parametrize(
    ("seconds", "error"),
    [(0, ValueError), (-1.0, ValueError), (math.inf, ValueError), (math.nan, ValueError),
     (None, TypeError), (True, TypeError), ("2", TypeError)],
)
def test_fixed_rejects_a_bad_interval_naming_it(seconds: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="seconds"):
        PollPolicy.fixed(seconds)  # type: ignore[arg-type]


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
    assert delays[-1] == TUNING.max_fallback_interval


def test_progress_that_does_not_move_keeps_the_fallback() -> None:
    schedule = PollSchedule(STILL)
    delays = []
    t = 0.0
    for _ in range(12):
        schedule.observe(t, PROCESSING, 40)
        delays.append(schedule.next_delay(t))
        t += delays[-1]
    assert delays[:3] == pytest.approx([1.0, 1.5, 2.25])
    assert max(delays) == TUNING.max_fallback_interval
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
    assert pending[0] == pytest.approx(TUNING.pending_factor * STILL.initial_interval)
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
    assert schedule.next_delay(t) == pytest.approx(max(1.0, TUNING.lag_tolerance * t))


def test_without_adaptive_only_the_fallback_is_used() -> None:
    policy = PollPolicy(jitter=0.0, adaptive=False)
    polls, _ = wait(linear(2000.0), policy)
    delays = [b[0] - a[0] for a, b in itertools.pairwise(polls)]
    assert max(delays) == pytest.approx(TUNING.max_fallback_interval)


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
def policies(draw: st.DrawFn) -> tuple[PollPolicy, Tuning]:
    initial = draw(st.floats(min_value=0.001, max_value=100.0))
    policy = PollPolicy(
        initial_interval=initial,
        max_interval=draw(st.floats(min_value=initial, max_value=1e4)),
        multiplier=draw(st.floats(min_value=1.0, max_value=10.0)),
        jitter=draw(st.floats(min_value=0.0, max_value=0.99)),
        adaptive=draw(st.booleans()),
    )
    tuning = Tuning(
        min_interval=draw(st.floats(min_value=0.001, max_value=10.0)),
        max_fallback_interval=draw(st.floats(min_value=0.001, max_value=1e4)),
        pending_factor=draw(st.floats(min_value=1.0, max_value=10.0)),
        lead=draw(st.floats(min_value=0.01, max_value=1.0)),
        lag_tolerance=draw(st.floats(min_value=0.0, max_value=1.0)),
        rate_window=draw(st.integers(min_value=1, max_value=100)),
        extrapolation=draw(st.floats(min_value=0.01, max_value=100.0)),
    )
    return policy, tuning


@settings(max_examples=300, deadline=None)
@given(
    chosen=st.one_of(st.just((PollPolicy(), DEFAULT_TUNING)), st.just((PollPolicy.fixed(0.1),
                     DEFAULT_TUNING)), policies()),
    steps=observations,
    seed=st.integers(),
)
def test_every_delay_is_finite_and_within_the_bounds(
    chosen: tuple[PollPolicy, Tuning],
    steps: list[tuple[float, int | None, int | None, float]],
    seed: int,
) -> None:
    policy, tuning = chosen
    schedule = PollSchedule(policy, rng=random.Random(seed), tuning=tuning)
    # The user's numbers bound every delay; the tuning only ever lowers the floor.
    assert schedule.min_delay <= policy.initial_interval
    t = 1000.0
    for before, status, progress, after in steps:
        t += before
        schedule.observe(t, status, progress)
        t += after
        delay = schedule.next_delay(t)
        assert math.isfinite(delay)
        assert schedule.min_delay <= delay <= policy.max_interval
        # A resume in the middle must keep the same guarantees.
        saved = ScheduleState.from_json(json.loads(json.dumps(schedule.to_state())))
        restored = PollSchedule.from_state(
            policy, saved, now=t * 3, polls=schedule.polls, rng=random.Random(0), tuning=tuning
        )
        assert schedule.min_delay <= restored.next_delay(t * 3) <= policy.max_interval


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
    assert max(delays) > 5 * TUNING.max_fallback_interval
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
    assert seen - 660.0 <= TUNING.max_fallback_interval * 1.1


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
    assert schedule.next_delay(5.0) == TUNING.min_interval
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


def _restore(
    schedule: PollSchedule, *, now: float, policy: PollPolicy | None = None,
    rng: random.Random | None = None,
) -> PollSchedule:
    """``schedule`` saved, through JSON, and restored on another clock."""
    saved = ScheduleState.from_json(json.loads(json.dumps(schedule.to_state())))
    return PollSchedule.from_state(
        policy or PollPolicy(), saved, now=now, polls=schedule.polls, rng=rng
    )


def test_state_round_trips_through_json() -> None:
    schedule, _t = _schedule_midway()
    state = schedule.to_state()
    text = json.dumps(state)
    assert json.loads(text) == state
    restored = _restore(schedule, now=42.0)
    assert restored.to_state() == state
    assert restored.polls == schedule.polls
    assert ScheduleState.from_json(json.loads(text)) == schedule.state()


def test_state_holds_no_absolute_time() -> None:
    schedule, _ = _schedule_midway(t0=1e6)
    numbers = [v for v in _json_values(schedule.to_state()) if isinstance(v, float | int)]
    assert numbers
    assert all(abs(v) < 1e4 for v in numbers)


def test_a_resumed_schedule_does_not_depend_on_the_new_clock() -> None:
    schedule, _ = _schedule_midway()
    here = _restore(schedule, now=0.0, rng=random.Random(9))
    elsewhere = _restore(schedule, now=5e7, rng=random.Random(9))
    assert here.next_delay(0.0) == elsewhere.next_delay(5e7)
    here_finish, elsewhere_finish = here.predicted_finish(0.0), elsewhere.predicted_finish(5e7)
    assert here_finish is not None
    assert elsewhere_finish is not None
    assert here_finish == pytest.approx(elsewhere_finish - 5e7)


def test_a_resumed_schedule_keeps_the_rate_across_the_unknown_gap() -> None:
    schedule, _ = _schedule_midway()
    # Another process, another clock; the job moved on meanwhile by an unknown amount.
    restored = _restore(schedule, now=10.0, policy=PollPolicy(jitter=0.0))
    restored.observe(10.5, PROCESSING, 60)
    finish = restored.predicted_finish(10.5)
    assert finish is not None
    # 40 % left at about 0.1 %/s: not "any moment" from a jump over half a second.
    assert 300.0 < finish - 10.5 < 500.0
    assert restored.next_delay(10.5) > 10.0


def test_a_fresh_state_round_trips() -> None:
    state = PollSchedule(PollPolicy()).to_state()
    restored = PollSchedule.from_state(PollPolicy(), ScheduleState.from_json(state), now=1.0)
    assert restored.to_state() == state


def _wait_state(schedule: PollSchedule, job_id: str = "1309243162258308352") -> WaitState:
    return WaitState(
        job_id=job_id, polls=schedule.polls, elapsed=400.0, saved_at=1.7e9,
        last_status=PROCESSING, last_progress=40, schedule=schedule.state(),
    )


def test_a_wait_state_is_json_and_round_trips() -> None:
    schedule, _ = _schedule_midway()
    state = _wait_state(schedule)
    data = state.to_json()
    text = json.dumps(data)  # JSON values only: dicts, lists, str, numbers, None
    assert json.loads(text) == data
    assert data["version"] == STATE_VERSION == 2
    assert set(data) == {"version", "job_id", "polls", "elapsed", "saved_at", "last_status",
                         "last_progress", "schedule"}
    # One version, one polls: the schedule's part holds neither.
    assert not {"version", "polls", "elapsed"} & set(data["schedule"])
    assert WaitState.from_json(json.loads(text), job_id=state.job_id) == state
    unknown = attrs.evolve(state, saved_at=None)
    assert WaitState.from_json(unknown.to_json(), job_id=state.job_id) == unknown


def test_a_wait_state_of_another_version_or_job_is_refused() -> None:
    data = _wait_state(_schedule_midway()[0], "42").to_json()
    with pytest.raises(ValueError, match="not for job '43'"):
        WaitState.from_json(data, job_id="43")
    for version in (3, 0, None, "2", True):
        with pytest.raises(ValueError, match="'version' must be 2"):
            WaitState.from_json({**data, "version": version}, job_id="42")
    with pytest.raises(ValueError, match="mapping"):
        WaitState.from_json([data], job_id="42")


def _state_of_0_1() -> dict[str, Any]:
    """A state as 0.1 wrote it (version 1, counters nested in the schedule's part)."""
    schedule = _schedule_midway()[0].to_state()
    return {
        "version": 1, "job_id": "42", "polls": 40, "elapsed": 400.0, "last_status": 1,
        "last_progress": 40,
        "schedule": {"version": 1, "polls": 40, "elapsed": 399.0, **schedule},
    }


def test_a_state_written_by_0_1_is_still_accepted() -> None:
    old = _state_of_0_1()
    state = WaitState.from_json(json.loads(json.dumps(old)), job_id="42")
    assert state.version == STATE_VERSION and state.saved_at is None
    assert (state.polls, state.elapsed) == (40, 400.0)
    assert state.schedule.to_json() == {
        k: v for k, v in old["schedule"].items() if k not in ("version", "polls", "elapsed")
    }
    schedule, polls, elapsed = _poll._resume("42", old, PollPolicy(), 5.0)
    assert (schedule.polls, polls, elapsed) == (40, 40, 400.0)


def test_a_resume_counts_the_time_the_state_lay_saved() -> None:
    data = _wait_state(_schedule_midway()[0], "42").to_json()
    _, polls, elapsed = _poll._resume(
        "42", data, PollPolicy(), 5.0, wall_clock=lambda: 1.7e9 + 60.0
    )
    assert (polls, elapsed) == (data["polls"], 460.0)
    # A wall clock behind the saver's does not make the wait younger.
    _, _, elapsed = _poll._resume("42", data, PollPolicy(), 5.0, wall_clock=lambda: 1.0)
    assert elapsed == 400.0


def _valid_state() -> dict[str, Any]:
    schedule, _ = _schedule_midway()
    state: dict[str, Any] = json.loads(json.dumps(_wait_state(schedule, "42").to_json()))
    assert len(state["schedule"]["events"]) >= 2
    return state


_TOP = frozenset(attrs.fields_dict(WaitState))


def _part(state: dict[str, Any], key: str) -> dict[str, Any]:
    """The dict that holds ``key``: the wait's own, or the schedule's part."""
    part: dict[str, Any] = state if key in _TOP else state["schedule"]
    return part


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        _part(state, key)[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        del _part(state, key)[key]

    return change


def _event(index: int, value: object) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        state["schedule"]["events"][index] = value

    return change


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_set("version", 3), "version"),
        (_drop("version"), "version"),
        (_set("polls", -1), "polls"),
        (_set("polls", True), "polls"),
        (_set("polls", 1.5), "polls"),
        (_drop("elapsed"), "elapsed"),
        (_set("elapsed", -1.0), "elapsed"),
        (_set("elapsed", "1"), "elapsed"),
        (_set("elapsed", math.nan), "elapsed"),
        (_set("saved_at", "now"), "saved_at"),
        (_set("saved_at", math.inf), "saved_at"),
        (_drop("saved_at"), "saved_at"),
        (_set("last_status", "1"), "last_status"),
        (_set("last_progress", 4.5), "last_progress"),
        (_set("schedule", []), "schedule"),
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
        WaitState.from_json(state, job_id="42")


def test_a_state_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(ValueError, match="mapping"):
        WaitState.from_json([], job_id="42")
    with pytest.raises(ValueError, match="object"):
        ScheduleState.from_json([])
    saved = WaitState.from_json(_valid_state(), job_id="42").schedule
    with pytest.raises(ValueError, match="now"):
        PollSchedule.from_state(PollPolicy(), saved, now=math.nan)


# -- PollPolicy over the emulator, in virtual time -------------------------------------------


async def test_max_interval_alone_caps_every_sleep_of_a_pending_job(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(pending_for=600, duration=60)
    async with make_client(emulator, vt) as client:
        result = await client.wait_for_job(job_id, poll=PollPolicy(max_interval=5))
    assert result.ok
    assert len(vt.sleeps) == result.polls - 1
    assert max(vt.sleeps) <= 5.0
    # It did grow to the cap while pending (not polled at the initial interval throughout).
    assert max(vt.sleeps) >= 4.5
    assert result.polls < 600 / 4.5 + 60


async def test_a_small_initial_interval_is_the_first_sleep(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(pending_for=0, duration=30)
    async with make_client(emulator, vt) as client:
        result = await client.wait_for_job(job_id, poll=PollPolicy(initial_interval=0.05))
    assert result.ok
    # 0.05 s, jittered by 10 % (the floor is the user's interval, not a hidden 0.25 s).
    assert 0.05 <= vt.sleeps[0] <= 0.05 * 1.1


async def test_fixed_sleeps_its_interval_pending_and_processing(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(pending_for=3, duration=5)
    seen: list[kd.JobStatus | int | None] = []
    async with make_client(emulator, vt) as client:
        result = await client.wait_for_job(
            job_id, poll=PollPolicy.fixed(0.1),
            on_progress=lambda detail: seen.append(detail.status),
        )
    assert result.ok
    assert kd.JobStatus.PENDING in seen and kd.JobStatus.PROCESSING in seen
    assert len(vt.sleeps) == result.polls - 1 >= 70
    assert all(s == pytest.approx(0.1) for s in vt.sleeps)
