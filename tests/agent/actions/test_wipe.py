"""The wipe removes what is under its paths and nothing else."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from smartprotect.agent.actions import wipe


def _tree(base: Path) -> tuple[Path, Path]:
    target = base / "target"
    outside = base / "outside"
    (target / "docs" / "deep").mkdir(parents=True)
    outside.mkdir()
    (target / "a.txt").write_text("secret a")
    (target / "docs" / "b.pdf").write_bytes(b"%PDF secret")
    (target / "docs" / "deep" / "c").write_text("secret c")
    (outside / "keep.txt").write_text("keep me")
    # Links out of the wipe path: the links go, what they point at stays.
    os.symlink(outside, target / "link-to-dir")
    os.symlink(outside / "keep.txt", target / "docs" / "link-to-file")
    return target, outside


def test_removes_everything_under_the_path_and_nothing_outside(tmp_path):
    target, outside = _tree(tmp_path)
    summary = wipe.execute(tmp_path, [str(target)])
    assert target.exists() and list(target.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep me"
    assert summary["files_removed"] == 5 and summary["failures"] == 0
    assert "SSD" in summary["note"]


def test_a_filesystem_mounted_inside_a_wipe_path_is_left_alone(tmp_path, monkeypatch):
    target, _ = _tree(tmp_path)
    mounted = target / "usb-disk"
    (mounted / "photos").mkdir(parents=True)
    (mounted / "photos" / "kept.jpg").write_bytes(b"jpeg")
    (mounted / "kept.txt").write_text("on another filesystem")
    real_lstat = os.lstat
    elsewhere = {os.lstat(p).st_ino for p in (mounted, *mounted.rglob("*"))}

    def lstat(path, *args, **kwargs):
        # What the kernel says of a mount point and what is under it: another device.
        result = real_lstat(path, *args, **kwargs)
        if result.st_ino in elsewhere:
            fields = list(result)
            fields[stat.ST_DEV] += 1
            return os.stat_result(fields)
        return result

    monkeypatch.setattr(os, "lstat", lstat)
    summary = wipe.execute(tmp_path, [str(target)])
    monkeypatch.undo()
    assert (mounted / "photos" / "kept.jpg").read_bytes() == b"jpeg"
    assert (mounted / "kept.txt").exists()
    assert sorted(p.name for p in target.iterdir()) == ["usb-disk"]
    # Not entered at all.
    assert summary["skipped_other_filesystem"] == 1 and summary["failures"] == 0


def test_a_directory_swapped_for_a_symlink_during_the_wipe_leads_nowhere(tmp_path, monkeypatch):
    """Someone using the stolen machine turns a directory into a link to elsewhere while the
    wipe runs (as root): the wipe does not follow it."""
    target, outside = _tree(tmp_path)
    (outside / "c").write_text("precious, and not in the wipe path")
    deep = target / "docs" / "deep"
    real_lstat = os.lstat
    swapped = []

    def lstat(path, *args, **kwargs):
        result = real_lstat(path, *args, **kwargs)
        if Path(path).name == "deep" and not swapped:
            # Right after the wipe looked at it, before it goes in.
            deep.rename(tmp_path / "moved-away")
            deep.symlink_to(outside)
            swapped.append(path)
        return result

    monkeypatch.setattr(os, "lstat", lstat)
    summary = wipe.execute(tmp_path, [str(target)])
    monkeypatch.undo()
    assert swapped, "the wipe never looked at the directory"
    assert (outside / "c").read_text() == "precious, and not in the wipe path"
    assert (outside / "keep.txt").read_text() == "keep me"
    assert summary["failures"] >= 1  # what it could not enter, and so not remove


def test_an_interrupted_wipe_resumes_from_its_journal(tmp_path):
    target, _ = _tree(tmp_path)
    wipe.commit(tmp_path, "cmd-1", [str(target)])
    assert wipe.pending(tmp_path) == {"command_id": "cmd-1", "paths": [str(target)]}
    wipe.execute(tmp_path, wipe.pending(tmp_path)["paths"])
    assert wipe.pending(tmp_path) is None and list(target.iterdir()) == []


@pytest.mark.parametrize("root", ["/", "/etc", "/home", "/usr", "/var"])
def test_roots_are_refused_unless_listed_explicitly(root):
    with pytest.raises(wipe.UnsafeWipePath):
        wipe.check_paths([Path(root)], explicit_roots=[])


def test_home_is_refused_unless_listed_explicitly():
    with pytest.raises(wipe.UnsafeWipePath):
        wipe.check_paths([Path.home()], explicit_roots=[])
    assert wipe.check_paths([Path.home()], explicit_roots=[Path.home()]) == [
        str(Path.home().resolve())
    ]


def test_root_itself_is_never_wiped_even_from_a_forged_journal(tmp_path):
    summary = wipe.execute(tmp_path, ["/"])
    assert summary["failures"] == 1 and Path("/etc").exists()


def test_presets_name_the_users_data(tmp_path):
    assert wipe.preset_paths("ssh", tmp_path) == [tmp_path / ".ssh"]
    with pytest.raises(wipe.UnsafeWipePath):
        wipe.preset_paths("everything", tmp_path)


def test_a_link_put_on_the_way_to_a_wipe_path_is_not_followed(tmp_path):
    """The wipe path was ~/.local/share/evolution at enrollment; since, someone using the
    machine made ~/.local a link to somewhere else. Nothing there is touched."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (elsewhere / "share" / "evolution").mkdir(parents=True)
    (elsewhere / "share" / "evolution" / "system-file").write_text("not the owner's mail")
    home.mkdir()
    (home / ".local").symlink_to(elsewhere)
    summary = wipe.execute(tmp_path, [str(home / ".local" / "share" / "evolution")])
    assert (elsewhere / "share" / "evolution" / "system-file").exists()
    assert summary["failures"] == 1 and summary["files_removed"] == 0


def test_what_cannot_be_read_is_counted_and_the_wipe_goes_on(tmp_path, monkeypatch):
    target, _ = _tree(tmp_path)
    real_scandir = os.scandir
    docs = os.stat(target / "docs")

    def scandir(path=".", *args):
        if isinstance(path, int) and os.fstat(path).st_ino == docs.st_ino:
            raise PermissionError("permission denied")  # e.g. a root-squashed network home
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    wipe.commit(tmp_path, "cmd-1", [str(target)])
    summary = wipe.execute(tmp_path, [str(target)])
    monkeypatch.undo()
    assert sorted(p.name for p in target.iterdir()) == ["docs"]
    assert summary["failures"] == 1 and summary["files_removed"] == 2
    assert wipe.pending(tmp_path) is None  # finished, not retried at every start


def test_a_tree_nested_beyond_any_real_data_is_cut_off_once(tmp_path):
    target = tmp_path / "target"
    deep = target
    for _ in range(wipe.MAX_DEPTH + 10):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (target / "top.txt").write_text("x")
    summary = wipe.execute(tmp_path, [str(target)])
    assert not (target / "top.txt").exists()
    assert summary["failures"] == 1 and summary["files_removed"] == 1
