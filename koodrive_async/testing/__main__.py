"""Run the KooDrive emulator as a standalone server until Ctrl-C (or SIGTERM).

python -m koodrive_async.testing --port 8080 [--host 127.0.0.1] [--token T] [--user-id U]
"""

from __future__ import annotations

import sys

from koodrive_async.testing._serve import main

if __name__ == "__main__":
    sys.exit(main())
