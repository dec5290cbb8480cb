"""Files that were already where Danlu is about to write (a second run of one config into the same
save.output_dir, as people do with sd-scripts, which overwrites them; an export or a grid over an existing file): each
is renamed to a backup beside it first, never overwritten. A rename inside one folder needs no free space and cannot
half-finish, and the `.bak` ending keeps an old LoRA out of the lists of ComfyUI and the WebUIs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def backup_path(path: Path) -> Path:
    """`<name>.<time it was written>.bak` beside `path`, numbered when a backup of that second already exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.lstat().st_mtime))
    candidate, n = path.with_name(f"{path.name}.{stamp}.bak"), 2
    while candidate.exists() or candidate.is_symlink():
        candidate, n = path.with_name(f"{path.name}.{stamp}-{n}.bak"), n + 1
    return candidate


def move_aside(path: Path) -> tuple[Path, str] | None:
    """Rename what is at `path` to its backup: (the backup, when the old one was written), or None if nothing was
    there."""
    if not (path.exists() or path.is_symlink()):
        return None
    written = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.lstat().st_mtime))
    kept = backup_path(path)
    path.rename(kept)
    return kept, written


class EarlierOutputs:
    """A run's saves: what is in the way of a save is moved aside, once per path (what this run wrote itself it
    overwrites)."""

    def __init__(self, warn: Callable[[str, str], None]):
        self.warn = warn
        self.ours: set[Path] = set()

    def make_room(self, paths: list[Path]) -> None:
        for path in paths:
            moved = None if path in self.ours else move_aside(path)
            if moved:
                kept, written = moved
                self.warn(f"{path} was already there (an earlier run's, written {written}): kept as {kept.name} "
                          "beside this run's new one",
                          f"Rename {kept.name} back to use it again, or delete it when you no longer need it; "
                          "a new save.output_name or output_dir keeps runs apart.")
            self.ours.add(path)
