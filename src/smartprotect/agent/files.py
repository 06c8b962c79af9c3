"""Files in the agent's state directory: readable and writable by its owner only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from smartprotect.agent.constants import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE


def write_private(path: Path, text: str) -> None:
    """Write a file atomically, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
