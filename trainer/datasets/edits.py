"""Run one image tool over a dataset: preview what would change, apply it with backups, undo it.

Captions travel with their image: a renamed image's caption files (.txt, .caption) are renamed too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainer.datasets import backups
from trainer.datasets.image_tools import HEIC_HINT, TOOLS, Change, Options, save
from trainer.datasets.listing import free_name
from trainer.datasets.upload import CAPTION_EXTENSIONS, UPLOAD_IMAGES


@dataclass
class Outcome:
    changed: list[Change]
    failed: list[tuple[str, str]]  # (file, reason)
    edit: backups.Edit | None = None


def dataset_images(root: str | Path) -> list[Path]:
    """Every image under `root` (any depth), hidden folders (backups, quarantine) left out."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in UPLOAD_IMAGES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def preview(root: str | Path, tool: str, options: Options | None = None, limit: int | None = None) -> Outcome:
    """What `tool` would change (reads only). `limit` stops after that many changes (a quick look)."""
    fn, options = TOOLS[tool], options or Options()
    out = Outcome([], [])
    for path in dataset_images(root):
        try:
            change = fn(path, options)
        except (OSError, ValueError, SyntaxError) as exc:  # what PIL raises on a broken file
            hint = f" ({HEIC_HINT})" if path.suffix.lower() in (".heic", ".heif") else ""
            out.failed.append((str(path), f"{type(exc).__name__}: {exc}{hint}"))
            continue
        if change:
            out.changed.append(change)
            if limit and len(out.changed) >= limit:
                break
    return out


def apply(workspace: str | Path, root: str | Path, tool: str, options: Options | None = None,
          progress: Callable[[int, int], None] | None = None) -> Outcome:
    """Apply `tool` to every image that needs it, backing up each original first. Returns what changed and
    the edit (for undo); None as the edit when nothing needed changing."""
    root = Path(root).resolve()
    out = preview(root, tool, options)
    if not out.changed:
        return out
    edit = backups.begin(workspace, root, tool)
    taken: set[Path] = set()
    for n, change in enumerate(out.changed, 1):
        _apply_one(edit, change, taken)
        if progress:
            progress(n, len(out.changed))
    out.edit = edit
    return out


def _apply_one(edit: backups.Edit, change: Change, taken: set[Path]) -> None:
    new_path = change.new_path
    if new_path != change.path and (new_path.exists() or new_path in taken):  # never overwrite another image
        new_path = new_path.with_name(free_name(new_path.parent, new_path.name, is_file=True,
                                                taken={p.name for p in taken if p.parent == new_path.parent}))
        change.new_path = new_path
    taken.add(new_path)
    backups.keep(edit, change.path, new_path if new_path == change.path else None)
    if new_path != change.path:
        backups.created(edit, new_path)
    if change.image is None:
        change.path.rename(new_path)
    else:
        save(change.image, new_path)
        if new_path != change.path:
            change.path.unlink()
    if new_path.stem != change.path.stem:
        _move_captions(edit, change.path, new_path)


def _move_captions(edit: backups.Edit, old: Path, new: Path) -> None:
    for ext in CAPTION_EXTENSIONS:
        caption = old.with_suffix(ext)
        if caption.is_file():
            target = new.with_suffix(ext)
            backups.keep(edit, caption, None)
            backups.created(edit, target)
            caption.rename(target)


def undo_last(workspace: str | Path, root: str | Path) -> backups.Edit | None:
    """Undo the newest edit of this dataset that is not undone yet; None when there is none."""
    for edit in backups.history(workspace, root):
        if not edit.undone:
            backups.undo(edit)
            return edit
    return None
