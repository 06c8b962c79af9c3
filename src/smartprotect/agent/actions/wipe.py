"""Removing personal information from this machine (clause 1.5), carefully.

- Only under the wipe paths fixed at enrollment; never /, a home or system root unless it was
  listed explicitly with --allow-root-path.
- Never crosses into another filesystem, never follows a symlink out of a wipe path.
- Writes a journal first ("committed"), so an interrupted wipe resumes after a restart.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from smartprotect.agent.files import write_private

SYSTEM_ROOTS = frozenset(
    Path(p) for p in ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt",
                      "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var",
                      "/tmp")  # noqa: S108 - listed to be refused, not used
)  # fmt: skip
JOURNAL = "wipe-journal.json"
SSD_NOTE = (
    "Files were unlinked. On SSDs and flash storage, deleted data may remain recoverable "
    "unless the disk is encrypted."
)
PRESETS: dict[str, tuple[str, ...]] = {
    "browsers": (".mozilla", ".config/google-chrome", ".config/chromium", ".cache/mozilla"),
    "ssh": (".ssh",),
    "keyrings": (".local/share/keyrings", ".gnupg"),
    "mail": (".thunderbird", ".local/share/evolution"),
    "documents": ("Documents",),
}


class UnsafeWipePath(ValueError):
    pass


def is_root(path: Path) -> bool:
    path = path.resolve()
    return path in SYSTEM_ROOTS or path == Path.home().resolve() or path.parent == Path("/home")


def check_paths(paths: list[Path], *, explicit_roots: list[Path]) -> list[str]:
    """Validate wipe paths at enrollment; roots only when listed with --allow-root-path."""
    allowed_roots = {p.resolve() for p in explicit_roots}
    checked = []
    for path in paths:
        resolved = path.resolve()
        if is_root(resolved) and resolved not in allowed_roots:
            raise UnsafeWipePath(
                f"{resolved} is / or a home or system root; list it with --allow-root-path "
                "too if you really mean it"
            )
        checked.append(str(resolved))
    return checked


def preset_paths(name: str, home: Path) -> list[Path]:
    if name not in PRESETS:
        raise UnsafeWipePath(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return [home / relative for relative in PRESETS[name]]


# A directory is opened, never passed through by name: no symlink can lead out of it.
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _remove_tree(root: Path, counts: dict[str, int]) -> None:
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):  # a file, or a symlink (removed, not followed)
        _unlink(root, counts)
        return
    try:
        directory = os.open(root, _OPEN_DIRECTORY)
    except OSError:
        counts["failures"] += 1
        return
    try:
        if _same(os.fstat(directory), top):
            _empty(directory, top.st_dev, counts)
        else:
            counts["failures"] += 1  # swapped for another since it was looked at
    finally:
        os.close(directory)
    # The wipe path itself stays (empty): it is the owner's configuration, not their data.


def _empty(directory: int, device: int, counts: dict[str, int]) -> None:
    """Remove everything in an open directory, by names relative to it: whatever is
    renamed or swapped for a symlink meanwhile (by someone using the machine), nothing
    outside is reached. A directory on another filesystem is left alone."""
    with os.scandir(directory) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        try:
            found = os.lstat(name, dir_fd=directory)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(found.st_mode):
            try:
                os.unlink(name, dir_fd=directory)
                counts["files_removed"] += 1
            except FileNotFoundError:
                pass
            except OSError:
                counts["failures"] += 1
            continue
        if found.st_dev != device:
            counts["skipped_other_filesystem"] += 1
            continue
        try:
            child = os.open(name, _OPEN_DIRECTORY, dir_fd=directory)
        except OSError:
            counts["failures"] += 1  # e.g. swapped for a symlink since: not followed
            continue
        try:
            if not _same(os.fstat(child), found):
                counts["failures"] += 1
                continue
            _empty(child, device, counts)
        except RecursionError:
            counts["failures"] += 1  # nested deeper than any real data: the rest goes on
            continue
        finally:
            os.close(child)
        try:
            os.rmdir(name, dir_fd=directory)
        except OSError:
            counts["failures"] += 1


def _same(opened: os.stat_result, looked_at: os.stat_result) -> bool:
    return (opened.st_dev, opened.st_ino) == (looked_at.st_dev, looked_at.st_ino)


def _unlink(path: Path, counts: dict[str, int]) -> None:
    try:
        path.unlink()
        counts["files_removed"] += 1
    except FileNotFoundError:
        pass
    except OSError:
        counts["failures"] += 1


def commit(state_dir: Path, command_id: str, paths: list[str]) -> None:
    """Record the decision (durably) before touching anything, so a restart finishes the
    job."""
    write_private(state_dir / JOURNAL, json.dumps({"command_id": command_id, "paths": paths}))


def pending(state_dir: Path) -> dict | None:
    path = state_dir / JOURNAL
    return json.loads(path.read_text()) if path.exists() else None


def execute(state_dir: Path, paths: list[str]) -> dict:
    """Remove every wipe path; returns counts and the honest note about recoverability."""
    counts = {"files_removed": 0, "failures": 0, "skipped_other_filesystem": 0}
    for raw in paths:
        path = Path(raw)
        if path.resolve() == Path("/"):
            counts["failures"] += 1  # never, whatever the journal says
            continue
        _remove_tree(path, counts)
    (state_dir / JOURNAL).unlink(missing_ok=True)
    return {**counts, "note": SSD_NOTE}
