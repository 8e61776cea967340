"""A minimal GetJobDetail server for the benchmarks: the seed's example, as cheap as can be.

Answers ``GET /koodrive/ose/v1/{job_id}`` with the bytes of
``tests/data/seed_job_detail.json``, its ``taskId`` made the id asked for
(``Content-Type: application/json``; aiohttp adds a correct ``Date``), anything else with
404. No auth checks, no access log, no router: aiohttp's low-level server, so the
per-request cost left is aiohttp's HTTP handling, which the client under test shares the 2
cores with.

``--task-infos N --status S``: the seed's document with N taskInfos (copies of its one, each
with its own id) and ``jobInfo.status`` S, as the API would send it for a job of N files.

Run: ``python benchmarks/_server.py --port P [--host 127.0.0.1] [--task-infos N --status S]``;
prints ``ready <port>`` on stdout once listening (``--port 0`` picks a free port), and serves
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aiohttp import web

SEED: Final = Path(__file__).resolve().parent.parent / "tests" / "data" / "seed_job_detail.json"
PREFIX: Final = "/koodrive/ose/v1/"


def make_handler(body: bytes) -> web.Server:
    """The low-level server: one prefix check per request, the prebuilt body about the job
    asked for (the client refuses an answer about another job)."""
    marker = b'"taskId"'
    head, tail = body.split(marker, 1)
    tail = tail.split(b",", 1)[1]  # the seed's own id dropped

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if request.method == "GET" and path.startswith(PREFIX) and len(path) > len(PREFIX):
            job_id = path[len(PREFIX):].encode()
            answer = b"".join((head, marker, b':"', job_id, b'",', tail))
            return web.Response(body=answer, content_type="application/json")
        return web.Response(status=404, body=b'{"code":404,"msg":"not found"}',
                            content_type="application/json")

    return web.Server(handle, access_log=None)


def document(task_infos: int | None, status: int | None) -> bytes:
    """The seed's bytes, or the seed with ``task_infos`` taskInfos and that status."""
    if task_infos is None and status is None:
        return SEED.read_bytes()
    seed = json.loads(SEED.read_bytes())
    data = seed["data"]
    if status is not None:
        data["jobInfo"]["status"] = status
    if task_infos is not None:
        one = data["taskInfos"][0]
        data["taskInfos"] = [{**one, "id": str(i), "fileId": f"{one['fileId']}{i}"}
                             for i in range(task_infos)]
    return json.dumps(seed).encode()


async def serve(host: str, port: int, body: bytes) -> None:
    runner = web.ServerRunner(make_handler(body), access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        print(f"ready {runner.addresses[0][1]}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--task-infos", type=int, help="taskInfos in the document")
    parser.add_argument("--status", type=int, help="the document's jobInfo.status")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, document(args.task_infos, args.status)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
