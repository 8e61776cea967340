"""The surface in the user's words: one meaning per word, enum names where an enum is taken."""

from __future__ import annotations

import time

import pytest

import koodrive_async as kd
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import VirtualTime, make_client


async def test_get_jobs_timeout_is_per_attempt_and_total_timeout_per_lookup() -> None:
    async with KooDriveEmulator() as emulator:
        ids = [emulator.add_job() for _ in range(4)]
        emulator.inject(Fault.delay(2.0), times=None)
        async with kd.KooDriveClient(emulator.base_url, user_id=emulator.user_id,
                                     auth=kd.TokenAuth(emulator.token),
                                     retry=kd.RetryPolicy.disabled()) as client:
            started = time.monotonic()
            outcomes = [o async for _, o in client.get_jobs(ids, timeout=0.2)]
            assert all(isinstance(o, kd.RequestTimeoutError) for o in outcomes), outcomes
            assert "within 0.2 s" in str(outcomes[0]), "the message names the attempt's limit"
            assert time.monotonic() - started < 1.5
        async with kd.KooDriveClient(emulator.base_url, user_id=emulator.user_id,
                                     auth=kd.TokenAuth(emulator.token)) as client:
            sent = len(emulator.requests)
            started = time.monotonic()
            outcomes = [o async for _, o in client.get_jobs(ids, timeout=0.2,
                                                            total_timeout=0.5)]
            assert all(isinstance(o, kd.RequestTimeoutError) for o in outcomes), outcomes
            assert time.monotonic() - started < 0.5 + 1.5
            assert len(emulator.requests) - sent > len(ids), "retried within total_timeout"
        emulator.clear_faults()


async def test_get_jobs_refuses_a_bad_timeout_at_once_naming_it(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    with pytest.raises(ValueError, match="total_timeout"):
        client.get_jobs(["1"], total_timeout=-1)
    with pytest.raises(ValueError, match=r"^timeout"):
        client.get_jobs(["1"], timeout=0)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("words", "wire"),
    [({"status": "processing"}, {"status": "1"}),
     ({"status": "PROCESSING"}, {"status": "1"}),
     ({"status": kd.JobStatus.COMPLETED}, {"status": "2"}),
     ({"status": 0}, {"status": "0"}),
     ({"task_type": "package-download"}, {"type": "6"}),
     ({"task_type": "Package_Download", "status": "canceled"}, {"type": "6", "status": "3"}),
     ({"task_type": 99}, {"type": "99"})],
)
async def test_list_jobs_takes_enum_names(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, words: dict[str, object],
    wire: dict[str, str],
) -> None:
    [info async for info in client.list_jobs(**words)]  # type: ignore[arg-type]
    sent = dict(emulator.requests[-1].query)
    for name, value in wire.items():
        assert sent.get(name) == value, (sent, wire)


async def test_a_bad_enum_name_is_a_value_error_naming_the_parameter_and_choices(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    with pytest.raises(ValueError, match=r"status must be one of pending, processing, "
                                         r"completed, canceled"):
        [info async for info in client.list_jobs(status="running")]
    with pytest.raises(ValueError, match="task_type must be one of copy"):
        await client.create_job("cpy", src_container_id="s", dst_container_id="d",
                                files=["f"])
    assert emulator.requests == []


async def test_create_job_takes_names(emulator: KooDriveEmulator, vt: VirtualTime) -> None:
    async with make_client(emulator, vt) as client:
        job_id = await client.create_job("delete", action_type="delete_to_recycle_bin",
                                         src_container_id="s", dst_container_id="d",
                                         files=[kd.FileRef("f1", "/a/f1")])
    body = emulator.requests[-1].json()
    assert body["taskType"] == int(kd.TaskType.DELETE)
    assert body["actionType"] == int(kd.ActionType.DELETE_TO_RECYCLE_BIN)
    assert job_id in emulator.jobs
