"""The real ``koodrive-async`` console script, run as a subprocess against the emulator.

Subprocess start-up is the main cost (about 0.4 s each), so each test groups the assertions
of one command. The emulator runs in a background thread (the ``koodrive_emulator`` fixture)
with jobs of a fraction of a second and credentials that are easy to spot in any output.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import koodrive_async as kd
from koodrive_async.cli._download import safe_name
from koodrive_async.testing import Fault, JobDefaults, KooDriveEmulator

ROOT = Path(__file__).parent.parent
SCRIPT = shutil.which("koodrive-async", path=str(Path(sys.executable).parent))
TOKEN = "tok-SECRET-7f3a9c"
APP_SECRET = "app-SECRET-51d0e2"
SECRETS = (TOKEN, APP_SECRET)

pytestmark = pytest.mark.skipif(SCRIPT is None, reason="koodrive-async is not installed")


@pytest.fixture
def koodrive_emulator_options() -> dict[str, Any]:
    return {
        "token": TOKEN,
        "app_secret": APP_SECRET,
        "job_defaults": JobDefaults(
            pending_for=0.05, base_duration=0.15, per_file_duration=0.02, file_size=64 * 1024
        ),
    }


class Run:
    """Runs the console script; keeps every output to check that no secret leaked."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.outputs: list[str] = []

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        assert SCRIPT is not None
        done = subprocess.run(
            [SCRIPT, *args], capture_output=True, text=True, timeout=60, check=False,
            env=self.env if env is None else env, input=stdin, cwd=cwd,
        )
        self.outputs += [done.stdout, done.stderr]
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def check_no_secret(self) -> None:
        for output in self.outputs:
            for secret in SECRETS:
                assert secret not in output


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOODRIVE_")}
    env.pop("NO_COLOR", None)
    env["PYTHONWARNINGS"] = "error"  # an unclosed session or an unawaited coroutine fails
    return env


@pytest.fixture
def emu(koodrive_emulator: KooDriveEmulator) -> KooDriveEmulator:
    return koodrive_emulator


@pytest.fixture
def cli(emu: KooDriveEmulator) -> Iterator[Run]:
    env = base_env() | {
        "KOODRIVE_BASE_URL": emu.base_url,
        "KOODRIVE_USER_ID": emu.user_id,
        "KOODRIVE_TOKEN": TOKEN,
    }
    run = Run(env)
    yield run
    run.check_no_secret()


def lines_json(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- configuration and usage -----------------------------------------------------------------


def test_missing_settings_and_usage_errors_are_one_line_and_exit_2() -> None:
    run = Run(base_env())
    env = base_env() | {"KOODRIVE_BASE_URL": "http://127.0.0.1:9", "KOODRIVE_USER_ID": "u"}
    app = env | {"KOODRIVE_APP_SECRET": APP_SECRET, "KOODRIVE_APP_ID": "app"}
    cases: list[tuple[tuple[str, ...], dict[str, str] | None]] = [
        (("get", "1"), None),
        (("get", "1", "--base-url", "http://127.0.0.1:9"), None),
        (("wait", "1"), env),
        (("list", "--app-id", "app"), env),
        (("cancel", "../jobs"), app),
        (("frobnicate",), None),
        (("wait",), env),
        (("--help",), None),
    ]
    # Independent runs: in parallel, as start-up is most of their cost.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: run(*case[0], env=case[1]), cases))
    no_url, no_user, no_token, no_secret, bad_id, bad_command, no_id, usage = results
    assert no_url.returncode == 2
    assert no_url.stderr == "error: no base URL: pass --base-url or set KOODRIVE_BASE_URL\n"
    assert (no_user.returncode, no_user.stderr.count("\n")) == (2, 1)
    assert "--user-id" in no_user.stderr and "KOODRIVE_USER_ID" in no_user.stderr
    assert no_token.returncode == 2
    assert "--token" in no_token.stderr and "KOODRIVE_TOKEN" in no_token.stderr
    assert no_secret.returncode == 2 and "KOODRIVE_APP_SECRET" in no_secret.stderr
    assert bad_id.returncode == 2 and "invalid job id" in bad_id.stderr
    assert bad_command.returncode == 2 and no_id.returncode == 2
    assert usage.returncode == 0 and "exit codes" in usage.stdout
    run.check_no_secret()


def test_the_library_imports_without_rich_and_the_cli_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['rich'] = None\n"
        "import koodrive_async, koodrive_async.testing\n"
        "from koodrive_async.cli import main\n"
        "sys.exit(main(['list']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith("pip install 'koodrive-async[cli]'")


def test_the_event_loop_is_uvloop_when_installed_and_koodrive_event_loop_says_otherwise(
    cli: Run, emu: KooDriveEmulator, tmp_path: Path
) -> None:
    if sys.platform != "win32":  # the dev extra installs it wherever uvloop exists
        assert importlib.util.find_spec("uvloop") is not None
    job_id = emu.add_job(pending_for=0, duration=0)
    # A uvloop that cannot be imported, first on the path: as if it were not installed.
    absent = tmp_path / "no-uvloop"
    (absent / "uvloop").mkdir(parents=True)
    (absent / "uvloop" / "__init__.py").write_text("raise ImportError('not installed')\n")
    without = cli.env | {"PYTHONPATH": str(absent)}
    runs = {
        name: cli("--verbose", "get", job_id, env=env)
        for name, env in {
            "auto": cli.env,
            "asyncio": cli.env | {"KOODRIVE_EVENT_LOOP": "asyncio"},
            "uvloop": cli.env | {"KOODRIVE_EVENT_LOOP": " UVLoop "},
            "auto, absent": without,
        }.items()
    }
    for name, done in runs.items():
        assert done.returncode == 0, (name, done.stderr)
    assert "event loop: uvloop.Loop" in runs["auto"].stderr
    assert "event loop: uvloop.Loop" in runs["uvloop"].stderr
    assert "event loop: asyncio." in runs["asyncio"].stderr
    assert "event loop: asyncio." in runs["auto, absent"].stderr
    required = cli("get", job_id, env=without | {"KOODRIVE_EVENT_LOOP": "uvloop"})
    assert required.returncode == 2
    assert required.stderr == (
        "error: KOODRIVE_EVENT_LOOP=uvloop, but uvloop is not installed: "
        "pip install 'koodrive-async[speedups]'\n"
    )
    unknown = cli("get", job_id, env=cli.env | {"KOODRIVE_EVENT_LOOP": "tokio"})
    assert unknown.returncode == 2
    assert "KOODRIVE_EVENT_LOOP must be one of auto, asyncio, uvloop, not 'tokio'" in (
        unknown.stderr
    )
    assert unknown.stdout == required.stdout == ""


# -- get, list ---------------------------------------------------------------------------------


def test_get_and_list(cli: Run, emu: KooDriveEmulator) -> None:
    package = emu.add_job(task_type=6, files=3, pending_for=0, duration=0)
    copy = emu.add_job(task_type=1, files=["a", "b", "fail-c"], pending_for=0, duration=0)
    running = emu.add_job(task_type=3, files=2, pending_for=0, duration=60)

    done = cli("get", package, copy, running, "--json")
    assert done.returncode == 0, done.stderr
    docs = lines_json(done.stdout)
    assert [d["jobId"] for d in docs] == [package, copy, running]
    assert docs[0]["jobInfo"]["downloadUrl"] == emu.download_url(package)
    assert docs[1]["jobInfo"]["taskResultCode"] == 2
    assert [t["status"] for t in docs[1]["taskInfos"]] == ["1", "1", "2"]
    assert docs[2]["jobInfo"]["status"] == 1

    done = cli("get", package, copy, "999")
    assert done.returncode == 1
    assert f"job {package}" in done.stdout and "package download (6)" in done.stdout
    assert "partially failed (2)" in done.stdout and "fail-c" in done.stdout
    assert done.stderr.strip().startswith("error: job 999: HTTP 404")

    done = cli("list", "--json")
    assert done.returncode == 0
    assert {d["taskId"] for d in lines_json(done.stdout)} == {package, copy, running}
    done = cli("list", "--type", "package", "--status", "completed")
    assert done.returncode == 0
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["JOB", "TYPE", "STATUS", "PROGRESS", "RESULT", "CREATED"]
    assert [r.split()[0] for r in rows] == [package]
    assert "package download" in rows[0] and "completed" in rows[0]
    assert cli("list", "--status", "sleeping").returncode == 2

    # App authentication instead of a token; still no secret in any output.
    env = {k: v for k, v in cli.env.items() if k != "KOODRIVE_TOKEN"}
    done = cli("get", package, "--app-id", emu.app_id, env=env | {
        "KOODRIVE_APP_SECRET": APP_SECRET})
    assert done.returncode == 0 and "completed (2)" in done.stdout


# -- wait ----------------------------------------------------------------------------------------


def test_wait_outcomes_json_and_exit_codes(cli: Run, emu: KooDriveEmulator) -> None:
    ok = emu.add_job(task_type=6, files=2, duration=0.2)
    partial = emu.add_job(task_type=1, files=3, failed_files=1, duration=0.2)
    canceled = emu.add_job(task_type=3, files=2, duration=5, cancel_after=0.2)

    done = cli("wait", ok, "--poll", "0.05")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split()[:2] == ["JOB", "OUTCOME"]
    assert row.split()[:3] == [ok, "ok", "2/0"] and row.endswith(emu.download_url(ok))

    done = cli("wait", ok, partial, canceled, "--json", "--poll", "0.05")
    assert done.returncode == 4
    docs = {d["jobId"]: d for d in lines_json(done.stdout)}
    assert [d["outcome"] for d in docs.values()] == ["ok", "partially failed", "canceled"]
    assert docs[ok]["downloadUrl"] == emu.download_url(ok)
    assert docs[partial]["failed"] == 1 and docs[partial]["failedFiles"][0]["fileId"] == "file-3"
    assert docs[canceled]["status"] == 3

    slow = emu.add_job(task_type=1, files=1, duration=30)
    done = cli("wait", slow, "--timeout", "0.3", "--cancel-on-exit", "--json")
    assert done.returncode == 3
    (doc,) = lines_json(done.stdout)
    assert doc["outcome"] == "timeout" and doc["error"]["type"] == "WaitTimeoutError"
    assert emu.jobs[slow].canceled_at is not None  # --cancel-on-exit sent CancelJob

    done = cli("wait", ok, "12345", "--poll", "0.05")
    assert done.returncode == 1
    assert "error" in done.stdout.splitlines()[2] and "HTTP 404" in done.stdout


def test_ctrl_c_stops_the_wait_and_cancels_the_remote_job(cli: Run, emu: KooDriveEmulator) -> None:
    slow = emu.add_job(task_type=1, files=1, duration=30)
    assert SCRIPT is not None
    child = subprocess.Popen(
        [SCRIPT, "wait", slow, "--cancel-on-exit", "--poll", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env,
    )
    try:
        eventually(lambda: any(r.path.endswith(slow) for r in emu.requests))
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert "Traceback" not in err and err.strip().endswith("interrupted")
    assert emu.jobs[slow].canceled_at is not None


# -- create, cancel ----------------------------------------------------------------------------


def test_create_every_task_type(cli: Run, emu: KooDriveEmulator) -> None:
    def create(*args: str, **options: Any) -> str:
        done = cli("create", *args, **options)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    copy = create("copy", "--src", "s1", "--dst", "s2", "f1", "f2:/docs/b.txt", "--to", "/bak")
    body = emu.jobs[copy].request_body
    assert body is not None and body["taskType"] == 1 and body["actionType"] == 101
    assert body["dstContainerId"] == "s2" and body["taskInfo"]["newFilePath"] == "/bak"
    assert body["taskInfo"]["fileInfo"] == [
        {"fileId": "f1"}, {"fileId": "f2", "filePath": "/docs/b.txt"}]
    move = create("move", "--src", "s1", "f1:/a", "--to", "/b")
    assert emu.jobs[move].request_body["actionType"] == 301  # type: ignore[index]
    assert emu.jobs[move].request_body["dstContainerId"] == "s1"  # type: ignore[index]
    trash = create("delete", "--src", "s1", "f1:/a.txt")
    assert emu.jobs[trash].request_body["actionType"] == 201  # type: ignore[index]
    gone = create("2", "--src", "s1", "f1", "--permanent")
    assert emu.jobs[gone].request_body["actionType"] == 202  # type: ignore[index]
    restore = create("restore", "--src", "s1", "f1")
    assert emu.jobs[restore].task_type == 4
    unzip = create(
        "decompress", "--src", "s1", "zip1:/in/a.zip", "--extract", "docs/x.txt",
        "--password-stdin", stdin="zip-SECRET-pw\n",
    )
    body = emu.jobs[unzip].request_body
    assert body is not None and body["actionType"] == 503 and body["password"] == "zip-SECRET-pw"
    assert body["taskInfo"]["uncompressFilePaths"] == ["docs/x.txt"]
    empty = create("empty-recycle-bin", "--src", "s1")
    assert emu.jobs[empty].request_body["actionType"] == 701  # type: ignore[index]

    done = cli("create", "package", "--src", "s1", "r1:/q1.pdf", "r2", "--wait", "--json",
               "--poll", "0.05")
    assert done.returncode == 0, done.stderr
    (doc,) = lines_json(done.stdout)
    assert doc["outcome"] == "ok" and doc["downloadUrl"] == emu.download_url(doc["jobId"])
    assert "created job" in done.stderr

    done = cli("create", "copy", "--src", "s1", "ok", "fail-1", "--wait", "--poll", "0.05")
    assert done.returncode == 4 and "partially failed" in done.stdout

    done = cli("create", "delete", "--src", "s1", "f1")  # the recycle bin needs paths
    assert done.returncode == 2 and "FILE_ID:/path" in done.stderr
    assert cli("create", "teleport", "--src", "s1", "f").returncode == 2
    for output in cli.outputs:
        assert "zip-SECRET-pw" not in output


def test_cancel(cli: Run, emu: KooDriveEmulator) -> None:
    running = emu.add_job(task_type=1, files=1, duration=30)
    done = cli("cancel", running)
    assert (done.returncode, done.stdout) == (0, f"canceled {running}\n")
    assert emu.jobs[running].canceled_at is not None
    done = cli("cancel", running, "--json")
    assert done.returncode == 1
    (doc,) = lines_json(done.stdout)
    assert doc["canceled"] is False and doc["error"]["httpStatus"] == 400
    assert done.stderr.startswith(f"error: job {running}: HTTP 400")


def test_cancel_goes_on_past_a_failure_and_the_most_serious_code_wins(
    cli: Run, emu: KooDriveEmulator
) -> None:
    first, second = (emu.add_job(task_type=1, files=1, duration=30) for _ in range(2))
    done = cli("cancel", "12345", first, "../x", second)  # unknown (1), ok, invalid (2), ok
    assert done.returncode == 1, done.stderr
    assert emu.jobs[first].canceled_at is not None and emu.jobs[second].canceled_at is not None
    assert done.stdout == f"canceled {first}\ncanceled {second}\n"


def test_the_most_serious_exit_code_wins_1_then_2_then_3_then_4(
    cli: Run, emu: KooDriveEmulator
) -> None:
    def slow() -> str:
        return emu.add_job(task_type=1, files=1, duration=30)

    def canceled() -> str:
        return emu.add_job(task_type=3, files=2, duration=5, cancel_after=0.1)

    options = ("--timeout", "1", "--poll", "0.05")
    assert cli("wait", canceled(), slow(), *options).returncode == 3  # 3 over 4
    assert cli("wait", slow(), "../x", canceled(), *options).returncode == 2  # 2 over 3, 4
    assert cli("wait", "../x", "12345", slow(), *options).returncode == 1  # 1 over 2, 3


# -- download ----------------------------------------------------------------------------------


def test_download_resumes_after_an_interruption(
    cli: Run, emu: KooDriveEmulator, tmp_path: Path
) -> None:
    job = emu.add_job(task_type=6, files=4, pending_for=0, duration=0.3)
    package = emu.package_bytes(job)
    cut = len(package) // 3
    emu.inject(Fault.truncate(cut), path=emu.download_path(job))

    # The wait comes first (the job is still packaging); the cut download fails ...
    done = cli("download", job, "-o", str(tmp_path), "--retries", "0", "--poll", "0.05")
    assert done.returncode == 1, done.stderr
    assert "run the same command again to resume" in done.stderr
    assert not (tmp_path / "package.zip").exists()
    (part,) = tmp_path.glob(".*.koodrive-part")
    assert part.read_bytes() == package[:cut]

    # ... and running it again resumes where it stopped, with a Range request.
    done = cli("download", job, "-o", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "package.zip").read_bytes() == package
    assert emu.download_requests[-1].headers["Range"] == f"bytes={cut}-"
    (doc,) = lines_json(done.stdout)
    assert doc["resumedFrom"] == cut and doc["size"] == len(package)
    assert not list(tmp_path.glob(".*koodrive-part*"))

    # An existing file is kept unless --force.
    done = cli("download", job, "-o", str(tmp_path))
    assert done.returncode == 2 and "--force" in done.stderr
    done = cli("download", job, "-o", str(tmp_path), "--force")
    assert done.returncode == 0 and done.stdout.strip() == str(tmp_path / "package.zip")

    # Within one run, an interruption is resumed at once; a URL needs no configuration.
    emu.inject(Fault.truncate(1000), path=emu.download_path(job))
    before = len(emu.download_requests)
    done = cli("download", emu.download_url(job), "-o", str(tmp_path / "again.zip"),
               env=base_env())
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again.zip").read_bytes() == package
    assert [r.headers.get("Range") for r in emu.download_requests[before:]] == [
        None, "bytes=1000-"]

    copy = emu.add_job(task_type=1, files=1, pending_for=0, duration=0)
    done = cli("download", copy, "-o", str(tmp_path))
    assert done.returncode == 2 and "only package downloads" in done.stderr
    canceled = emu.add_job(task_type=6, files=1, duration=30, cancel_after=0.05)
    done = cli("download", canceled, "-o", str(tmp_path), "--poll", "0.05")
    assert done.returncode == 4 and "canceled" in done.stderr


def test_safe_names_cannot_leave_the_directory() -> None:
    assert safe_name("../../etc/passwd", "x") == "passwd"
    assert safe_name("..\\..\\win.ini", "x") == "win.ini"
    assert safe_name("/abs/path/report.zip", "x") == "report.zip"
    assert safe_name("..", "fallback") == "fallback"
    assert safe_name(".hidden", "x") == "hidden"
    assert safe_name("a\x00b\nc.zip", "x") == "abc.zip"
    assert safe_name("", "fallback") == "fallback"
    assert len(safe_name("a" * 500 + ".zip", "x")) == 200


# -- emulator, demo --------------------------------------------------------------------------


def test_emulator_command_serves_and_prints_its_credentials() -> None:
    assert SCRIPT is not None
    child = subprocess.Popen(
        [SCRIPT, "emulator", "--port", "0", "--token", "emu-token"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base_env(),
    )
    try:
        assert child.stdout is not None
        banner = []
        for _ in range(30):
            line = child.stdout.readline()
            banner.append(line)
            if not line or line.startswith("Press Ctrl-C"):
                break
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in banner if line.strip().startswith("export ")
        )
        assert exports["KOODRIVE_TOKEN"] == "emu-token"
        done = Run(base_env() | exports)("list", "--json")
        assert (done.returncode, done.stdout) == (0, "")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "stopped" in out


def test_demo_runs_on_the_embedded_emulator() -> None:
    started = time.monotonic()
    done = Run(base_env())("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    assert "demo finished: every job ended as planned" in done.stderr
    assert "zip integrity ok" in done.stderr
    outcomes = [line.split()[1] for line in done.stdout.splitlines()[1:10]]
    assert sorted(set(outcomes)) == ["canceled", "ok", "partially"]


# -- the bars, in a pseudo-terminal ----------------------------------------------------------


def _capture_module() -> Any:
    spec = importlib.util.spec_from_file_location("capture_demo", ROOT / "scripts" /
                                                  "capture_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wait_draws_live_bars_in_a_terminal(cli: Run, emu: KooDriveEmulator) -> None:
    capture = _capture_module()
    first = emu.add_job(task_type=6, files=2, pending_for=0, duration=1.0)
    second = emu.add_job(task_type=1, files=2, failed_files=1, pending_for=0, duration=0.6)
    assert SCRIPT is not None
    status, raw = capture.run_in_pty(
        [SCRIPT, "wait", first, second, "--poll", "0.1"], width=120, env=cli.env
    )
    cli.outputs.append(raw)
    assert status == 4
    assert "\x1b[" in raw  # drawn by rich, with colours and cursor moves
    screen = capture.render(raw, 120)
    bars = [line for line in screen.splitlines() if "━" in line]
    assert any(line.startswith(first) and "100%" in line and "ok" in line for line in bars)
    assert any(line.startswith(second) and "partially failed" in line for line in bars)
    assert any(line.startswith("all 2 jobs") and "2/2 ended" in line for line in bars)
    # Intermediate frames were drawn: a percentage below 100 went by.
    assert any(f"{p:>3}%" in raw for p in range(1, 100))
    # The summary table follows; rich folds the long URL over two lines.
    assert "OUTCOME" in screen and emu.download_url(first) in "".join(screen.split())


# -- the user's words (issue 10) -------------------------------------------------------------

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused command printed on stderr, nothing on stdout."""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert done.stdout == "", done.stdout
    return done.stderr.strip()


def test_global_flags_go_before_or_after_the_command(cli: Run, emu: KooDriveEmulator) -> None:
    job = emu.add_job(task_type=6, files=2, pending_for=0, duration=0)
    before, after = cli("--json", "list"), cli("list", "--json")
    assert before.returncode == after.returncode == 0, before.stderr
    assert before.stdout == after.stdout and lines_json(before.stdout)[0]["taskId"] == job

    # Options that take a value, before the command: the command is found after them.
    env = {k: v for k, v in cli.env.items() if k != "KOODRIVE_BASE_URL"}
    done = cli("--base-url", emu.base_url, "--json", "get", job, env=env)
    assert done.returncode == 0, done.stderr
    assert lines_json(done.stdout)[0]["jobId"] == job
    done = cli("--no-progress", "--json", "wait", job, "--poll", "0.05")
    assert done.returncode == 0 and lines_json(done.stdout)[0]["outcome"] == "ok"

    # A global option the command does not take is still a usage error, before or after.
    assert cli("--json", "demo").returncode == 2
    assert cli("demo", "--json").returncode == 2
    # The top-level help lists them, and says where they go.
    usage = cli("--help")
    assert usage.returncode == 0
    assert "--json" in usage.stdout and "--base-url" in usage.stdout
    assert "before or after the" in usage.stdout


def test_every_command_and_argument_has_a_description() -> None:
    from koodrive_async.cli._parser import build_parser

    parser, commands = build_parser()
    missing = []
    for name, command in [("", parser), *commands.items()]:
        if name and not command.description:
            missing.append(f"{name}: no description")
        for action in command._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name or 'koodrive-async'} {action.dest}: no help")
    assert missing == []
    # The emulator's own parser, which `emulator --help` shows.
    from koodrive_async.testing._serve import parser as emulator_parser

    assert all(action.help for action in emulator_parser()._actions)

    run = Run(base_env())
    done = run("wait", "--help")
    assert done.returncode == 0
    words = " ".join(done.stdout.split())
    assert "reads job ids from standard input" in words and "PollPolicy.fixed" in words


def test_wait_and_get_read_job_ids_from_stdin(cli: Run, emu: KooDriveEmulator) -> None:
    first = emu.add_job(task_type=6, files=1, pending_for=0, duration=0)
    second = emu.add_job(task_type=1, files=2, pending_for=0, duration=0.1)
    third = emu.add_job(task_type=3, files=1, pending_for=0, duration=0)

    done = cli("get", "-", "--json", stdin=f"\n{first}\n\n  {second}  \n\n")
    assert done.returncode == 0, done.stderr
    assert [d["jobId"] for d in lines_json(done.stdout)] == [first, second]

    # Mixed with ids on the command line, in order, each once.
    done = cli("get", third, "-", "--json", stdin=f"{first}\n{third}\n")
    assert [d["jobId"] for d in lines_json(done.stdout)] == [third, first]

    done = cli("wait", "-", "--json", "--poll", "0.05", stdin=f"{first}\n{second}\n")
    assert done.returncode == 0, done.stderr
    docs = lines_json(done.stdout)
    assert [(d["jobId"], d["outcome"]) for d in docs] == [(first, "ok"), (second, "ok")]

    served = len(emu.requests)
    for command in ("get", "wait"):
        empty = cli(command, "-", stdin="\n  \n")
        assert empty.returncode == 2
        assert one_error_line(empty) == "error: job id -: no job ids on standard input"
    assert len(emu.requests) == served  # nothing was sent


def test_unknown_types_and_misplaced_flags_are_usage_errors_not_sent(
    cli: Run, emu: KooDriveEmulator
) -> None:
    cases = {
        ("list", "--type", "9"): "error: --type: unknown task type '9'",
        ("list", "--status", "7"): "error: --status: unknown status '7'",
        ("create", "9", "--src", "s1", "f1"): "error: TYPE: unknown task type '9'",
        ("create", "copy", "--src", "s1", "f1", "--permanent"):
            "error: --permanent is only for delete jobs, not copy",
        ("create", "move", "--src", "s1", "f1:/a", "--extract", "x"):
            "error: --extract is only for decompress jobs, not move",
        ("create", "package", "--src", "s1", "f1", "--to", "/x"):
            "error: --to is only for copy, move, restore, decompress jobs, not package download",
        ("create", "decompress", "--src", "s1", "z:/a.zip", "--list-only", "--extract", "x"):
            "error: --list-only lists the archive",
    }
    served, jobs = len(emu.requests), len(emu.jobs)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: cli(*args), cases))
    for expected, done in zip(cases.values(), results, strict=True):
        assert done.returncode == 2, done.stderr
        assert one_error_line(done).startswith(expected)
    assert (len(emu.requests), len(emu.jobs)) == (served, jobs)  # not one was sent
    # The known numbers and names still go through.
    assert cli("list", "--type", "6", "--status", "2").returncode == 0
    assert cli("create", "2", "--src", "s1", "f1", "--permanent").returncode == 0


def test_invalid_job_ids_are_usage_errors_refused_by_the_client(
    cli: Run, emu: KooDriveEmulator
) -> None:
    job = emu.add_job(task_type=6, files=1, pending_for=0, duration=0)
    for command in (("get",), ("wait", "--poll", "0.05"), ("cancel",)):
        done = cli(*command, "../jobs")
        assert done.returncode == 2, done.stderr
        assert "error: invalid job id: " in done.stderr and "Traceback" not in done.stderr
    # One bad id among good ones is that id's usage error; the good ones are answered.
    done = cli("get", job, "a/b", "--json")
    assert done.returncode == 2
    good, bad = lines_json(done.stdout)
    assert good["jobId"] == job and good["jobInfo"]["taskId"] == job
    assert bad["jobId"] == "a/b" and bad["error"]["type"] == "InvalidJobIdError"
    assert done.stderr.count("invalid job id") == 1


def test_json_is_the_wire_format_of_to_wire(cli: Run, emu: KooDriveEmulator) -> None:
    job = emu.add_job(task_type=1, files=["a", "fail-b"], pending_for=0, duration=0)
    (doc,) = lines_json(cli("get", job, "--json").stdout)
    assert doc.pop("jobId") == job
    detail = kd.from_wire(kd.JobDetail, doc)  # reads back as the client reads an answer
    assert kd.to_wire(detail) == doc
    assert re.fullmatch(r"\d{14}", doc["jobInfo"]["createTime"])  # yyyyMMddHHmmss, as sent
    assert [t["status"] for t in doc["taskInfos"]] == ["1", "2"]

    (waited,) = lines_json(cli("wait", job, "--json").stdout)
    assert waited["detail"] == doc and waited["status"] == 2 and waited["taskResultCode"] == 2
    assert waited["failedFiles"] == [
        {k: v for k, v in doc["taskInfos"][1].items()
         if k in ("fileId", "filePath", "resultCode", "resultDesc")}]
    (listed,) = [d for d in lines_json(cli("list", "--json").stdout) if d["taskId"] == job]
    assert listed == doc["jobInfo"]


def test_table_cells_never_break_a_url_or_a_trace_id(cli: Run, emu: KooDriveEmulator) -> None:
    capture = _capture_module()
    job = emu.add_job(task_type=6, files=1, pending_for=0, duration=0)
    url = emu.download_url(job)
    (error,) = lines_json(cli("wait", "12345", "--json").stdout)
    trace_id = error["error"]["traceId"]
    assert trace_id in error["error"]["message"]
    # The same message, whatever trace id the next request gets.
    message = re.escape(error["error"]["message"]).replace(re.escape(trace_id), "[0-9a-f]+")
    assert SCRIPT is not None
    for width in (50, 80, 200):
        status, raw = capture.run_in_pty(
            [SCRIPT, "wait", job, "12345", "--poll", "0.05", "--no-progress"], width=width,
            env=cli.env,
        )
        cli.outputs.append(raw)
        assert status == 1
        text = _ESCAPES.sub("", raw)
        # Each long value is written whole, in one piece: the terminal may wrap it, but no
        # newline, padding or ellipsis was put inside it.
        assert url in text, (width, text)
        assert re.search(message, text), (width, text)
        screen = capture.render(raw, width)
        rows = [line for line in screen.splitlines() if line.startswith((job, "12345"))]
        assert [row.split()[:2] for row in rows] == [[job, "ok"], ["12345", "error"]], screen
        assert not any("…" in row for row in rows)
    # Wide enough: each value stays in its row.
    assert rows[0].endswith(url) and re.search(message + "$", rows[1]), screen


def test_messages_say_the_status_in_words_and_the_job_id_once(
    cli: Run, emu: KooDriveEmulator
) -> None:
    slow = emu.add_job(task_type=1, files=2, pending_for=0, duration=30)
    done = cli("wait", slow, "--timeout", "0.4", "--poll", "0.05")
    assert done.returncode == 3
    (note,) = [line for line in done.stderr.splitlines() if "did not end" in line]
    assert re.search(r"\(last seen: processing, \d+ %\)", note), note
    assert note.count(slow) == 1 and "status 1" not in note
    (row,) = [line for line in done.stdout.splitlines() if line.startswith(slow)]
    assert row.count(slow) == 1 and "processing" in row

    detail = cli("get", slow)
    assert "status      processing (1)" in detail.stdout
    assert re.search(r"progress    \d+ %", detail.stdout)
    listed = cli("list", "--status", "processing")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(slow)]
    assert "processing" in row.split() and re.search(r"\d+ %", row)

    # --poll is PollPolicy.fixed, and a value it refuses is said in its words.
    for value in ("0", "-1", "nan"):
        done = cli("wait", slow, "--poll", value)
        assert done.returncode == 2
        assert "PollPolicy.fixed" in one_error_line(done) and f"--poll {value}" in done.stderr


def test_the_cli_imports_only_the_public_package_without_cycles() -> None:
    cli_dir = ROOT / "koodrive_async" / "cli"
    public = {"koodrive_async", "koodrive_async.testing"}
    graph: dict[str, set[str]] = {}
    for path in sorted(cli_dir.glob("*.py")):
        module = path.stem
        graph[module] = set()
        lines = path.read_text().splitlines()
        assert len(lines) <= 400, f"{path.name}: {len(lines)} lines"
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                assert size <= 250, f"{path.name}: class {node.name} has {size} lines"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("koodrive_async"):
                        assert alias.name in public, f"{path.name} imports {alias.name}"
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and (node.module or "").startswith("koodrive_async"):
                    assert node.module in public, f"{path.name} imports {node.module}"
                    if node.module == "koodrive_async.testing":
                        private = [a.name for a in node.names if a.name.startswith("_")]
                        assert not private, f"{path.name} imports {private}"
                elif node.level == 1:
                    names = [node.module] if node.module else [a.name for a in node.names]
                    graph[module] |= {name for name in names if name}
    # No cycle among the command line's modules, lazy imports included.
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
