"""The README's first command runs examples/quickstart.py: keep it working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_quickstart_runs_against_the_embedded_emulator() -> None:
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "quick start finished" in completed.stdout
    assert "integrity ok" in completed.stdout
    assert completed.stderr == ""
