"""Telemetry: spans, metrics and logs, read back from the OpenTelemetry SDK's in-memory
exporter and reader, over real sockets in virtual time.

The global providers can be set once per process (the API's rule): the module sets them once
(a span processor forwarding to the exporter, a metric reader with delta temporality for what
adds up) and resets them when it ends, so the tests after it run without telemetry (test_fanout
measures a wait's bytes); each test starts from an empty exporter and a drained reader.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from aiohttp import web
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import koodrive_async as kd
from koodrive_async import _telemetry
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import VirtualTime, make_client

TOKEN = "tok-TELEMETRY-SECRET-5e1c"
PROVIDED = "tok-TELEMETRY-PROVIDED-9a07"
APP_SECRET = "app-TELEMETRY-SECRET-c3d2"
URL_QUERY = "Signature=QUERY-SECRET-77f1"


class _Processor(SpanProcessor):
    """Forwards ended spans to the exporter; ``broken`` makes it raise for our spans."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._inner = SimpleSpanProcessor(exporter)
        self.broken = ""
        """"start" or "end": where it raises for our spans."""
        self.keeping = True
        """Off after this module: the provider stays set for the tests that follow."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if self.broken == "start" and _ours(span.name):
            raise RuntimeError("a broken span processor")

    def on_end(self, span: ReadableSpan) -> None:
        if self.broken == "end" and _ours(span.name):
            raise RuntimeError("a broken span processor")
        if self.keeping:
            self._inner.on_end(span)


def _ours(name: str) -> bool:
    return name.startswith(("koodrive.", "KooDrive "))


_EXPORTER = InMemorySpanExporter()
_PROCESSOR = _Processor(_EXPORTER)
_READER = InMemoryMetricReader(preferred_temporality={
    Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA,
})


def _reset_globals() -> None:
    """Back to no provider, as opentelemetry's own test utilities do (``reset_trace_globals``
    of opentelemetry-test-utils): the tests after this module run without telemetry."""
    from opentelemetry.metrics import _internal as metrics_internal
    from opentelemetry.util._once import Once

    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None


@pytest.fixture(scope="module", autouse=True)
def _providers() -> Iterator[None]:
    provider = TracerProvider()
    provider.add_span_processor(_PROCESSOR)
    meters = MeterProvider(metric_readers=[_READER])
    _reset_globals()
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(meters)
    _PROCESSOR.keeping = True
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()
        _PROCESSOR.keeping = False
        _EXPORTER.clear()
        _reset_globals()
        meters.shutdown()
        provider.shutdown()


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    _EXPORTER.clear()
    _READER.get_metrics_data()  # drained: deltas from here
    _PROCESSOR.broken = ""
    yield
    _PROCESSOR.broken = ""


def spans(name: str | None = None) -> list[ReadableSpan]:
    found = sorted(_EXPORTER.get_finished_spans(), key=lambda s: s.start_time or 0)
    return [s for s in found if name is None or s.name == name]


def http_spans() -> list[ReadableSpan]:
    return [s for s in spans() if s.instrumentation_scope is not None
            and "aiohttp" in s.instrumentation_scope.name]


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def collect() -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Every data point since the last collection (deltas; up-down counters cumulative)."""
    data = _READER.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(
                    (dict(p.attributes or {}), p) for p in metric.data.data_points
                )
    return found


def the_wait(**attributes: Any) -> ReadableSpan:
    (wait,) = spans("koodrive.wait_for_job")
    assert wait.kind is SpanKind.INTERNAL
    assert wait.attributes is not None
    for key, value in attributes.items():
        assert wait.attributes.get(key) == value, (key, dict(wait.attributes))
    return wait


def traceids(emulator: KooDriveEmulator) -> list[str]:
    return [r.headers["X-Traceid"] for r in emulator.requests]


@pytest.mark.parametrize(("files", "failed", "cancel_after", "outcome"), [
    (2, 0, None, "ok"), (3, 1, None, "partially_failed"), (2, 2, None, "failed"),
    (2, 0, 30.0, "canceled"),
])
async def test_the_wait_span_of_a_job_that_ends(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, files: int, failed: int,
    cancel_after: float | None, outcome: str,
) -> None:
    job_id = emulator.add_job(task_type=kd.TaskType.PACKAGE_DOWNLOAD, files=files,
                              failed_files=failed, pending_for=5, duration=60,
                              cancel_after=cancel_after)
    result = await client.wait_for_job(job_id)
    wait = the_wait(**{
        "koodrive.job_id": job_id, "koodrive.polls": result.polls, "koodrive.outcome": outcome,
        "koodrive.resumed": False, "koodrive.task_type": "package_download",
    })
    assert wait.status.status_code is StatusCode.UNSET
    # One operation span per poll, each under the wait, carrying the X-Traceid sent.
    polls = spans("KooDrive GetJobDetail")
    assert len(polls) == result.polls == len(emulator.requests)
    assert [s.attributes["koodrive.trace_id"] for s in polls  # type: ignore[index]
            ] == traceids(emulator)
    for span in polls:
        assert span.kind is SpanKind.CLIENT and parent_id(span) == span_id(wait)
        assert span.attributes is not None and span.attributes["koodrive.job_id"] == job_id
    # The aiohttp instrumentation's spans: one per request, each under its operation span.
    http = http_spans()
    assert [parent_id(s) for s in http] == [span_id(s) for s in polls]
    assert wait.context is not None
    assert all(s.context is not None and s.context.trace_id == wait.context.trace_id
               for s in http)
    assert len(spans()) == 1 + 2 * result.polls, "no span per poll beyond the operation's"


async def test_the_wait_metrics_data_points(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(pending_for=5, duration=60)
    active: list[float] = []

    def during(_: kd.JobDetail) -> None:
        active.extend(p.value for _, p in collect()["koodrive.client.waits.active"])

    result = await client.wait_for_job(job_id, on_progress=during)
    assert active and set(active) == {1}, "one wait running while it polls"
    points = collect()
    assert [p.value for _, p in points["koodrive.client.waits.active"]] == [0]
    ((attributes, duration),) = points["koodrive.client.wait.duration"]
    assert attributes == {"koodrive.outcome": "ok"}
    assert duration.count == 1 and duration.sum == pytest.approx(result.elapsed)
    ((attributes, polls),) = points["koodrive.client.wait.polls"]
    assert attributes == {"koodrive.outcome": "ok"}
    assert polls.count == 1 and polls.sum == result.polls
    assert "koodrive.client.retries" not in points


async def test_a_timeout_an_error_and_a_stall_end_the_span_in_error(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, vt: VirtualTime
) -> None:
    cases: Sequence[tuple[str, dict[str, Any], type[kd.KooDriveError], str]] = (
        (emulator.add_job(pending_for=0, duration=600), {"timeout": 120},
         kd.WaitTimeoutError, "timeout"),
        (emulator.add_job(pending_for=10_000, duration=10), {"stall_timeout": 120},
         kd.JobStalledError, "stalled"),
        ("no-such-job", {}, kd.NotFoundError, "error"),
    )
    for job_id, options, error, outcome in cases:
        _EXPORTER.clear()
        started = vt.clock()
        with pytest.raises(error):
            await client.wait_for_job(job_id, **options)
        wait = the_wait(**{"koodrive.job_id": job_id, "koodrive.outcome": outcome,
                           "error.type": error.__name__})
        assert wait.status.status_code is StatusCode.ERROR
        assert wait.attributes is not None and wait.attributes["koodrive.polls"] == (
            0 if outcome == "error" else len(spans("KooDrive GetJobDetail"))
        )
        ((attributes, duration),) = collect()["koodrive.client.wait.duration"]
        assert attributes == {"koodrive.outcome": outcome}
        assert duration.sum == pytest.approx(vt.clock() - started)
    (lookup,) = spans("KooDrive GetJobDetail")
    assert lookup.status.status_code is StatusCode.ERROR and lookup.attributes is not None
    assert lookup.attributes["http.response.status_code"] == 404


async def test_a_resumed_wait_says_so_and_logs_it(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = emulator.add_job(pending_for=0, duration=600)
    with pytest.raises(kd.WaitTimeoutError) as caught:
        await client.wait_for_job(job_id, timeout=120)
    _EXPORTER.clear()
    caplog.set_level(logging.DEBUG, logger="koodrive_async")
    result = await client.wait_for_job(job_id, resume=json.loads(json.dumps(caught.value.state)))
    the_wait(**{"koodrive.resumed": True, "koodrive.outcome": "ok",
                "koodrive.polls": result.polls})
    (resumed,) = [r for r in caplog.records if r.levelno == logging.INFO]
    assert resumed.name == "koodrive_async.wait" and "resuming" in resumed.getMessage()
    assert getattr(resumed, "koodrive.job_id") == job_id


async def test_a_retried_request_carries_resend_count_and_is_counted(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(pending_for=0, duration=0)
    emulator.inject(Fault.status(503), times=1)
    emulator.inject(Fault.status(429, retry_after=1), times=1)
    result = await client.wait_for_job(job_id)
    wait = the_wait(**{"koodrive.outcome": "ok", "koodrive.polls": 1})
    (lookup,) = spans("KooDrive GetJobDetail")
    assert parent_id(lookup) == span_id(wait) and result.polls == 1
    http = http_spans()
    assert len(http) == 3 == len(emulator.requests)
    assert [parent_id(s) for s in http] == [span_id(lookup)] * 3
    assert [(s.attributes or {}).get("http.request.resend_count") for s in http] == [None, 1, 2]
    assert [(s.attributes or {}).get("koodrive.trace_id") for s in http] == traceids(emulator)
    assert lookup.attributes is not None
    assert lookup.attributes["koodrive.trace_id"] == traceids(emulator)[-1], "the one answered"
    assert lookup.attributes["http.request.resend_count"] == 2
    counted = {a["koodrive.reason"]: p.value for a, p in collect()["koodrive.client.retries"]}
    assert counted == {"5xx": 1, "429": 1}


async def test_a_token_refresh_is_a_resend_too(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    tokens = iter(["tok-old-000001", "tok-new-000002"])
    emulator.add_token("tok-new-000002")

    async def provider() -> str:
        return next(tokens)

    async with make_client(emulator, vt, auth=kd.TokenAuth(provider)) as client:
        await client.get_job(emulator.add_job())
    assert [(s.attributes or {}).get("http.request.resend_count") for s in http_spans()] == [
        None, 1]
    assert {a["koodrive.reason"]: p.value for a, p in collect()["koodrive.client.retries"]
            } == {"token": 1}


async def test_every_operation_has_its_span_and_trace_id(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = await client.create_job(kd.TaskType.COPY, src_container_id="s",
                                     dst_container_id="d", files=["f1"], new_file_path="/x")
    [info async for info in client.list_jobs()]
    await client.cancel_job(job_id)
    names = [s.name for s in spans() if _ours(s.name)]
    assert names == ["KooDrive CreateJob", "KooDrive GetJobList", "KooDrive CancelJob"]
    ops = [s for s in spans() if _ours(s.name)]
    assert [(s.attributes or {})["koodrive.trace_id"] for s in ops] == traceids(emulator)
    assert [(s.attributes or {}).get("koodrive.job_id") for s in ops] == [None, None, job_id]
    assert all(s.kind is SpanKind.CLIENT and s.parent is None for s in ops)


async def test_fan_out_waits_each_have_their_span(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    ids = [emulator.add_job(pending_for=0, duration=30 * n) for n in (1, 2, 3)]
    outcomes = {job_id: outcome async for job_id, outcome in client.wait_for_jobs(ids)}
    waits = {(s.attributes or {})["koodrive.job_id"]: s for s in spans("koodrive.wait_for_job")}
    assert set(waits) == set(ids)
    for span in spans("KooDrive GetJobDetail"):
        job_id = (span.attributes or {})["koodrive.job_id"]
        assert parent_id(span) == span_id(waits[job_id])
    for job_id, outcome in outcomes.items():
        assert isinstance(outcome, kd.JobResult)
        assert (waits[job_id].attributes or {})["koodrive.polls"] == outcome.polls


async def test_watch_job_is_current_only_while_polling(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(pending_for=5, duration=60)
    seen = []
    async for _ in client.watch_job(job_id, timeout=600):
        seen.append(trace.get_current_span().get_span_context().is_valid)
    assert seen and not any(seen), "the consumer's code is not under the wait span"
    wait = the_wait(**{"koodrive.job_id": job_id, "koodrive.outcome": "ok"})
    assert all(parent_id(s) == span_id(wait) for s in spans("KooDrive GetJobDetail"))


async def test_cancel_on_exit_is_under_the_wait_and_logged_at_info(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = emulator.add_job(pending_for=0, duration=600)
    caplog.set_level(logging.DEBUG, logger="koodrive_async")
    with pytest.raises(kd.WaitTimeoutError):
        await client.wait_for_job(job_id, timeout=60, cancel_job_on_exit=True)
    wait = the_wait(**{"koodrive.outcome": "timeout"})
    (cancel,) = spans("KooDrive CancelJob")
    assert parent_id(cancel) == span_id(wait)
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno > logging.DEBUG] == [
        ("koodrive_async.wait", f"job {job_id}: canceled on the server as the wait ended")]


async def test_a_happy_path_logs_at_debug_only_with_structured_fields(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="koodrive_async")
    job_id = emulator.add_job(pending_for=5, duration=60)
    result = await client.wait_for_job(job_id)
    await client.get_job(job_id)
    assert caplog.records and {r.levelno for r in caplog.records} == {logging.DEBUG}
    attempts = [r for r in caplog.records if r.name == "koodrive_async.http"]
    assert len(attempts) == len(emulator.requests) == result.polls + 1
    for record in attempts:
        fields = {k: v for k, v in vars(record).items() if k.startswith("koodrive.")}
        assert fields["koodrive.operation"] == "GetJobDetail"
        assert fields["koodrive.status"] == 200 and fields["koodrive.attempt"] == 1
        assert fields["koodrive.method"] == "GET" and fields["koodrive.elapsed"] >= 0
    assert [getattr(r, "koodrive.trace_id") for r in attempts] == traceids(emulator)
    polls = [r for r in caplog.records if r.name == "koodrive_async.wait"]
    assert [getattr(r, "koodrive.polls") for r in polls] == list(range(1, result.polls + 1))
    assert {getattr(r, "koodrive.job_id") for r in polls} == {job_id}


async def test_the_retry_budget_running_dry_is_a_warning(
    emulator: KooDriveEmulator, vt: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="koodrive_async")
    emulator.inject(Fault.status(503), times=None)
    async with make_client(emulator, vt, retry=kd.RetryPolicy(budget=5)) as client:
        with pytest.raises(kd.ServerError):
            await client.get_job(emulator.add_job())
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.name == "koodrive_async.http" and "budget" in warning.getMessage()
    assert getattr(warning, "koodrive.operation") == "GetJobDetail"
    assert getattr(warning, "koodrive.reason") == "5xx"


@pytest.mark.parametrize("where", ["start", "end"])
async def test_a_broken_span_processor_changes_nothing(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="koodrive_async")
    job_id = emulator.add_job(pending_for=5, duration=60)
    _PROCESSOR.broken = where
    result = await client.wait_for_job(job_id)
    assert result.ok and result.polls == len(emulator.requests)
    with pytest.raises(kd.NotFoundError):
        await client.get_job("no-such-job")
    ignored = {r.getMessage() for r in caplog.records if r.getMessage().startswith("telemetry")}
    verb = "starting" if where == "start" else "ending"
    assert ignored == {f"telemetry: {verb} the wait span failed; ignored",
                       f"telemetry: {verb} the operation span failed; ignored"}
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "koodrive_async")


async def test_a_session_made_before_instrument_has_no_http_spans(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    import aiohttp

    AioHttpClientInstrumentor().uninstrument()
    try:
        session = aiohttp.ClientSession()
    finally:
        AioHttpClientInstrumentor().instrument()
    async with session, make_client(emulator, vt, session=session) as client:
        await client.get_job(emulator.add_job())
    assert len(spans("KooDrive GetJobDetail")) == 1 and http_spans() == []


# -- no secret anywhere --------------------------------------------------------------------


@pytest.fixture
async def hostile(emulator: KooDriveEmulator) -> AsyncIterator[tuple[str, str]]:
    """A server of ours that echoes every credential it gets, then hands out a package URL
    with a signed query."""
    job_id = emulator.add_job(task_type=kd.TaskType.PACKAGE_DOWNLOAD, pending_for=0,
                              duration=0)
    detail = emulator.job_detail(job_id)
    detail["jobInfo"]["downloadUrl"] = f"https://dl.invalid/p.zip?Expires=9&{URL_QUERY}"
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        echo = " ".join(f"{k}={v}" for k, v in request.headers.items())
        seen.append(echo)
        if len(seen) % 2:
            return web.json_response({"code": 13000201, "msg": f"rejected: {echo}"},
                                     status=503, headers={"X-Echo": echo})
        return web.json_response({"code": 0, "msg": echo, "data": detail})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", job_id
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["token", "provider", "app"])
async def test_no_secret_in_any_span_metric_or_log(
    hostile: tuple[str, str], vt: VirtualTime, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    async def provider() -> str:
        return PROVIDED

    auths: dict[str, kd.TokenAuth | kd.AppAuth] = {
        "token": kd.TokenAuth(TOKEN), "provider": kd.TokenAuth(provider),
        "app": kd.AppAuth("app-1", APP_SECRET),
    }
    auth = auths[kind]
    caplog.set_level(logging.DEBUG, logger="koodrive_async")
    sent: list[str] = []
    base_url, job_id = hostile
    async with kd.KooDriveClient(base_url, user_id="u", auth=auth, clock=vt.clock,
                                 sleep=vt.sleep, rng=lambda: 1.0) as client:
        result = await client.wait_for_job(job_id)
        sent += [result.download_url or ""]
    assert URL_QUERY in sent[0], "the server did hand out the signed URL"
    texts = []
    for span in spans():
        texts += [span.name, repr(dict(span.attributes or {})), str(span.status.description)]
        texts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    data = _READER.get_metrics_data()
    texts.append(data.to_json() if data else "")
    for record in caplog.records:
        texts += [record.getMessage(), repr(vars(record))]
    assert len(spans()) >= 3 and len(caplog.records) >= 3
    secrets = {TOKEN, PROVIDED, APP_SECRET, URL_QUERY, "QUERY-SECRET"}
    joined = "\n".join(texts)
    for secret in secrets:
        assert secret not in joined, secret
    assert "Signature=" not in joined.replace(URL_QUERY, ""), "no request signature"


# -- without the API, or without a provider ------------------------------------------------

_PROBE = textwrap.dedent("""
    import asyncio, sys
    if sys.argv[1] == "absent":
        sys.modules["opentelemetry"] = None
    import koodrive_async as kd
    from koodrive_async import _telemetry
    from koodrive_async.testing import KooDriveEmulator

    async def main():
        async with KooDriveEmulator() as emu:
            job_id = emu.add_job(pending_for=0, duration=0)
            async with kd.KooDriveClient(emu.base_url, user_id=emu.user_id,
                                         auth=kd.TokenAuth(emu.token)) as client:
                call = client._caller.send("GET", "/koodrive/ose/v1/" + job_id)
                assert type(call).__name__ == "coroutine" and "_traced" not in repr(call)
                await call
                result = await client.wait_for_job(job_id)
        assert _telemetry.start_wait("x", resumed=False, tally=None, clock=None) is (
            _telemetry.NO_WAIT)
        print(_telemetry.AVAILABLE, result.ok, "opentelemetry.sdk" in sys.modules)

    asyncio.run(main())
""")


@pytest.mark.parametrize(("mode", "available"), [("absent", "False"), ("no-provider", "True")])
def test_without_the_api_or_a_provider_nothing_is_built(mode: str, available: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-W", "error", "-c", _PROBE, mode],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [available, "True", "False"]
    assert _telemetry.AVAILABLE


# -- the command line shows the records ----------------------------------------------------


def test_the_cli_shows_the_records_with_verbose_or_koodrive_log(
    koodrive_emulator: KooDriveEmulator,
) -> None:
    import shutil

    script = shutil.which("koodrive-async", path=os.path.dirname(sys.executable))
    assert script is not None, "the console script is installed with the package"
    emu = koodrive_emulator
    job_id = emu.add_job(pending_for=0, duration=0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOODRIVE_", "OTEL_"))}
    env |= {"KOODRIVE_BASE_URL": emu.base_url, "KOODRIVE_USER_ID": emu.user_id,
            "KOODRIVE_TOKEN": emu.token, "PYTHONWARNINGS": "error"}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *args], capture_output=True, text=True, timeout=60,
                              env=env | extra, check=False)

    quiet, verbose = run("wait", job_id, "--no-progress"), run("--verbose", "wait", job_id,
                                                               "--no-progress")
    by_env = run("get", job_id, KOODRIVE_LOG="debug")
    assert quiet.returncode == verbose.returncode == by_env.returncode == 0, verbose.stderr
    assert "DEBUG" not in quiet.stderr
    assert "DEBUG koodrive_async.http: GET GetJobDetail attempt 1: HTTP 200" in verbose.stderr
    assert f"DEBUG koodrive_async.wait: job {job_id}: poll 1: " in verbose.stderr
    assert "DEBUG koodrive_async.http: GET GetJobDetail attempt 1: HTTP 200" in by_env.stderr
    assert emu.token not in verbose.stderr + by_env.stderr
    bad = run("get", job_id, KOODRIVE_LOG="chatty")
    assert bad.returncode == 2 and "KOODRIVE_LOG must be one of" in bad.stderr
