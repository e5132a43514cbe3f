"""The entry point every jaxml launcher shares: ``entry.run(main)`` runs an absl ``main`` and, on any
error, prints ``error: <Type>: <message>`` as the last line of stderr and exits 1 (absl usage errors and
explicit exits pass through unchanged)."""
from __future__ import annotations

import sys

from absl import app


def run(main) -> None:
    try:
        app.run(main)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 — the last line must say why
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
