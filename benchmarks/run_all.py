"""Run every benchmark and print all their tables (issue 4): one command for the README's numbers.

In sequence, each as a subprocess of this interpreter (with the same ``-W`` options):
``throughput.py`` (lookups against raw aiohttp, with ``--callgrind`` when valgrind is
installed; again with ``--loop uvloop`` when uvloop is installed, the ``speedups`` extra),
``decode.py`` (decoding alone), ``poll_cost.py`` (a poll of a big processing job against a
full lookup), ``waits.py`` (memory and time of many waits), ``poll_efficiency.py`` (polls per
job against detection lag) and ``telemetry.py`` (what telemetry costs a lookup).
Each script also runs alone.

Each script prints its goals as ``- met: ...`` / ``- NOT met: ...`` lines; at the end, every
one of them is printed again under "Goals", so one run shows where the speed issue stands.

Run: ``python benchmarks/run_all.py [--quick]``; ``--quick`` passes small sizes to each, for a
smoke run whose numbers mean little. Exits non-zero if any benchmark failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
# (script, arguments, more arguments for --quick): full runs use each script's defaults.
UVLOOP: Final = importlib.util.find_spec("uvloop") is not None
# Machine instructions, C included, decide the CPU goal where valgrind is installed.
CALLGRIND: Final = ["--callgrind"] if shutil.which("valgrind") else []
BENCHMARKS: Final = (
    ("throughput.py", CALLGRIND, ["--lookups", "300", "--repeats", "2"]),
    *([("throughput.py", ["--loop", "uvloop"], ["--lookups", "300", "--repeats", "2"])]
      if UVLOOP else []),
    ("decode.py", [], ["--quick"]),
    ("poll_cost.py", [], ["--lookups", "100", "--repeats", "2"]),
    ("waits.py", [], ["--jobs", "1000", "--http-jobs", "200"]),
    ("poll_efficiency.py", [], ["--jobs", "200"]),
    ("telemetry.py", [], ["--lookups", "200", "--repeats", "1"]),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args(argv)
    warning_options = [f"-W{option}" for option in sys.warnoptions]
    failed: list[str] = []
    goals: list[str] = []
    started = time.perf_counter()
    for script_name, arguments, quick in BENCHMARKS:
        script = HERE / script_name
        extra = [*arguments, *(quick if args.quick else [])]
        name = " ".join([script_name, *arguments])
        print(f"## {name}\n", flush=True)
        command = [sys.executable, *warning_options, str(script), *extra]
        print(f"`python benchmarks/{script_name}{''.join(' ' + a for a in extra)}`\n", flush=True)
        took = time.perf_counter()
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
            assert child.stdout is not None
            for line in child.stdout:
                print(line, end="", flush=True)
                if line.startswith(("- met", "- NOT met")):
                    goals.append(f"{line.rstrip()} [{name}]")
        code = child.returncode
        print(f"\n({name}: {time.perf_counter() - took:.0f} s"
              f"{'' if code == 0 else f', FAILED with exit code {code}'})\n", flush=True)
        if code != 0:
            failed.append(name)
    print("## Goals\n")
    print("\n".join(goals) if goals else "(none printed)")
    print(f"\nAll benchmarks: {time.perf_counter() - started:.0f} s"
          f"{'; failed: ' + ', '.join(failed) if failed else ''}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
