"""Durable waits on Temporal: a KooDrive wait that survives worker crashes and deploys.

Install the extra ``koodrive-async[temporal]``. One ``KooDriveClient`` per worker process::

    async with kd.KooDriveClient(base_url, user_id=..., auth=...) as client:
        worker = Worker(temporal_client, task_queue="koodrive",
                        workflows=[WaitForJobWorkflow],
                        activities=KooDriveActivities(client).all(),
                        workflow_runner=workflow_runner())
        await worker.run()

``workflow_runner()`` is Temporal's sandboxed runner with ``koodrive_async`` passed through.
Without it the sandbox imports koodrive_async, aiohttp and the rest afresh for every
workflow run (this module's, and any workflow module importing it at the top): measured
here, 100 WaitForJobWorkflow runs took 211 s on the default runner and 1.8 s on this one,
and a worker that busy misses its activities' heartbeats.

Inside any workflow, ``outcome = await wait_for_job(job_id, timeout=timedelta(hours=1))``
runs the activity ``koodrive.wait_for_job``: it heartbeats the wait's checkpoint state after
every poll and on a timer (a third of the heartbeat timeout, because the schedule may sleep
minutes between polls), and a retried attempt (the worker died, was redeployed, or a
transient failure ended the attempt) resumes from the last heartbeat, so polls and elapsed
time add up. Definitive errors (404, 400, a bad job id, malformed answers beyond the wait's
own tolerance, a failing callback) fail it without retries; running out of time is an
outcome (``"timeout"``), not an error. Cancelling the workflow cancels the wait, and sends
CancelJob when ``cancel_job_on_cancel=True`` (never on a worker's shutdown).

Creating a job from a workflow: CreateJob is not idempotent, so run it as your own activity
with a single attempt (``RetryPolicy(maximum_attempts=1)``), never retried by Temporal.
``KooDriveClient.create_job`` already retries only when the request certainly did not reach
the service. When it fails ambiguously (a ``TransportError`` after the request was sent: a
timeout, a dropped connection; or a 5xx), the job may or may not exist: reconcile in a
second, retryable activity that looks for it with ``list_jobs`` (same ``task_type``, a
``create_time`` after the attempt, then ``get_job`` to match its files or a unique
``new_file_path``), and create again only when it is certainly absent::

    @activity.defn(name="myapp.create_package")
    async def create_package(req: PackageRequest) -> str:
        try:
            return await client.create_job("package_download", src_container_id=req.space,
                                           dst_container_id=req.space, files=req.files)
        except kd.TransportError as exc:  # ambiguous: let the workflow reconcile
            raise ApplicationError(str(exc), type="AmbiguousCreate", non_retryable=True)

    # in the workflow
    try:
        job_id = await workflow.execute_activity(create_package, req,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=1))
    except ActivityError as err:
        job_id = await workflow.execute_activity(find_created_job, req, ...)  # list_jobs
    outcome = await wait_for_job(job_id, timeout=timedelta(hours=2))

The workflow side of this module imports koodrive_async through
``workflow.unsafe.imports_passed_through()``; the sandbox still re-imports the package
this module lives in unless the worker passes it through: hence ``workflow_runner()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

with workflow.unsafe.imports_passed_through():
    import koodrive_async as kd

__all__ = [
    "CANCEL_JOB",
    "WAIT_FOR_JOB",
    "CancelJobInput",
    "KooDriveActivities",
    "Outcome",
    "WaitForJobInput",
    "WaitForJobWorkflow",
    "WaitInput",
    "WaitOutcome",
    "wait_for_job",
    "workflow_runner",
]

#: Activity names, as registered on the worker.
WAIT_FOR_JOB = "koodrive.wait_for_job"
CANCEL_JOB = "koodrive.cancel_job"

Outcome = Literal["ok", "partially_failed", "failed", "canceled", "timeout"]

#: Added to the wait's timeout for one attempt: the last poll's grace and a CancelJob.
_ATTEMPT_MARGIN = timedelta(seconds=30)
#: Added to the wait's timeout for all attempts together: room for the retries' back-off.
_TOTAL_MARGIN = timedelta(seconds=60)
#: Seconds a CancelJob sent on cancellation may take.
_CANCEL_TIMEOUT = 10.0
#: Errors that no retry can fix: the activity fails at once.
_DEFINITIVE: tuple[type[kd.KooDriveError], ...] = (
    kd.NotFoundError,
    kd.BadRequestError,
    kd.InvalidJobIdError,
    kd.ResponseDecodeError,  # the wait already rode out its tolerance of malformed answers
    kd.CallbackError,
)

DEFAULT_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # unlimited: bounded by the schedule-to-close timeout
)


@dataclass(frozen=True)
class WaitInput:
    """The input of the activity ``koodrive.wait_for_job``.

    Attributes:
        job_id: The job to wait for.
        timeout: Seconds for the whole wait, all attempts together; None for no limit.
        poll: Seconds between polls (``PollPolicy.fixed``); None for the adaptive default.
        cancel_job_on_cancel: Send CancelJob when the workflow cancels the wait.
    """

    job_id: str
    timeout: float | None = 900.0
    poll: float | None = None
    cancel_job_on_cancel: bool = False


@dataclass(frozen=True)
class CancelJobInput:
    """The input of the activity ``koodrive.cancel_job``."""

    job_id: str


@dataclass(frozen=True)
class WaitOutcome:
    """How a job ended, as plain data for the workflow history.

    Attributes:
        job_id: The job waited on.
        outcome: "ok", "partially_failed", "failed", "canceled" or "timeout".
        download_url: The package's ``downloadUrl`` (package downloads), else None.
        polls: GetJobDetail answers over every attempt of the wait.
        elapsed: Seconds from the start of the wait to its end, dead time included.
        detail: The last JobDetail seen as wire JSON (``kd.to_wire``); None if none was.
    """

    job_id: str
    outcome: Outcome
    download_url: str | None = None
    polls: int = 0
    elapsed: float = 0.0
    detail: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Completed, and nothing failed."""
        return self.outcome == "ok"


def _resumable(details: Sequence[Any], job_id: str) -> dict[str, Any] | None:
    """The checkpoint state in a previous attempt's heartbeat details, if it is one for this
    job (a liveness beat carries none)."""
    if details and isinstance(details[-1], dict) and details[-1].get("job_id") == job_id:
        return details[-1]
    return None


def _app_error(exc: kd.KooDriveError) -> ApplicationError:
    """The ApplicationError that reports ``exc``: non-retryable when it is definitive."""
    info: dict[str, Any] = {"job_id": getattr(exc, "job_id", None)}
    if isinstance(exc, kd.APIError):
        info.update(http_status=exc.http_status, code=exc.code, trace_id=exc.trace_id)
    return ApplicationError(
        str(exc), info, type=type(exc).__name__, non_retryable=isinstance(exc, _DEFINITIVE)
    )


def _cancel_requested() -> bool:
    """Whether the running activity is cancelled because its workflow asked (not because the
    worker shuts down, or the attempt timed out)."""
    details_of = getattr(activity, "cancellation_details", None)  # temporalio >= 1.12
    if details_of is not None:
        details = details_of()
        return details is not None and details.cancel_requested and not details.worker_shutdown
    return not activity.is_worker_shutdown()


class KooDriveActivities:
    """KooDrive activities bound to one client, shared by every activity of the worker.

    Args:
        client: An open KooDriveClient; the caller opens and closes it around the worker.
    """

    def __init__(self, client: kd.KooDriveClient) -> None:
        self._client = client

    def all(self) -> list[Callable[..., Any]]:
        """The activities, for ``temporalio.worker.Worker(activities=...)``."""
        return [self.wait_for_job, self.cancel_job]

    @activity.defn(name=WAIT_FOR_JOB)
    async def wait_for_job(self, input: WaitInput) -> WaitOutcome:
        """Wait for a job, heartbeating its checkpoint state; resume a previous attempt's.

        Raises:
            ApplicationError: The wait failed: non-retryable for a definitive error
                (NotFoundError, BadRequestError, InvalidJobIdError, ResponseDecodeError,
                CallbackError), retryable otherwise.
        """
        info = activity.info()
        try:
            poll = None if input.poll is None else kd.PollPolicy.fixed(input.poll)
        except (TypeError, ValueError) as exc:
            raise ApplicationError(str(exc), type="ValueError", non_retryable=True) from exc
        state = _resumable(info.heartbeat_details, input.job_id)
        last: list[dict[str, Any]] = [] if state is None else [state]

        def checkpoint(new: dict[str, Any]) -> None:
            last[:] = [new]
            activity.heartbeat(new)

        beats = None
        if info.heartbeat_timeout is not None:
            every = max(info.heartbeat_timeout.total_seconds() / 3, 0.05)
            beats = asyncio.create_task(_beat(every, last))
        timeout = input.timeout
        if timeout is not None and info.attempt > 1:  # the budget is for all attempts
            spent = time.time() - info.scheduled_time.timestamp()
            timeout = max(timeout - max(spent, 0.0), 0.0)
        try:
            try:
                result = await self._client.wait_for_job(
                    input.job_id, timeout=timeout, poll=poll, on_checkpoint=checkpoint,
                    resume=state,
                )
            except ValueError as exc:
                if state is None or isinstance(exc, kd.KooDriveError):
                    raise
                activity.logger.warning("heartbeat state refused (%s): waiting afresh", exc)
                last.clear()
                result = await self._client.wait_for_job(
                    input.job_id, timeout=timeout, poll=poll, on_checkpoint=checkpoint,
                )
        except kd.WaitTimeoutError as exc:
            saved = exc.state or {}
            return WaitOutcome(
                job_id=input.job_id, outcome="timeout",
                polls=int(saved.get("polls", 0)), elapsed=float(saved.get("elapsed", 0.0)),
                detail=None if exc.last is None else kd.to_wire(exc.last),
            )
        except kd.KooDriveError as exc:
            raise _app_error(exc) from exc
        except asyncio.CancelledError:
            if input.cancel_job_on_cancel and _cancel_requested():
                await asyncio.shield(self._cancel_quietly(input.job_id))
            raise
        finally:
            if beats is not None:
                beats.cancel()
        return WaitOutcome(
            job_id=result.job_id, outcome=result.outcome, download_url=result.download_url,
            polls=result.polls, elapsed=result.elapsed, detail=kd.to_wire(result.detail),
        )

    @activity.defn(name=CANCEL_JOB)
    async def cancel_job(self, input: CancelJobInput) -> None:
        """Cancel a job (CancelJob).

        Raises:
            ApplicationError: non-retryable when the job does not exist or can no longer be
                canceled (NotFoundError, BadRequestError), retryable otherwise.
        """
        try:
            await self._client.cancel_job(input.job_id)
        except kd.KooDriveError as exc:
            raise _app_error(exc) from exc

    async def _cancel_quietly(self, job_id: str) -> None:
        try:
            await self._client.cancel_job(job_id, total_timeout=_CANCEL_TIMEOUT)
        except kd.KooDriveError as exc:  # already ended, or unreachable: nothing more to do
            activity.logger.warning("job %s: CancelJob on cancellation failed: %s", job_id, exc)


async def _beat(every: float, last: list[dict[str, Any]]) -> None:
    """Heartbeat the last state every ``every`` seconds, so that a long sleep between polls
    neither times the attempt out nor delays a cancellation."""
    while True:
        await asyncio.sleep(every)
        activity.heartbeat(*last)


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def wait_for_job(
    job_id: str,
    *,
    timeout: timedelta | float | None,
    heartbeat_timeout: timedelta = timedelta(seconds=30),
    poll: timedelta | float | None = None,
    task_queue: str | None = None,
    cancel_job_on_cancel: bool = False,
    retry_policy: RetryPolicy | None = None,
) -> WaitOutcome:
    """Wait for a KooDrive job from inside a workflow (runs ``koodrive.wait_for_job``).

    Args:
        job_id: The job to wait for.
        timeout: The whole wait, all attempts together (a timedelta or seconds); None for
            no limit. Running out is the outcome "timeout".
        heartbeat_timeout: How long a silent attempt lives before Temporal retries it
            elsewhere; the activity heartbeats every third of it.
        poll: A fixed interval between polls; None for the adaptive PollPolicy.
        task_queue: The activity's task queue; default the workflow's.
        cancel_job_on_cancel: Cancelling the workflow sends CancelJob (and waits for it).
        retry_policy: For transient failures; default ``DEFAULT_RETRY_POLICY``.

    Returns:
        The WaitOutcome.

    Raises:
        temporalio.exceptions.ActivityError: The wait failed; its cause is the
            ApplicationError (type: the KooDriveError's class name).
    """
    seconds = None if timeout is None else _seconds(timeout)
    budget = None if seconds is None else timedelta(seconds=seconds)
    result: WaitOutcome = await workflow.execute_activity(
        WAIT_FOR_JOB,
        WaitInput(
            job_id=job_id, timeout=seconds, poll=None if poll is None else _seconds(poll),
            cancel_job_on_cancel=cancel_job_on_cancel,
        ),
        result_type=WaitOutcome,
        task_queue=task_queue,
        start_to_close_timeout=None if budget is None else budget + _ATTEMPT_MARGIN,
        schedule_to_close_timeout=None if budget is None else budget + _TOTAL_MARGIN,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy or DEFAULT_RETRY_POLICY,
        cancellation_type=(
            workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
            if cancel_job_on_cancel else workflow.ActivityCancellationType.TRY_CANCEL
        ),
    )
    return result


def workflow_runner(restrictions: SandboxRestrictions | None = None) -> SandboxedWorkflowRunner:
    """Temporal's sandboxed workflow runner with ``koodrive_async`` passed through.

    Pass it as ``Worker(workflow_runner=...)`` on every worker that runs WaitForJobWorkflow
    or a workflow calling ``wait_for_job``: the sandbox then shares the worker's imported
    koodrive_async (its workflow side is deterministic: it only schedules activities)
    instead of importing it, aiohttp included, afresh for every workflow run.

    Args:
        restrictions: Your own sandbox restrictions to extend; default Temporal's.
    """
    base = SandboxRestrictions.default if restrictions is None else restrictions
    return SandboxedWorkflowRunner(restrictions=base.with_passthrough_modules("koodrive_async"))


@dataclass(frozen=True)
class WaitForJobInput:
    """The input of WaitForJobWorkflow: the arguments of ``wait_for_job``, in seconds."""

    job_id: str
    timeout: float | None = 900.0
    heartbeat_timeout: float = 30.0
    poll: float | None = None
    task_queue: str | None = None
    cancel_job_on_cancel: bool = False


@workflow.defn(name="KooDriveWaitForJob")
class WaitForJobWorkflow:
    """A ready-made workflow: wait for one job, return its WaitOutcome."""

    @workflow.run
    async def run(self, input: WaitForJobInput) -> WaitOutcome:
        """Run ``wait_for_job`` for ``input.job_id``."""
        return await wait_for_job(
            input.job_id, timeout=input.timeout,
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout),
            poll=input.poll, task_queue=input.task_queue,
            cancel_job_on_cancel=input.cancel_job_on_cancel,
        )
