"""Helpers for the dataset tests: a folder's files by content, to prove an undo restores exact bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_digests(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file below `root`."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
