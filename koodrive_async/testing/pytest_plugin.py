"""pytest plugin: the ``koodrive_emulator`` fixture (loaded through the pytest11 entry point).

The emulator is imported only when the fixture is used, so loading the plugin costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from koodrive_async.testing import KooDriveEmulator


@pytest.fixture
def koodrive_emulator_options() -> dict[str, Any]:
    """Keyword arguments for the ``koodrive_emulator`` fixture's ``KooDriveEmulator``.

    Override this fixture to change them, e.g. to pass ``clock=ManualClock()``.
    """
    return {}


@pytest.fixture
def koodrive_emulator(koodrive_emulator_options: dict[str, Any]) -> Iterator[KooDriveEmulator]:
    """A started KooDrive emulator served from a background thread on 127.0.0.1.

    Works in synchronous tests, in any async framework and for subprocesses. Its
    credentials are attributes: ``base_url``, ``token``, ``user_id``, ``app_id``,
    ``app_secret``. It is stopped after the test.
    """
    from koodrive_async.testing import KooDriveEmulator

    with KooDriveEmulator(**koodrive_emulator_options).run_in_thread() as emulator:
        yield emulator
