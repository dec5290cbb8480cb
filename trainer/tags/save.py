"""Writing edited captions: only changed files, each atomically, after backing up the old text.

Order matters for safety: every old file is copied to the backup folder first, then files are replaced
one by one with `atomic_write_bytes`, so a crash at any point leaves each caption either old or new, and
the old text is in the backup. The backup folder lies outside the dataset so no trainer reads it.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from trainer import textio
from trainer.tags.dataset import TagDataset

ENCODINGS = ("keep", "utf-8")


class ConflictError(RuntimeError):
    """Caption files were changed by something else after they were loaded."""


@dataclass
class SaveReport:
    written: list[Path] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)   # caption files that did not exist before
    backup_dir: Path | None = None


def pending_indices(ds: TagDataset, encoding: str = "keep") -> list[int]:
    """Items a save would write: changed tags, plus non-UTF-8 files when normalising to UTF-8."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding '{encoding}': choose 'keep' (each file's own) or 'utf-8'")
    todo = set(ds.dirty)
    if encoding == "utf-8":
        todo.update(i for i, it in enumerate(ds.items) if it.encoding not in (None, "utf-8"))
    return sorted(todo)


def default_backup_dir(root: Path, backup_root: Path | None = None, now: float | None = None) -> Path:
    """A fresh folder: <backup_root>/<name>_<time>, or beside the dataset as caption_backup_<name>_<time>.

    The name never starts with digits, so kohya-style scanners do not take it for a `<repeats>_<name>` folder.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = (Path(backup_root) / f"{root.name}_{stamp}") if backup_root else root.parent / f"caption_backup_{root.name}_{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def save_dataset(ds: TagDataset, *, encoding: str = "keep", backup: bool = True,
                 backup_root: str | os.PathLike | None = None, force: bool = False) -> SaveReport:
    """Write the pending captions. Raises ConflictError (writing nothing) if any changed on disk meanwhile."""
    todo = pending_indices(ds, encoding)
    report = SaveReport()
    if not todo:
        return report
    _check_shared_captions(ds, todo)
    if not force:
        _check_conflicts(ds, todo)
    if backup:
        report.backup_dir = _backup(ds, todo, default_backup_dir(ds.root, backup_root and Path(backup_root)))
    for i in todo:
        item = ds.items[i]
        existed = item.encoding is not None
        data, used = _encode(ds.caption(i) + item.tail, item.encoding, encoding)
        textio.atomic_write_bytes(item.caption, data)
        # Update the in-memory state file by file, so after a crash a retry writes only what is left.
        st = os.stat(item.caption)
        item.original, item.encoding, item.disk_stamp = ds.tags[i], used, (st.st_mtime_ns, st.st_size)
        ds.dirty.discard(i)
        report.written.append(Path(item.caption))
        if not existed:
            report.created.append(Path(item.caption))
    return report


def _encode(text: str, current: str | None, mode: str) -> tuple[bytes, str]:
    enc = "utf-8" if mode == "utf-8" or current is None else current
    try:
        return text.encode(enc), enc
    except UnicodeEncodeError:
        return text.encode("utf-8"), "utf-8"  # e.g. a new tag the old code page cannot hold


def _disk_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _check_conflicts(ds: TagDataset, todo: list[int]) -> None:
    changed = [ds.items[i].caption for i in todo if _disk_stamp(ds.items[i].caption) != ds.items[i].disk_stamp]
    if changed:
        raise ConflictError(
            f"{len(changed)} caption file(s) changed on disk after loading, e.g. {changed[0]}; "
            "reload the folder (your edits would be lost) or save again with overwrite on (CLI: --force); the "
            "backup keeps their current text")


def _check_shared_captions(ds: TagDataset, todo: list[int]) -> None:
    """a.png and a.jpg both read a.txt: saving different tags for them would silently keep only one."""
    by_file: dict[str, list[int]] = {}
    for j, item in enumerate(ds.items):
        by_file.setdefault(item.caption, []).append(j)
    for i in todo:
        other = next((j for j in by_file[ds.items[i].caption] if ds.tags[j] != ds.tags[i]), None)
        if other is not None:
            raise ValueError(
                f"{ds.items[i].rel} and {ds.items[other].rel} share the caption file {ds.items[i].caption} "
                "but now have different tags; give them the same tags, or rename one image so each has its own caption")


def _backup(ds: TagDataset, todo: list[int], dest: Path) -> Path:
    """Copy each caption about to be replaced to dest/<relative path>; list the files that will be new."""
    dest.mkdir(parents=True)
    new_files = []
    for i in todo:
        item = ds.items[i]
        rel = os.path.splitext(item.rel)[0] + ds.caption_ext
        if os.path.exists(item.caption):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item.caption, dest / rel)
        else:
            new_files.append(rel)
    if new_files:
        # To restore, delete these: they had no caption file before this save.
        (dest / "_new_files.txt").write_text("\n".join(new_files) + "\n", encoding="utf-8")
    return dest
