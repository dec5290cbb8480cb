"""Act on the doctor's duplicate groups: keep one image, move the others (with captions) to a quarantine
folder in the workspace, and put them back on request.

Groups come from trainer.doctor.hashing (the doctor's own rule). A quarantine is a journal like the image
tools' backups (trainer.datasets.backups, area "quarantine"), so restoring is byte-exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainer.data.images import load_image
from trainer.data.scan import IMAGE_EXTENSIONS
from trainer.datasets import backups
from trainer.datasets.edits import dataset_images
from trainer.datasets.upload import CAPTION_EXTENSIONS
from trainer.doctor.hashing import NEAR_DISTANCE, duplicate_groups

AREA = "quarantine"


@dataclass(frozen=True)
class Group:
    files: tuple[str, ...]
    exact: bool  # byte-identical; else near (perceptual-hash distance)
    distance: int = 0


def find_groups(root: str | Path, near_distance: int = NEAR_DISTANCE,
                progress: Callable[[int, int], None] | None = None) -> list[Group]:
    """Identical groups first, then look-alike groups, each sorted by path."""
    paths = [str(p) for p in dataset_images(root) if p.suffix.lower() in IMAGE_EXTENSIONS]
    exact, near, _ = duplicate_groups(paths, load_image, near_distance, progress)
    return [Group(tuple(g), True) for g in exact] + [Group(tuple(sorted(g)), False, d) for g, d in near]


def quarantine(workspace: str | Path, root: str | Path, group: Group, keep: str) -> backups.Edit:
    """Move every file of `group` except `keep`, and their caption files, into the quarantine."""
    if keep not in group.files:
        raise ValueError(f"'{keep}' is not in this group; choose one of its files to keep. / 要保留的文件不在该组中。")
    edit = backups.begin(workspace, Path(root).resolve(), "quarantine", area=AREA)
    for path in map(Path, group.files):
        if str(path) == keep or not path.exists():
            continue
        for f in [path] + [path.with_suffix(ext) for ext in CAPTION_EXTENSIONS if path.with_suffix(ext).is_file()]:
            backups.keep(edit, f, None)
            f.unlink()
    return edit


def quarantined(workspace: str | Path, root: str | Path) -> list[backups.Edit]:
    """This dataset's quarantines that are not restored yet, newest first."""
    return [e for e in backups.history(workspace, root, area=AREA) if not e.undone]


def restore(edit: backups.Edit) -> int:
    """Put a quarantine's files back where they were, byte for byte; returns how many."""
    return backups.undo(edit)
