"""The command line under careless or hostile input: each test is an attack on the real
console script, run as a subprocess against the emulator (or a closed port) on 127.0.0.1.

- ``download -o`` onto a FIFO, a symlink, a device, or through files planted at the names of
  its own partial files: refused, nothing replaced; ``-o -`` writes the exact zip to stdout.
- A reader that closes stdout early (``| head -1``): the command ends quietly, exit 0.
- Undecodable bytes in argv, the environment or the password on stdin: one line, exit 2.
- A plain-http base URL to a host that is not loopback: refused in the command line's own
  words, let through by ``--allow-insecure-http`` / ``KOODRIVE_ALLOW_INSECURE_HTTP=1``.
- A wait on a port that refuses connections: exit 1 at once, the cause in its one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from koodrive_async.testing import Fault, KooDriveEmulator
from tests import test_cli
from tests.test_cli import SCRIPT, TOKEN, Run, _capture_module, base_env, lines_json

# The fixtures of test_cli: its emulator (with the secrets to look for) and its runner.
koodrive_emulator_options = test_cli.koodrive_emulator_options
emu = test_cli.emu
cli = test_cli.cli

pytestmark = pytest.mark.skipif(SCRIPT is None, reason="koodrive-async is not installed")

Argv = list[str | bytes]


def run_bytes(
    args: Argv, *, env: Mapping[str, str | bytes], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The console script with bytes in, bytes out (argv and env may carry any bytes)."""
    assert SCRIPT is not None
    done = subprocess.run(
        [SCRIPT, *args], capture_output=True, timeout=60, check=False, env=dict(env),
        input=stdin,
    )
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    return done


def one_error_line(done: subprocess.CompletedProcess[Any]) -> str:
    """The single line a refused command printed on stderr (and nothing on stdout)."""
    err = done.stderr.decode() if isinstance(done.stderr, bytes) else done.stderr
    out = done.stdout.decode() if isinstance(done.stdout, bytes) else done.stdout
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert out == "", out
    return err.strip()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def pipe_capacity() -> int:
    """What a fresh pipe holds here, as stdout's pipe to the child does."""
    read_end, write_end = os.pipe()
    try:
        return int(fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ))
    except (AttributeError, OSError):  # not Linux
        return 64 * 1024
    finally:
        os.close(read_end)
        os.close(write_end)


def reaches_the_unspecified_address(port: int) -> bool:
    """Whether connecting to 0.0.0.0 reaches 127.0.0.1 here (it does on Linux)."""
    try:
        with socket.create_connection(("0.0.0.0", port), timeout=2):
            return True
    except OSError:
        return False


# -- 1. download -o: only a regular file is ever replaced ------------------------------------


def test_download_never_replaces_a_fifo_a_symlink_or_a_device(
    cli: Run, emu: KooDriveEmulator, tmp_path: Path
) -> None:
    job = emu.add_job(task_type=6, files=2, pending_for=0, duration=0)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.zip"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling.zip"
    dangling.symlink_to(tmp_path / "nowhere")
    cases = [(fifo, "is a FIFO"), (link, "is a symbolic link"), (dangling, "is a symbolic link")]

    for target, kind in cases:
        done = cli("download", job, "-o", str(target), "--force")
        assert done.returncode == 2, done.stderr
        assert kind in one_error_line(done) and "refusing to replace it" in done.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert victim.read_bytes() == b"precious"
    assert dangling.is_symlink() and not (tmp_path / "nowhere").exists()
    assert not list(tmp_path.glob(".*koodrive-part*"))  # refused before any request

    # The real /dev/null only without --force, which never replaced anything; the refusal
    # now names what it is.
    done = cli("download", job, "-o", os.devnull)
    assert done.returncode == 2 and "is a character device" in one_error_line(done)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)

    # The reported attack itself, as root with --force, on a private copy of /dev/null.
    null = tmp_path / "null"
    with contextlib.suppress(PermissionError, AttributeError):
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    if null.exists():
        done = cli("download", job, "-o", str(null), "--force")
        assert done.returncode == 2 and "is a character device" in one_error_line(done)
        assert stat.S_ISCHR(null.lstat().st_mode)

    # A directory that does not exist is not quietly a file named like it.
    done = cli("download", job, "-o", f"{tmp_path / 'missing'}/")
    assert done.returncode == 2 and "no such directory" in one_error_line(done)
    assert not (tmp_path / "missing").exists()

    # A regular file is still replaced with --force.
    plain = tmp_path / "plain.zip"
    plain.write_bytes(b"old")
    assert cli("download", job, "-o", str(plain), "--force").returncode == 0
    assert plain.read_bytes() == emu.package_bytes(job)


def test_download_does_not_write_through_links_planted_at_its_partial_files(
    cli: Run, emu: KooDriveEmulator, tmp_path: Path
) -> None:
    job = emu.add_job(task_type=6, files=2, pending_for=0, duration=0)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    part = tmp_path / f".koodrive-{job}.koodrive-part"
    meta = tmp_path / f"{part.name}.json"

    # A link at the metadata's name: refused, the target untouched.
    meta.symlink_to(victim)
    done = cli("download", job, "-o", str(tmp_path))
    assert done.returncode == 2 and "is not a regular file" in one_error_line(done)
    assert victim.read_bytes() == b"precious" and meta.is_symlink()
    meta.unlink()

    # A FIFO there: refused at once, not a hang on opening it.
    os.mkfifo(meta)
    done = cli("download", job, "-o", str(tmp_path))
    assert done.returncode == 2 and "is not a regular file" in one_error_line(done)
    meta.unlink()

    # A link at the partial file's name, with no metadata vouching for it: dropped (the link,
    # not its target), and the download starts afresh.
    part.symlink_to(victim)
    done = cli("download", job, "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "package.zip").read_bytes() == emu.package_bytes(job)
    assert victim.read_bytes() == b"precious"
    assert not part.exists() and not part.is_symlink()


def test_download_to_stdout_is_the_exact_zip_even_when_resumed(
    cli: Run, emu: KooDriveEmulator, tmp_path: Path
) -> None:
    job = emu.add_job(task_type=6, files=3, pending_for=0, duration=0)
    package = emu.package_bytes(job)

    done = run_bytes(["download", job, "-o", "-"], env=cli.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == package
    assert done.stderr.decode().startswith(f"wrote {len(package)} bytes to standard output")

    # Cut short within the run: resumed with a Range request, the stream stays exact.
    cut = len(package) // 3
    emu.inject(Fault.truncate(cut), path=emu.download_path(job))
    before = len(emu.download_requests)
    done = run_bytes(["download", emu.download_url(job), "-o", "-"], env=base_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout == package
    assert [r.headers.get("Range") for r in emu.download_requests[before:]] == [
        None, f"bytes={cut}-"]
    assert not list(tmp_path.glob(".*koodrive-part*")) and not list(Path.cwd().glob(
        ".*koodrive-part*"))

    # stdout carries the zip and nothing else: --json is refused, and so is a terminal.
    done = run_bytes(["download", job, "-o", "-", "--json"], env=cli.env)
    assert done.returncode == 2 and "--json" in one_error_line(done)
    assert SCRIPT is not None
    status, raw = _capture_module().run_in_pty(
        [SCRIPT, "download", job, "-o", "-"], width=200, env=cli.env
    )
    assert status == 2 and "standard output is a terminal" in raw and "PK" not in raw


# -- 2. a closed stdout ends quietly ---------------------------------------------------------


def first_line_then_close(args: list[str], env: dict[str, str]) -> tuple[bytes, int, bytes]:
    """Run the script, read one line of its stdout, close the pipe: (line, status, stderr)."""
    assert SCRIPT is not None
    with subprocess.Popen(
        [SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            line = child.stdout.readline()
            child.stdout.close()
            err = child.stderr.read()
            status = child.wait(timeout=60)
        finally:
            child.kill()
    return line, status, err


def test_a_reader_closing_stdout_early_ends_the_command_quietly(
    cli: Run, emu: KooDriveEmulator
) -> None:
    jobs = 2000
    for _ in range(jobs):
        emu.add_job(task_type=1, files=1, pending_for=0, duration=0)
    capacity = pipe_capacity()

    line, status, err = first_line_then_close(["list", "--json"], cli.env)
    assert line.startswith(b'{"taskId":')
    # Far more than the pipe holds: the script was still writing when the pipe closed.
    assert len(line) * jobs > 4 * capacity
    assert (status, err) == (0, b"")

    line, status, err = first_line_then_close(["list"], cli.env)  # the table, flushed at exit
    assert line.split() == [b"JOB", b"TYPE", b"STATUS", b"PROGRESS", b"RESULT", b"CREATED"]
    assert (status, err) == (0, b"")

    big = emu.add_job(task_type=6, files=40, pending_for=0, duration=0)  # 40 x 64 KiB
    assert len(emu.package_bytes(big)) > 4 * capacity
    _, status, err = first_line_then_close(["download", big, "-o", "-"], cli.env)
    assert (status, err) == (0, b"")


# -- 3. undecodable bytes: one line naming what, exit 2 --------------------------------------


def test_undecodable_arguments_environment_and_password_are_one_line_exit_2(
    cli: Run, emu: KooDriveEmulator, tmp_path: Path
) -> None:
    env: dict[str, str | bytes] = dict(cli.env)
    zipped = ["create", "decompress", "--src", "s1", "zip1:/in/a.zip"]
    cases: list[tuple[Argv, dict[str, str | bytes], bytes | None, str]] = [
        (["create", "copy", "--src", "s1", "f1", "--to", b"/bak\xff"], env, None,
         "error: --to is not valid UTF-8: b'/bak\\xff'"),
        (["create", "copy", "--src", "s1", b"f1:/a\xfe.txt"], env, None,
         "error: FILE is not valid UTF-8: b'f1:/a\\xfe.txt'"),
        (["download", "123", "-o", bytes(tmp_path) + b"/\xff.zip"], env, None,
         "error: -o/--output is not valid UTF-8: b'"),
        (["get", "123", "--token", b"tok-\xff-SECRET"], env, None,
         "error: --token is not valid UTF-8"),
        (["get", "123"], env | {"KOODRIVE_TOKEN": b"tok-\xff-SECRET"}, None,
         "error: $KOODRIVE_TOKEN is not valid UTF-8"),
        (["get", "123"], env | {"KOODRIVE_BASE_URL": b"http://127.0.0.1:9/\xff"}, None,
         "error: $KOODRIVE_BASE_URL is not valid UTF-8"),
        ([*zipped], env | {"KOODRIVE_ARCHIVE_PASSWORD": b"pw-\xff"}, None,
         "error: $KOODRIVE_ARCHIVE_PASSWORD is not valid UTF-8"),
        # The text layer decodes stdin by the locale: bytes are read, under either locale.
        ([*zipped, "--password-stdin"], env | {"LC_ALL": "C"}, b"pw-\xff\xfe\n",
         "error: --password-stdin: the password is not valid UTF-8"),
        ([*zipped, "--password-stdin"], env | {"LC_ALL": "C.UTF-8"}, b"pw-\xff\xfe\n",
         "error: --password-stdin: the password is not valid UTF-8"),
        # stdin that never ends a line is not read to the end of memory.
        ([*zipped, "--password-stdin"], env, b"x" * 1_000_000,
         "error: --password-stdin: the password is longer than 4096 bytes"),
    ]
    jobs_before = len(emu.jobs)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: run_bytes(c[0], env=c[1], stdin=c[2]), cases))
    for (_, _, _, expected), done in zip(cases, results, strict=True):
        assert done.returncode == 2, done.stderr
        assert one_error_line(done).startswith(expected)
        assert b"SECRET" not in done.stderr and b"pw-" not in done.stderr
    assert len(emu.jobs) == jobs_before  # nothing was sent
    assert not (tmp_path / os.fsdecode(b"\xff.zip")).exists()


# -- 4. plain http to a host that is not loopback --------------------------------------------


def test_plain_http_refusal_names_the_flag_and_the_flag_lets_it_through(
    cli: Run, emu: KooDriveEmulator
) -> None:
    port = int(emu.base_url.rsplit(":", 1)[1])
    if not reaches_the_unspecified_address(port):
        pytest.skip("connecting to 0.0.0.0 does not reach 127.0.0.1 here")
    job = emu.add_job(task_type=1, files=1, pending_for=0, duration=0)
    url = f"http://0.0.0.0:{port}"
    env = cli.env | {"KOODRIVE_BASE_URL": url}

    refused = cli("list", env=env)
    assert refused.returncode == 2
    line = one_error_line(refused)
    assert line == (
        f"error: base URL {url} is not https: refused, as the credentials would travel in"
        " clear (loopback addresses are allowed); pass --allow-insecure-http or set"
        " KOODRIVE_ALLOW_INSECURE_HTTP=1"
    )
    assert "allow_insecure_http" not in line

    served = len(emu.requests)
    by_flag = cli("list", "--allow-insecure-http", env=env)
    by_env = cli("list", env=env | {"KOODRIVE_ALLOW_INSECURE_HTTP": "1"})
    for done in (by_flag, by_env):
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[1].split()[0] == job
    assert len(emu.requests) >= served + 2  # they really went through 0.0.0.0

    off = cli("list", env=env | {"KOODRIVE_ALLOW_INSECURE_HTTP": "0"})
    assert off.returncode == 2 and "--allow-insecure-http" in off.stderr
    bad = cli("list", env=env | {"KOODRIVE_ALLOW_INSECURE_HTTP": "maybe"})
    assert bad.returncode == 2
    assert one_error_line(bad).startswith("error: $KOODRIVE_ALLOW_INSECURE_HTTP must be 1 or 0")


@contextlib.contextmanager
def emulator_process(*args: str) -> Iterator[dict[str, str]]:
    """``koodrive-async emulator ARGS`` running; yields the variables its banner exports."""
    assert SCRIPT is not None
    with subprocess.Popen(
        [SCRIPT, "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base_env(),
    ) as child:
        assert child.stdout is not None
        try:
            exports: dict[str, str] = {}
            for _ in range(40):
                line = child.stdout.readline().strip()
                if not line or line.startswith("Press Ctrl-C"):
                    break
                if line.startswith("export "):
                    name, _, value = line.removeprefix("export ").partition("=")
                    exports[name] = value
            yield exports
            child.send_signal(signal.SIGINT)
            child.communicate(timeout=30)
        finally:
            child.kill()


def test_the_emulators_banner_on_all_interfaces_exports_what_the_cli_needs() -> None:
    token = f"tok-{os.getpid()}-{time.monotonic_ns()}"  # bound to 0.0.0.0 for a moment
    with emulator_process("--host", "0.0.0.0", "--token", token) as exports:
        assert exports["KOODRIVE_BASE_URL"].startswith("http://0.0.0.0:")
        assert exports.get("KOODRIVE_ALLOW_INSECURE_HTTP") == "1"
        done = Run(base_env() | exports)("list", "--json")  # pasted as printed
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# -- 5. a wait that cannot connect -----------------------------------------------------------


def test_a_wait_on_a_refusing_port_ends_at_once_with_the_cause() -> None:
    port = closed_port()
    env = base_env() | {
        "KOODRIVE_BASE_URL": f"http://127.0.0.1:{port}",
        "KOODRIVE_USER_ID": "u",
        "KOODRIVE_TOKEN": TOKEN,
    }
    run = Run(env)
    job = "1309243162258308352"
    commands = [("wait", job, "--timeout", "300"), ("wait", job, "--timeout", "300", "--json"),
                ("get", job)]
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        table, json_lines, got = pool.map(lambda args: run(*args), commands)
    # Not ridden out to the 300 s deadline: a wrong address is not a busy server.
    assert time.monotonic() - started < 120

    assert table.returncode == 1, table.stderr
    _, row = table.stdout.splitlines()
    assert row.split()[:2] == [job, "error"]
    assert "cannot connect" in row and f"127.0.0.1', {port})" in row
    assert json_lines.returncode == 1
    (doc,) = lines_json(json_lines.stdout)
    assert doc["outcome"] == "error" and doc["error"]["type"] == "ConnectError"
    assert "cannot connect" in doc["error"]["message"]
    assert got.returncode == 1
    line = one_error_line(got)
    assert line.startswith(f"error: job {job}: ") and "cannot connect" in line
    run.check_no_secret()
