"""Write caption files beside the images without ever losing what was there.

An existing caption is skipped, overwritten, appended to or prepended to (tags deduplicated). Before a
caption file changes, its original is copied into a backup folder that mirrors the image folder; the
backup folder must not sit beside the images, because a trainer reads every file there.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from trainer.tagger.postprocess import dedupe, parse_tag_list
from trainer.textio import atomic_write_text, read_text

ACTIONS = ("skip", "overwrite", "append", "prepend")


def caption_path(image: Path, extension: str) -> Path:
    return image.with_suffix(normalise_extension(extension))


def normalise_extension(extension: str) -> str:
    from trainer.data.scan import normalise_extension as shared_rule  # one rule for every caption writer

    return shared_rule(extension)


def merge_caption(existing: str, tags: list[str], action: str, first: list[str] | None = None) -> str:
    """The caption text to write, given the file's current text and the new tags.

    Only the first line holds tags (what trainers read); further lines of an existing file are kept.
    `first` (the always-first tags) stays at the front even when new tags are appended.
    """
    if action not in ACTIONS:
        raise ValueError(f"existing-caption action '{action}' is unknown; choose one of {', '.join(ACTIONS)}")
    head, newline, rest = existing.partition("\n")
    old = parse_tag_list(head)
    if action == "overwrite" or not existing.strip():
        merged, rest = list(tags), ""
    elif action == "append":
        merged = dedupe([t.strip() for t in (first or []) if t.strip()] + old + tags)
    elif action == "prepend":
        merged = dedupe(tags + old)
    else:
        return existing
    line = ", ".join(merged)
    return line + "\n" + rest if rest else line


@dataclass
class BackupFolder:
    """Copies originals into `folder`, keeping their path relative to `root` (the tagged image folder)."""

    root: Path
    folder: Path

    def save(self, caption: Path) -> Path:
        # Relative to the folder as listed, links not resolved: a caption is always under the root it was
        # found in, wherever a link would lead.
        dest = self.folder / Path(os.path.abspath(caption)).relative_to(os.path.abspath(self.root))
        if dest.exists():
            return dest  # already saved this run: keep the first (true) original
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(caption, dest)
        return dest


def write_caption(
    image: Path,
    tags: list[str],
    action: str = "skip",
    extension: str = ".txt",
    backup: BackupFolder | None = None,
    first: list[str] | None = None,
) -> str:
    """Write the caption for `image`; returns 'written', 'skipped' or 'unchanged'."""
    path = caption_path(image, extension)
    existing = ""
    if os.path.lexists(path):  # a dangling symlink too: read_text refuses it, never replaced
        if action == "skip":
            return "skipped"
        existing, _ = read_text(path, follow_symlinks=False)  # OSError for a symlink or FIFO: reported
    text = merge_caption(existing, tags, action, first)
    if path.exists() and text == existing:
        return "unchanged"
    if path.exists() and backup is not None:
        backup.save(path)
    atomic_write_text(path, text)  # UTF-8, what the trainers read; a GBK original stays in the backup
    return "written"
