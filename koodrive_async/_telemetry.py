"""OpenTelemetry spans and metrics: the only module that imports ``opentelemetry``.

The names are a contract (../shared/design.md): a span ``koodrive.wait_for_job`` per wait, a
CLIENT span per API call (``KooDrive GetJobDetail`` ...), the instruments of ``_Instruments``.
With the API absent every hook is a constant no-op; with the API and no provider (the API's
proxy), each hook checks that first and builds nothing. Tracer and meter come from the global
API lazily, so a provider configured after import is used. A hook never raises into the
caller: a broken exporter or provider is not the caller's failure.
"""

from __future__ import annotations

import contextvars
import logging
import os
import types
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from .errors import JobStalledError, WaitTimeoutError
from .models import JobResult

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # the otel extra is not installed
    _trace = None  # type: ignore[assignment]
    _metrics = None  # type: ignore[assignment]

__all__ = [
    "AVAILABLE", "NO_WAIT", "WaitSpan", "attempt", "operation", "retried",
    "start_wait", "trace_configs", "tracing",
]

T = TypeVar("T")
#: Whether the OpenTelemetry API can be imported.
AVAILABLE: Final = _trace is not None
_NAME: Final = "koodrive_async"
_log: Final = logging.getLogger(_NAME)
_UNKNOWN: Final = object()
_PROVIDER_FROM_ENV: Final = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ  # the API reads it once

if AVAILABLE:
    from opentelemetry.metrics import _internal as _metrics_internal

    _NO_TRACERS: tuple[type, ...] = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)
    # The API's stand-in until a meter provider is set is private: looked up, not imported.
    _NO_METERS: tuple[type, ...] = (_metrics.NoOpMeterProvider, *(
        [_metrics_internal._ProxyMeterProvider]
        if hasattr(_metrics_internal, "_ProxyMeterProvider") else []))


class _Instruments:
    __slots__ = ("active", "duration", "polls", "retries")

    def __init__(self, meter: Any) -> None:
        self.duration = meter.create_histogram(
            "koodrive.client.wait.duration", unit="s",
            description="Seconds one wait took in this process, by koodrive.outcome.")
        self.polls = meter.create_histogram(
            "koodrive.client.wait.polls", unit="{poll}",
            description="Answered polls of one wait, by koodrive.outcome.")
        self.active = meter.create_up_down_counter(
            "koodrive.client.waits.active", unit="{wait}", description="Waits running now.")
        self.retries = meter.create_counter(
            "koodrive.client.retries", unit="{retry}",
            description="Requests sent again, by koodrive.reason.")


# What was made of the provider last seen, with that provider: the global one is set once,
# but a test suite resets it (as opentelemetry's own test utilities do).
_tracer: Any = None
_tracer_of: Any = None
_instruments: _Instruments | None = None
_instruments_of: Any = None


def _get_tracer() -> Any:
    global _tracer, _tracer_of
    if not AVAILABLE:
        return None
    # get_tracer_provider() looks an environment variable up at every call (0.8 us, a
    # KeyError raised and caught): the API's global is read first, where there is one.
    current = getattr(_trace, "_TRACER_PROVIDER", _UNKNOWN)
    if current is None:  # none set: the usual case without telemetry
        if not _PROVIDER_FROM_ENV:
            return None
    elif current is _tracer_of:
        return _tracer
    provider = _trace.get_tracer_provider()
    if provider is not _tracer_of:
        from . import __version__

        _tracer_of = provider
        _tracer = None if isinstance(provider, _NO_TRACERS) else provider.get_tracer(
            _NAME, __version__)
    return _tracer


def _get_instruments() -> _Instruments | None:
    global _instruments, _instruments_of
    if not AVAILABLE:
        return None
    provider = _metrics.get_meter_provider()
    if provider is not _instruments_of:
        from . import __version__

        _instruments_of = provider
        _instruments = None if isinstance(provider, _NO_METERS) else _Instruments(
            provider.get_meter(_NAME, __version__))
    return _instruments


def tracing() -> bool:
    """Whether spans are recorded: the API is there and a tracer provider is set."""
    return _get_tracer() is not None


def _failed(what: str) -> None:
    _log.debug("telemetry: %s failed; ignored", what, exc_info=True)


def _error_type(span: Any, error: BaseException) -> None:
    name = type(error).__qualname__
    span.set_attribute("error.type", name)
    span.set_status(_trace.StatusCode.ERROR, name)


class _NoWait:
    """The wait span when nothing records: static methods only, so ``with`` allocates
    nothing and a wait holds not a byte more."""

    __slots__ = ()

    @staticmethod
    def __enter__() -> _NoWait:
        return NO_WAIT

    @staticmethod
    def __exit__(*_: object) -> None:
        return None

    polling = __enter__


NO_WAIT: Final = _NoWait()


class WaitSpan:
    """One wait's span and metrics, a context manager around the whole wait: current in it
    (unless ``current`` is False: then only within ``polling()``), ended on exit with the
    outcome, the job's (``tally.last``) or the exception's."""

    __slots__ = ("_clock", "_current", "_instruments", "_job_id", "_scope", "_span", "_tally")

    def __init__(self, job_id: str, *, resumed: bool, tally: Any, clock: Callable[[], float],
                 current: bool, tracer: Any, instruments: _Instruments | None) -> None:
        self._job_id, self._tally, self._clock, self._current = job_id, tally, clock, current
        self._span: Any = None if tracer is None else tracer.start_span(
            "koodrive.wait_for_job", kind=_trace.SpanKind.INTERNAL,
            attributes={"koodrive.job_id": job_id, "koodrive.resumed": resumed})
        self._instruments = instruments
        self._scope: Any = None

    def __enter__(self) -> WaitSpan:
        try:
            if self._instruments is not None:
                self._instruments.active.add(1)
            if self._current and self._span is not None:
                (scope := self.polling()).__enter__()
                self._scope = scope
        except Exception:
            _failed("entering the wait span")
        return self

    def __exit__(self, _: object, error: BaseException | None, __: object) -> None:
        try:
            if self._scope is not None:
                self._scope.__exit__(None, None, None)
            self._end(error)
        except Exception:
            _failed("ending the wait span")

    def polling(self) -> Any:
        """A context manager making the span current (what the wait's calls are under)."""
        return NO_WAIT if self._span is None else _trace.use_span(
            self._span, record_exception=False, set_status_on_exception=False)

    def _end(self, error: BaseException | None) -> None:
        tally, instruments, span = self._tally, self._instruments, self._span
        outcome = (
            JobResult(job_id=self._job_id, detail=tally.last).outcome
            if error is None else "timeout" if isinstance(error, WaitTimeoutError)
            else "stalled" if isinstance(error, JobStalledError) else "error"
        )
        if instruments is not None:
            attributes = {"koodrive.outcome": outcome}
            instruments.active.add(-1)
            instruments.duration.record(max(self._clock() - tally.started, 0.0), attributes)
            instruments.polls.record(tally.polls, attributes)
        if span is None:
            return
        if span.is_recording():
            span.set_attribute("koodrive.polls", tally.polls)
            span.set_attribute("koodrive.outcome", outcome)
            task_type = getattr(getattr(tally.last, "job_info", None), "task_type", None)
            if task_type is not None:
                name = getattr(task_type, "name", None)
                span.set_attribute("koodrive.task_type",
                                   name.lower() if isinstance(name, str) else str(task_type))
            if error is not None:
                _error_type(span, error)
        span.end()


def start_wait(
    job_id: str, *, resumed: bool, tally: Any, clock: Callable[[], float], current: bool = True
) -> WaitSpan | _NoWait:
    """The span and metrics of a wait to enter as it starts (NO_WAIT when nothing records);
    ``tally`` (``polls``, ``started`` on ``clock``, ``last``) is read as it ends."""
    try:
        tracer, instruments = _get_tracer(), _get_instruments()
        if tracer is None and instruments is None:
            return NO_WAIT
        return WaitSpan(job_id, resumed=resumed, tally=tally, clock=clock, current=current,
                        tracer=tracer, instruments=instruments)
    except Exception:
        _failed("starting the wait span")
        return NO_WAIT


# The current operation's span and HTTP sends so far, while it is recorded.
_operation: Final[contextvars.ContextVar[list[Any] | None]] = contextvars.ContextVar(
    "koodrive_operation", default=None)


async def operation(name: str, job_id: str | None, call: Awaitable[T]) -> T:
    """Await ``call`` (one API call with its retries) under a CLIENT span ``KooDrive
    <name>``; only to be called when ``tracing()``."""
    try:
        span = _tracer.start_span(f"KooDrive {name}", kind=_trace.SpanKind.CLIENT)
        if job_id is not None and span.is_recording():
            span.set_attribute("koodrive.job_id", job_id)
        scope: Any = _trace.use_span(span, end_on_exit=False, record_exception=False,
                                     set_status_on_exception=False)
        scope.__enter__()
        token = _operation.set([span, 0])
    except Exception:
        _failed("starting the operation span")
        return await call
    error: BaseException | None = None
    try:
        return await call
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            _operation.reset(token)
            if error is not None and span.is_recording():
                status = getattr(error, "http_status", None)
                if isinstance(status, int):
                    span.set_attribute("http.response.status_code", status)
                _error_type(span, error)
            scope.__exit__(None, None, None)
            span.end()
        except Exception:
            _failed("ending the operation span")


def attempt(trace_id: str) -> dict[str, Any] | None:
    """Note one HTTP send of the current operation; the ``trace_request_ctx`` to send it
    with (None outside a recorded operation)."""
    op = _operation.get()
    if op is None:
        return None
    try:
        span, resends = op
        op[1] = resends + 1
        if span.is_recording():
            span.set_attribute("koodrive.trace_id", trace_id)
            if resends:
                span.set_attribute("http.request.resend_count", resends)
    except Exception:
        _failed("noting an attempt")
        return None
    return {"koodrive.trace_id": trace_id, "koodrive.resend_count": resends}


def retried(reason: str) -> None:
    """Count one request sent again, for ``reason`` (429, 5xx, transport, skew, token)."""
    try:
        instruments = _get_instruments()
        if instruments is not None:
            instruments.retries.add(1, {"koodrive.reason": reason})
    except Exception:
        _failed("counting a retry")


async def _on_request_done(_: Any, ctx: types.SimpleNamespace, __: Any) -> None:
    # The instrumentation's TraceConfig comes after ours (its ClientSession.__init__ hook
    # appends it): its span is current from its request start to its end, so here, before
    # its end. Without it the current span is the operation's, which has these already.
    request, op = ctx.trace_request_ctx, _operation.get()
    if not isinstance(request, dict) or op is None:
        return
    try:
        span = _trace.get_current_span()
        if span is op[0] or not span.is_recording():
            return
        span.set_attribute("koodrive.trace_id", request["koodrive.trace_id"])
        if request["koodrive.resend_count"]:
            span.set_attribute("http.request.resend_count", request["koodrive.resend_count"])
    except Exception:
        _failed("annotating the HTTP span")


def trace_configs() -> list[Any] | None:
    """For a session the client makes now, when spans are recorded: our TraceConfig, which
    sets ``http.request.resend_count`` on the instrumentation's spans (else None: aiohttp's
    tracing costs 10 % of a lookup's CPU even with nothing to call)."""
    if not tracing():
        return None
    import aiohttp

    config = aiohttp.TraceConfig()
    config.on_request_end.append(_on_request_done)
    config.on_request_exception.append(_on_request_done)
    return [config]
