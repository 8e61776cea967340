"""An in-process KooDrive batch-task API emulator for tests and demos (the moto of KooDrive).

```python
from koodrive_async.testing import Fault, KooDriveEmulator, ManualClock

clock = ManualClock()
async with KooDriveEmulator(clock=clock) as emu:
    job_id = emu.add_job(task_type=6, files=3)
    emu.inject(Fault.status(503), times=2)
    ...  # point a client at emu.base_url with emu.token and emu.user_id, and give it
    ...  # clock=clock, sleep=clock.sleep: its waits then advance the clock (virtual time)
```

From synchronous code: ``with KooDriveEmulator().run_in_thread() as emu: ...``; in pytest,
the ``koodrive_emulator`` fixture. Standalone: ``python -m koodrive_async.testing``.
"""

from koodrive_async.testing._clock import Clock, ManualClock
from koodrive_async.testing._emulator import KooDriveEmulator, RecordedRequest
from koodrive_async.testing._faults import Fault, FaultKind, FaultMix, FaultRule
from koodrive_async.testing._jobs import EmulatedJob, JobDefaults, JobFile, JobState
from koodrive_async.testing._serve import main as serve_emulator
from koodrive_async.testing._wire import (
    BAD_REQUEST,
    FILE_NOT_FOUND,
    GATEWAY_THROTTLED,
    INTERNAL_ERROR,
    JOB_NOT_CANCELABLE,
    JOB_NOT_FOUND,
    PARAMETER_INVALID,
    UNAUTHORIZED,
)

__all__ = [
    "BAD_REQUEST",
    "FILE_NOT_FOUND",
    "GATEWAY_THROTTLED",
    "INTERNAL_ERROR",
    "JOB_NOT_CANCELABLE",
    "JOB_NOT_FOUND",
    "PARAMETER_INVALID",
    "UNAUTHORIZED",
    "Clock",
    "EmulatedJob",
    "Fault",
    "FaultKind",
    "FaultMix",
    "FaultRule",
    "JobDefaults",
    "JobFile",
    "JobState",
    "KooDriveEmulator",
    "ManualClock",
    "RecordedRequest",
    "serve_emulator",
]
