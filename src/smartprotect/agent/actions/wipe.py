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
# Deeper than any real data; each level holds a file descriptor while it is emptied.
MAX_DEPTH = 256


class _Refused(Exception):
    """A wipe path that no longer leads where it did at enrollment."""


def _open_parent(path: Path) -> tuple[int, str]:
    """The directory holding `path`, opened from / one part at a time without following a
    symlink (the paths were resolved at enrollment: a link on the way now was put there
    since, and could lead anywhere), and the last part's name."""
    *parents, name = path.parts[1:] or [""]
    if not name or not path.is_absolute():
        raise _Refused
    directory = os.open("/", _OPEN_DIRECTORY)
    try:
        for part in parents:
            child = os.open(part, _OPEN_DIRECTORY, dir_fd=directory)
            os.close(directory)
            directory = child
    except OSError:
        os.close(directory)
        raise _Refused from None
    return directory, name


def _remove_tree(root: Path, counts: dict[str, int]) -> None:
    try:
        parent, name = _open_parent(root)
    except (_Refused, OSError):
        if os.path.lexists(root):
            counts["failures"] += 1
        return
    try:
        _remove_entry(parent, name, None, counts, depth=0, keep=True)
    finally:
        os.close(parent)
    # The wipe path itself stays (empty): it is the owner's configuration, not their data.


def _remove_entry(
    parent: int, name: str, device: int | None, counts: dict[str, int], *, depth: int,
    keep: bool = False,
) -> bool:  # fmt: skip
    """Remove one entry of an open directory (a directory's contents first; with `keep`,
    the directory itself stays); whether it is gone (or emptied)."""
    try:
        found = os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return True
    except OSError:
        counts["failures"] += 1
        return False
    if not stat.S_ISDIR(found.st_mode):  # a file, a symlink (not followed), a socket...
        try:
            os.unlink(name, dir_fd=parent)
            counts["files_removed"] += 1
            return True
        except FileNotFoundError:
            return True
        except OSError:
            counts["failures"] += 1
            return False
    if device is not None and found.st_dev != device:
        counts["skipped_other_filesystem"] += 1
        return False
    if depth >= MAX_DEPTH:
        counts["failures"] += 1
        return False
    try:
        directory = os.open(name, _OPEN_DIRECTORY, dir_fd=parent)
    except OSError:
        counts["failures"] += 1  # e.g. swapped for a symlink since it was looked at
        return False
    try:
        opened = os.fstat(directory)
        if (opened.st_dev, opened.st_ino) != (found.st_dev, found.st_ino):
            counts["failures"] += 1  # swapped for another directory since
            return False
        emptied = _empty(directory, found.st_dev, counts, depth=depth + 1)
    finally:
        os.close(directory)
    if keep or not emptied:
        return emptied  # what is left in it was counted already
    try:
        os.rmdir(name, dir_fd=parent)
        return True
    except OSError:
        counts["failures"] += 1
        return False


def _empty(directory: int, device: int, counts: dict[str, int], *, depth: int) -> bool:
    """Remove everything in an open directory, by names relative to it: whatever is renamed
    or swapped for a symlink meanwhile (by someone using the machine), nothing outside is
    reached. A directory on another filesystem is left alone."""
    try:
        with os.scandir(directory) as entries:
            names = [entry.name for entry in entries]
    except OSError:
        counts["failures"] += 1
        return False
    emptied = True
    for name in names:
        emptied &= _remove_entry(directory, name, device, counts, depth=depth)
    return emptied


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
        try:
            _remove_tree(path, counts)
        except OSError:
            # Whatever the disk says, the wipe finishes and reports: an error here must not
            # leave the journal to fail again at every start.
            counts["failures"] += 1
    (state_dir / JOURNAL).unlink(missing_ok=True)
    return {**counts, "note": SSD_NOTE}
