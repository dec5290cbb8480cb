"""Choosing images (by tags and text) and counting tags."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from trainer.tags.dataset import TagDataset


@dataclass
class Filter:
    all_of: list[str] = field(default_factory=list)   # image has every one of these
    any_of: list[str] = field(default_factory=list)   # image has at least one
    none_of: list[str] = field(default_factory=list)  # image has none
    text: str = ""                                    # case-insensitive substring of the caption or file path

    def is_empty(self) -> bool:
        return not (self.all_of or self.any_of or self.none_of or self.text.strip())


def filter_indices(ds: TagDataset, flt: Filter | None = None) -> list[int]:
    """Indices of the images that pass every part of the filter, in dataset order."""
    if flt is None or flt.is_empty():
        return list(range(len(ds)))
    need, some, banned = set(flt.all_of), set(flt.any_of), set(flt.none_of)
    needle = flt.text.strip().casefold()
    out = []
    for i, tags in enumerate(ds.tags):
        have = set(tags)
        if need and not need <= have:
            continue
        if some and have.isdisjoint(some):
            continue
        if banned and not have.isdisjoint(banned):
            continue
        if needle and needle not in ds.caption(i).casefold() and needle not in ds.items[i].rel.casefold():
            continue
        out.append(i)
    return out


def frequency(ds: TagDataset, indices: Iterable[int] | None = None) -> list[tuple[str, int]]:
    """(tag, number of images having it), most common first, ties alphabetical.

    A tag repeated inside one caption counts once for that image.
    """
    rows = ds.tags if indices is None else (ds.tags[i] for i in indices)
    counts: Counter[str] = Counter()
    for tags in rows:
        counts.update(set(tags))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
