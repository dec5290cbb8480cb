"""A journal of dataset edits with byte-exact backups, so every edit can be undone.

Each edit (one tool over a dataset) gets a folder `<workspace>/backups/images/<id>/` holding `journal.json`
and `files/<path relative to the dataset>`: a copy of every file before it was changed, renamed or removed.
Undo puts each original back byte for byte and removes what the edit created.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

JOURNAL = "journal.json"


@dataclass
class Entry:
    original: str | None  # path relative to the dataset before the edit (None: the edit created `result`)
    result: str | None  # path after the edit (None: the edit removed the original)


@dataclass
class Edit:
    folder: Path  # the backup folder of this edit
    dataset: str  # the dataset folder the paths are relative to
    tool: str
    created: float
    entries: list[Entry] = field(default_factory=list)
    undone: bool = False

    @property
    def id(self) -> str:
        return self.folder.name

    def save(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "folder"}
        tmp = self.folder / (JOURNAL + ".part")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.folder / JOURNAL)


def backups_dir(workspace: str | Path, area: str = "backups") -> Path:
    """Image-tool backups live in backups/images; quarantined duplicates in quarantine/ (same journal)."""
    return Path(workspace) / area / "images" if area == "backups" else Path(workspace) / area


def begin(workspace: str | Path, dataset: str | Path, tool: str, area: str = "backups") -> Edit:
    """A new, empty edit; call `keep` for every file before touching it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = backups_dir(workspace, area) / f"{stamp}-{tool}-{uuid.uuid4().hex[:6]}"
    (folder / "files").mkdir(parents=True)
    edit = Edit(folder, str(Path(dataset).resolve()), tool, time.time())
    edit.save()
    return edit


def keep(edit: Edit, path: Path, result: Path | None) -> None:
    """Back up `path` (a file of the dataset) before it becomes `result` (same path, a new one, or None)."""
    root = Path(edit.dataset)
    rel = path.resolve().relative_to(root).as_posix()
    target = edit.folder / "files" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():  # a file touched twice in one edit: the first copy is the original
        shutil.copy2(path, target)
    edit.entries.append(Entry(rel, result.resolve().relative_to(root).as_posix() if result else None))
    edit.save()  # journal first: a crash mid-edit still leaves a complete record of what was backed up


def created(edit: Edit, path: Path) -> None:
    """Record a file the edit made that replaces nothing (undo deletes it)."""
    edit.entries.append(Entry(None, path.resolve().relative_to(Path(edit.dataset)).as_posix()))
    edit.save()


def load(folder: Path) -> Edit:
    data = json.loads((folder / JOURNAL).read_text(encoding="utf-8"))
    data["entries"] = [Entry(**e) for e in data["entries"]]
    return Edit(folder=folder, **data)


def history(workspace: str | Path, dataset: str | Path | None = None, area: str = "backups") -> list[Edit]:
    """Edits newest first; only those of `dataset` when given; undone ones included (marked)."""
    root = backups_dir(workspace, area)
    want = str(Path(dataset).resolve()) if dataset else None
    edits = [load(f) for f in root.iterdir() if (f / JOURNAL).is_file()] if root.is_dir() else []
    return sorted((e for e in edits if want is None or e.dataset == want), key=lambda e: e.created, reverse=True)


def undo(edit: Edit) -> int:
    """Restore every original byte for byte and remove what the edit created; returns files restored."""
    if edit.undone:
        raise ValueError(f"edit {edit.id} was already undone. / 该修改已撤销。")
    root = Path(edit.dataset)
    made = {e.result for e in edit.entries if e.result}
    clash = [e.original for e in edit.entries
             if e.original and e.original not in made and (root / e.original).exists()]
    if clash:  # a new file took the old name meanwhile: never overwrite it
        raise ValueError(f"cannot undo {edit.id}: {', '.join(clash[:3])} exist(s) again; move them away first. / "
                         f"无法撤销：{', '.join(clash[:3])} 已重新存在，请先移走。")
    for e in reversed(edit.entries):  # reverse: a later step may have changed a file an earlier one made
        if e.result and e.result != e.original:
            (root / e.result).unlink(missing_ok=True)
    restored = 0
    for e in edit.entries:
        if e.original:
            target = root / e.original
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(edit.folder / "files" / e.original, target)
            restored += 1
    edit.undone = True
    edit.save()
    return restored
