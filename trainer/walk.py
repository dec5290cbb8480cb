"""Listing the files of a user's folder without being led astray by what it holds.

A dataset folder can hold symlinks to folders elsewhere (outside the dataset, or back into itself: a loop
that would list every image dozens of times), FIFOs or devices named like images (reading one blocks
forever). Every scanner (dataset scan, tagger, tag editor) lists through `walk_files`: it follows a folder
symlink only when it stays inside the root and was not visited yet, lists only regular files, and reports
what it skipped instead of failing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field


@dataclass
class Listing:
    # Plain strings: a tag editor lists 20,000 images and pathlib objects would cost a good part of its budget.
    files: list[str] = field(default_factory=list)  # each folder's files by name, then its sub-folders
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why), for the user to see


def walk_files(root: str | os.PathLike, suffixes, *, recursive: bool = True,
               exclude: str | os.PathLike | None = None) -> Listing:
    """Regular files under `root` whose lower-cased suffix is in `suffixes`; hidden names are left out.

    `exclude` is a folder never entered, e.g. the caption backups of a tagger run."""
    real_root = os.path.realpath(root)
    excluded = os.path.realpath(exclude) if exclude is not None else None
    out = Listing()
    visited = {real_root}
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            out.skipped.append((folder, f"cannot list folder ({exc.strerror or exc})"))
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden folders and our own temp files
            kind, why = _kind(entry, real_root)
            wanted = os.path.splitext(entry.name)[1].lower() in suffixes
            if why:
                out.skipped.append((entry.path, why))
            elif kind == "dir" and recursive:
                real = os.path.realpath(entry.path)
                if real == excluded or (excluded and real.startswith(excluded + os.sep)):
                    continue
                if real in visited:
                    out.skipped.append((entry.path, "folder already listed (a symlink loop or a second link to it)"))
                    continue
                visited.add(real)
                subdirs.append(entry.path)
            elif kind == "file" and wanted:
                out.files.append(entry.path)
            elif kind == "other" and wanted:
                out.skipped.append((entry.path, "not a regular file (a FIFO, device or socket)"))
        stack.extend(reversed(subdirs))
    return out


def escapes(path: str | os.PathLike, real_root: str) -> bool:
    """Whether `path`, links followed, lies outside `real_root` (itself already resolved)."""
    target = os.path.realpath(path)
    return target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep)


def _kind(entry: os.DirEntry, real_root: str) -> tuple[str, str]:
    """("dir" | "file" | "other", why it must be skipped or "")."""
    try:
        mode = entry.stat().st_mode  # follows a symlink
    except OSError as exc:  # dangling, or a loop of links
        return "other", f"broken or looping symlink ({exc.strerror or exc})" if entry.is_symlink() else str(exc)
    if stat.S_ISDIR(mode):
        if entry.is_symlink() and escapes(entry.path, real_root):
            return "other", f"folder symlink pointing outside {real_root}; not followed"
        return "dir", ""
    return ("file", "") if stat.S_ISREG(mode) else ("other", "")
