"""The controls tests use on :class:`~koodrive_async.testing.KooDriveEmulator`, by subject.

``KooDriveEmulator`` is made of these and of its server; it sets up the state they read in
its constructor (the one place it is documented). The logic they front lives in parts of
its own: the jobs in ``_jobs``, the fault queue in ``_faults``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from koodrive_async.testing._clock import Clock
from koodrive_async.testing._faults import Fault, FaultMix, FaultQueue, FaultRule
from koodrive_async.testing._jobs import (
    PENDING,
    PROCESSING,
    EmulatedJob,
    JobDefaults,
    JobFile,
    make_files,
)


class JobControls:
    """Jobs: ``add_job``, ``cancel_job``, ``job_detail``, ``package_bytes``, ``jobs``."""

    # Set up by KooDriveEmulator.__init__.
    clock: Clock
    job_defaults: JobDefaults
    tenant_id: str
    user_id: str
    _jobs: dict[str, EmulatedJob]
    _next_id: int
    _lock: threading.Lock

    if TYPE_CHECKING:  # provided by KooDriveEmulator

        @property
        def started(self) -> bool: ...

        def server_time(self) -> float: ...

        def download_url(self, job_id: str) -> str: ...

    @property
    def jobs(self) -> Mapping[str, EmulatedJob]:
        """Every job by id, oldest first (read-only view)."""
        return MappingProxyType(self._jobs)

    def add_job(
        self,
        *,
        task_type: int = 1,
        action_type: int | None = None,
        files: int | Sequence[str | JobFile] = 1,
        failed_files: int = 0,
        duration: float | None = None,
        pending_for: float | None = None,
        cancel_after: float | None = None,
        user_id: str | None = None,
        container_id: str | None = "test-dst-container",
        src_container_id: str | None = "test-src-container",
        task_name: str | None = None,
        new_file_path: str | None = None,
        uncompress_paths: Sequence[str] = (),
        job_id: str | None = None,
    ) -> str:
        """Create a job directly, as if CreateJob had been called now.

        Args:
            task_type: 1 copy ... 5 decompression, 6 package download, 7 empty recycle bin.
            action_type: Optional ``actionType``.
            files: A number of generated files, or file ids / :class:`JobFile` objects. An
                id containing ``"fail"`` fails.
            failed_files: How many of the last files fail.
            duration: Seconds of processing (status 1); default from :attr:`job_defaults`.
            pending_for: Seconds pending (status 0) first; default from :attr:`job_defaults`.
            cancel_after: Cancel the job this many seconds after creation, if it is still
                running then; default from :attr:`job_defaults`.
            user_id: The owner; default :attr:`user_id`.
            container_id: ``containerId`` (the destination space).
            src_container_id: ``srcContainerId`` of each file.
            task_name: Optional ``taskName``.
            new_file_path: Destination folder for ``newFilePath``.
            uncompress_paths: For decompression, the paths to extract (default: a small tree).
            job_id: An explicit id; default the next counter value.

        Returns:
            The job id.

        Raises:
            ValueError: a bad count, or ``job_id`` already exists.
        """
        items = make_files(files, failed_files=failed_files, src_container_id=src_container_id)
        defaults = self.job_defaults
        with self._lock:
            if job_id is None:
                job_id = str(self._next_id)
                self._next_id += 1
            elif job_id in self._jobs:
                raise ValueError(f"job {job_id!r} already exists")
            self._jobs[job_id] = EmulatedJob(
                job_id=job_id,
                task_type=task_type,
                action_type=action_type,
                files=items,
                user_id=user_id or self.user_id,
                tenant_id=self.tenant_id,
                container_id=container_id,
                created_at=self.clock(),
                created_wall=self.server_time(),
                pending_for=defaults.pending_for if pending_for is None else pending_for,
                duration=defaults.duration(len(items)) if duration is None else duration,
                cancel_after=defaults.cancel_after if cancel_after is None else cancel_after,
                task_name=task_name,
                new_file_path=new_file_path,
                uncompress_paths=tuple(uncompress_paths),
            )
        return job_id

    def cancel_job(self, job_id: str) -> bool:
        """Cancel a job now, as CancelJob would.

        Returns:
            True if it was pending or processing (and is now canceled), else False.

        Raises:
            KeyError: no such job.
        """
        job = self._jobs[job_id]
        now = self.clock()
        if job.state(now).status not in (PENDING, PROCESSING):
            return False
        job.canceled_at = now
        return True

    def job_detail(self, job_id: str) -> dict[str, Any]:
        """The ``data`` GetJobDetail would answer for a job now.

        Raises:
            KeyError: no such job.
        """
        job = self._jobs[job_id]
        state = job.state(self.clock())
        ready = job.has_package(state) and self.started
        return job.detail(state, self.download_url(job_id) if ready else None)

    def package_bytes(self, job_id: str) -> bytes:
        """The exact zip the download route serves for a job (to compare a download with).

        Raises:
            KeyError: no such job.
        """
        return self._jobs[job_id].package(self.job_defaults.file_size)


class FaultControls:
    """Faults: ``inject``, ``clear_faults``, ``pending_faults``, ``fault_mix``."""

    # Set up by KooDriveEmulator.__init__.
    _faults: FaultQueue

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> FaultRule:
        """Queue a fault for the next matching requests, before normal handling.

        Queued faults are consumed in order: a request takes the first rule it matches.

        Args:
            fault: What to do, e.g. ``Fault.status(503)``.
            times: How many matching requests get it; None: every one until
                :meth:`clear_faults`.
            method: Match only this HTTP method.
            path: Match only this path (exact, or an ``fnmatch`` pattern such as
                ``/koodrive/ose/v1/*``). Without a path a fault matches any API request but
                never the download route; give the download path (:meth:`download_path`) to
                cut a download.

        Returns:
            The queued rule; its ``remaining`` counts down.
        """
        return self._faults.add(fault, times=times, method=method, path=path)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self._faults.clear()

    @property
    def pending_faults(self) -> tuple[FaultRule, ...]:
        """Queued faults not used up yet."""
        return self._faults.rules

    def fault_mix(
        self,
        *,
        seed: int,
        status_5xx: float = 0.0,
        rate_limited: float = 0.0,
        drop: float = 0.0,
        delay: float = 0.0,
        malformed: float = 0.0,
        delay_seconds: float = 0.05,
        retry_after: float | str | None = 0,
    ) -> FaultMix:
        """Give every API request without a queued fault a seeded random fault.

        Probabilities are per request and add up to at most 1; the same seed and the same
        request order give the same faults. Replaces any earlier mix.

        Args:
            seed: Seed of the random generator.
            status_5xx: Probability of a 500/502/503/504.
            rate_limited: Probability of a 429 with ``Retry-After: retry_after``.
            drop: Probability of a connection closed without an answer.
            delay: Probability of a normal answer after ``delay_seconds`` (real time).
            malformed: Probability of an HTTP 200 whose body is not a valid envelope.
            delay_seconds: Seconds of a delay.
            retry_after: ``Retry-After`` of a 429 (seconds, a verbatim string, or None).

        Returns:
            The mix now in use.
        """
        mix = FaultMix(
            seed=seed,
            status_5xx=status_5xx,
            rate_limited=rate_limited,
            drop=drop,
            delay=delay,
            malformed=malformed,
            delay_seconds=delay_seconds,
            retry_after=retry_after,
        )
        self._faults.mix = mix
        return mix

    def clear_fault_mix(self) -> None:
        """Stop random faults."""
        self._faults.mix = None
