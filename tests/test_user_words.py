"""The surface in the user's words: one meaning per word, enum names where an enum is taken."""

from __future__ import annotations

import socket
import time

import attrs
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
        # Retries 0.01 s apart at most: each lookup has room for a retry within its 0.5 s.
        async with kd.KooDriveClient(emulator.base_url, user_id=emulator.user_id,
                                     auth=kd.TokenAuth(emulator.token),
                                     retry=kd.RetryPolicy(initial_delay=0.01, max_delay=0.01),
                                     ) as client:
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


async def test_list_jobs_and_wait_for_jobs_refuse_bad_arguments_when_called(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    # At the call, not at the first iteration: the traceback points at the caller's line.
    with pytest.raises(ValueError, match="page_size"):
        client.list_jobs(page_size=0)
    with pytest.raises(ValueError, match="status must be one of"):
        client.list_jobs(status="running")
    with pytest.raises(ValueError, match=r"^stall_timeout"):
        client.wait_for_jobs(["1"], stall_timeout=-1)
    with pytest.raises(ValueError, match=r"^timeout"):
        client.wait_for_jobs(["1"], timeout=float("nan"))
    with pytest.raises(ValueError, match="max_waits"):
        client.wait_for_jobs(["1"], max_waits=0)
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


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [({"max_elapsed": None}, TypeError, "max_elapsed must be a number"),
     ({"max_attempts": 2.5}, TypeError, "max_attempts must be an int, not float"),
     ({"max_attempts": True}, TypeError, "max_attempts must be an int, not bool"),
     ({"initial_delay": "1"}, TypeError, "initial_delay must be a number"),
     ({"max_delay": float("nan")}, ValueError, "max_delay must be > 0"),
     ({"budget": -1}, ValueError, "budget must be >= 0"),
     ({"budget": 1.5}, TypeError, "budget must be an int or None")],
)
def test_retry_policy_validation_names_the_field_and_the_type(
    options: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        kd.RetryPolicy(**options)  # type: ignore[arg-type]


def test_retry_policy_shows_only_the_users_knobs() -> None:
    assert [f.name for f in attrs.fields(kd.RetryPolicy)] == [
        "max_attempts", "initial_delay", "multiplier", "max_delay", "max_elapsed",
        "max_retry_after", "budget"]


def test_no_private_class_in_what_a_user_sees() -> None:
    assert kd.KooDriveClient.__mro__ == (kd.KooDriveClient, object)
    with pytest.raises(TypeError, match=r"KooDriveClient\.__init__\(\) missing .*user_id"):
        kd.KooDriveClient("https://example.invalid", auth=kd.TokenAuth("t"))  # type: ignore[call-arg]
    for name in kd.__all__:
        value = getattr(kd, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert all(not c.__name__.startswith("_") for c in value.__mro__), value


async def test_a_connection_failure_is_a_public_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with kd.KooDriveClient(f"http://127.0.0.1:{port}", user_id="u",
                                 auth=kd.TokenAuth("t"),
                                 retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.ConnectError) as caught:
            await client.get_job("1")
    assert type(caught.value) is kd.ConnectError
    assert type(caught.value).__module__ == "koodrive_async.errors"


async def test_a_plain_function_is_a_token_provider(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job()
    async with make_client(emulator, vt, auth=kd.TokenAuth(lambda: emulator.token)) as client:
        detail = await client.get_job(job_id)
    assert detail.job_info is not None and detail.job_info.task_id == job_id


async def test_a_timeout_message_says_the_state_in_words(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=1000)
    async with make_client(emulator, vt) as client:
        with pytest.raises(kd.WaitTimeoutError) as caught:
            await client.wait_for_job(job_id, timeout=60)
    message = str(caught.value)
    assert "last seen: processing, " in message and " %" in message, message
    assert message.count(job_id) == 1, message


async def test_failed_polls_back_off_on_the_clients_one_curve(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    """rng=1.0 puts every jittered delay at its ceiling: 1, 2, 4 ... after failed polls."""
    job_id = emulator.add_job(duration=1000)
    emulator.inject(Fault.status(503), times=4)  # transient; get_job itself does not retry
    async with make_client(emulator, vt, retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.WaitTimeoutError):
            await client.wait_for_job(job_id, timeout=30,
                                      poll=kd.PollPolicy(initial_interval=0.5))
    assert vt.sleeps[:4] == [1.0, 2.0, 4.0, 8.0], vt.sleeps
