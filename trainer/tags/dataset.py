"""The in-memory caption dataset: which images exist, their tags now, and what was on disk at load.

Each image may have a sidecar caption (same stem, `caption_ext`). Only the first line holds tags; any
further lines (wildcard captions) are kept verbatim in `Item.tail` and written back unchanged.
An image without a caption file counts as an empty caption; a file is created only if it gets tags
and the user saves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from trainer.tags.history import History
from trainer.tags.parse import join_tags, split_tags
from trainer.textio import decode

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
Tags = tuple[str, ...]


@dataclass
class Item:
    # Paths are plain strings: building 20,000 pathlib objects would cost a good part of the load budget.
    image: str
    caption: str
    rel: str                       # image path relative to the dataset root, with '/'
    encoding: str | None           # encoding the caption file was read in; None when there is none
    tail: str = ""                 # everything after the first line, including its line break
    original: Tags = ()            # tags as on disk (updated after each save)
    disk_stamp: tuple[int, int] | None = None  # (mtime_ns, size) at load, to catch edits by others


@dataclass
class TagDataset:
    root: Path
    caption_ext: str = ".txt"
    separator: str = ", "
    items: list[Item] = field(default_factory=list)
    tags: list[Tags] = field(default_factory=list)
    history: History = field(default_factory=History)
    dirty: set[int] = field(default_factory=set)
    version: int = 0   # bumped on every change, so views can cache what they derive from the tags

    def __len__(self) -> int:
        return len(self.items)

    def caption(self, i: int) -> str:
        return join_tags(self.tags[i], self.separator)

    def set(self, i: int, tags: Tags) -> None:
        """Low-level: store tags for item i and keep the unsaved set right. History is the caller's job."""
        self.tags[i] = tags
        self.version += 1
        if tags == self.items[i].original:
            self.dirty.discard(i)
        else:
            self.dirty.add(i)

    @property
    def unsaved_count(self) -> int:
        return len(self.dirty)


def load_dataset(folder: str | os.PathLike, caption_ext: str = ".txt", recursive: bool = False,
                 separator: str = ", ") -> TagDataset:
    """Read every image's caption under `folder` (sub-folders too when `recursive`)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; type the path of the folder that holds the images")
    from trainer.data.scan import normalise_extension

    ext = normalise_extension(caption_ext)
    ds = TagDataset(root=root.resolve(), caption_ext=ext, separator=separator)
    prefix = len(str(ds.root)) + 1
    for image, caption_entry in _scan(str(ds.root), ext, recursive):
        item, tags = _load_item(image, image[prefix:].replace(os.sep, "/"), caption_entry, ext)
        ds.items.append(item)
        ds.tags.append(tags)
    return ds


def _scan(root: str, ext: str, recursive: bool):
    """Yield (image path, caption DirEntry or None) in a stable order (files by name, then sub-folders)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        by_name = {e.name: e for e in entries}
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden folders and our own temp files
            if entry.is_dir():
                subdirs.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTS and entry.is_file():
                stem = os.path.splitext(entry.name)[0]
                yield entry.path, by_name.get(stem + ext)
        if recursive:
            stack.extend(reversed(subdirs))


def _load_item(image: str, rel: str, entry: os.DirEntry | None, ext: str) -> tuple[Item, Tags]:
    caption = os.path.splitext(image)[0] + ext
    if entry is None:
        return Item(image=image, caption=caption, rel=rel, encoding=None), ()
    st = entry.stat()
    with open(caption, "rb") as fh:
        text, encoding = decode(fh.read())
    head, tail = _first_line(text)
    tags = split_tags(head)
    item = Item(image=image, caption=caption, rel=rel, encoding=encoding, tail=tail, original=tags,
                disk_stamp=(st.st_mtime_ns, st.st_size))
    return item, tags


def _first_line(text: str) -> tuple[str, str]:
    cut = len(text)
    for sep in ("\r", "\n"):
        pos = text.find(sep)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut], text[cut:]
