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

from trainer.data.folder_images import folder_images
from trainer.tags.history import History
from trainer.tags.parse import join_tags, split_tags
from trainer.textio import read_text

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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) left out at load

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
    """Read every image's caption under `folder` (sub-folders too when `recursive`; a training folder's
    `<repeats>_<name>` sub-folders always: trainer/data/folder_images.py). No images is a ValueError."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; type the path of the folder that holds the images")
    from trainer.data.scan import normalise_extension

    ext = normalise_extension(caption_ext)
    ds = TagDataset(root=root.resolve(), caption_ext=ext, separator=separator)
    prefix = len(str(ds.root)) + 1
    listing = folder_images(ds.root, recursive)
    ds.skipped = listing.skipped
    for image in listing.files:  # each folder's files by name, then its sub-folders
        try:
            item, tags = _load_item(image, image[prefix:].replace(os.sep, "/"), ext)
        except OSError as exc:  # a symlinked or FIFO caption: never shown, never written through
            ds.skipped.append((os.path.splitext(image)[0] + ext, exc.strerror or str(exc)))
            continue
        ds.items.append(item)
        ds.tags.append(tags)
    return ds


def _load_item(image: str, rel: str, ext: str) -> tuple[Item, Tags]:
    caption = os.path.splitext(image)[0] + ext
    try:
        st = os.lstat(caption)
    except FileNotFoundError:
        return Item(image=image, caption=caption, rel=rel, encoding=None), ()
    text, encoding = read_text(caption, follow_symlinks=False)
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
