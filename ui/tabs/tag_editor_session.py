"""What one browser session of the Tag Editor holds, and the actions on it. No gradio here.

The tab module wires these to widgets; keeping them plain makes them fast to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trainer import sandbox
from trainer.tags import Filter, TagDataset, apply_op, filter_indices, frequency, load_dataset, set_tags
from trainer.tags.bulk import Op, preview_count
from trainer.tags.parse import split_tags
from trainer.tags.save import SaveReport, save_dataset
from trainer.tags.thumbs import thumbnail, thumbnails

PAGE_SIZE = 48
FREQ_ROWS = 1000       # the frequency list shows this many rows; the search box narrows it
CHOICES_LIMIT = 3000   # completion choices sent to the browser


class Notice(ValueError):
    """A message for the user, by i18n key (tag_editor.<key>), raised where an action cannot proceed."""

    def __init__(self, key: str, **fmt: object):
        super().__init__(key)
        self.key, self.fmt = key, fmt


@dataclass
class Session:
    ds: TagDataset | None = None
    flt: Filter = field(default_factory=Filter)
    shown: list[int] = field(default_factory=list)   # dataset indices passing the filter
    page: int = 0
    current: int | None = None                       # dataset index open in the per-image editor
    _freq: dict = field(default_factory=dict)        # (dataset version, shown?) -> frequency table
    gallery_map: list[int] = field(default_factory=list)  # gallery position -> dataset index
    discard_armed: str | None = None                 # folder whose reload was asked once with unsaved edits

    def load(self, folder: str, ext: str, recursive: bool, separator: str) -> "Notice | None":
        if not (folder or "").strip():
            raise Notice("need_folder")
        if self.ds is not None and self.ds.unsaved_count and self.discard_armed != folder:
            self.discard_armed = folder  # a second Load of the same folder discards the edits
            raise Notice("discard_unsaved", n=self.ds.unsaved_count)
        self.discard_armed = None
        sandbox.allowed(folder.strip(), "Tag Editor")
        self.ds = load_dataset(folder.strip(), caption_ext=(ext or ".txt").strip(), recursive=recursive,
                               separator=separator or ", ")
        self.flt = Filter()
        self.refilter()
        self.current = self.shown[0] if self.shown else None
        if self.ds.skipped:  # symlinked or FIFO captions, folder links out or in a loop: say so, once
            path, why = self.ds.skipped[0]
            return Notice("skipped", n=len(self.ds.skipped), first=f"{path}: {why}")
        return None

    def require(self) -> TagDataset:
        if self.ds is None:
            raise Notice("need_load")
        return self.ds

    def set_filter(self, all_of=(), any_of=(), none_of=(), text: str = "") -> None:
        self.flt = Filter(list(all_of or []), list(any_of or []), list(none_of or []), text or "")
        self.refilter()

    def refilter(self, keep_page: bool = False) -> None:
        self.shown = filter_indices(self.ds, self.flt) if self.ds else []
        self.page = min(self.page, self.page_count - 1) if keep_page else 0

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.shown) // PAGE_SIZE))

    def turn_page(self, delta: int) -> None:
        self.page = max(0, min(self.page_count - 1, self.page + delta))

    def page_indices(self) -> list[int]:
        start = self.page * PAGE_SIZE
        return self.shown[start:start + PAGE_SIZE]

    def gallery(self, cache_dir: Path) -> list[tuple[str, str]]:
        """(thumbnail path, caption) for the current page; unreadable images are left out."""
        if self.ds is None:
            return []
        ds = self.ds
        idx = self.page_indices()
        thumbs = thumbnails([ds.items[i].image for i in idx], cache_dir)
        shown = [(i, p) for i, p in zip(idx, thumbs, strict=True) if p is not None]
        self.gallery_map = [i for i, _ in shown]  # unreadable images are skipped, so positions shift
        # The file name alone: the narrow caption would show only a concept folder's name, cut off.
        return [(str(p), ds.items[i].rel.rsplit("/", 1)[-1]) for i, p in shown]

    def frequency(self, shown_only: bool) -> list[tuple[str, int]]:
        """Frequency of the shown images (or all), cached until the tags or the filter change."""
        key = (id(self.ds), self.ds.version, tuple(self.shown) if shown_only else None)
        if key not in self._freq:
            self._freq = {k: v for k, v in self._freq.items() if k[:2] == key[:2]}  # drop stale versions
            self._freq[key] = frequency(self.ds, self.shown if shown_only else None)
        return self._freq[key]

    def freq_rows(self, search: str = "") -> list[list]:
        if self.ds is None:
            return []
        rows = self.frequency(shown_only=True)
        needle = (search or "").strip().casefold()
        if needle:
            rows = [r for r in rows if needle in r[0].casefold()]
        return [[tag, count] for tag, count in rows[:FREQ_ROWS]]

    def tag_choices(self) -> list[str]:
        return [tag for tag, _ in self.frequency(shown_only=False)[:CHOICES_LIMIT]] if self.ds else []

    def add_filter_tag(self, tag: str) -> None:
        if tag and tag not in self.flt.all_of:
            self.flt.all_of.append(tag)
            self.refilter()

    # -- edits -------------------------------------------------------------------------------------------
    def preview(self, op: Op) -> int:
        return preview_count(self.require(), self.shown, op)

    def apply(self, op: Op) -> int:
        changed = apply_op(self.require(), self.shown, op)
        self.refilter(keep_page=True)
        return changed

    def undo(self) -> str | None:
        label = self.require().history.undo(self.ds)
        self.refilter(keep_page=True)
        return label

    def redo(self) -> str | None:
        label = self.require().history.redo(self.ds)
        self.refilter(keep_page=True)
        return label

    def save(self, encoding: str, backup: bool, backup_root: Path | None, force: bool = False) -> SaveReport:
        return save_dataset(self.require(), encoding=encoding, backup=backup, backup_root=backup_root, force=force)

    # -- per-image editor ----------------------------------------------------------------------------------
    def select_on_page(self, pos: int) -> None:
        """The user clicked gallery position `pos` (of the page last rendered)."""
        if 0 <= pos < len(self.gallery_map):
            self.current = self.gallery_map[pos]

    def step(self, delta: int) -> None:
        """Previous/next image within the filtered set (wrapping), following it across pages."""
        if not self.shown:
            return
        n = len(self.shown)
        if self.current in self.shown:
            pos = (self.shown.index(self.current) + delta) % n
        else:
            pos = 0 if delta > 0 else n - 1
        self.current = self.shown[pos]
        self.page = pos // PAGE_SIZE

    def edit_current(self, tags: list[str] | str) -> bool:
        ds = self.require()
        if self.current is None:
            raise Notice("need_image")
        new = split_tags(tags) if isinstance(tags, str) else tags
        changed = set_tags(ds, self.current, new)
        if changed:
            self.refilter(keep_page=True)
        return changed

    def current_view(self, cache_dir: Path) -> tuple[str | None, list[str], str, str]:
        """(preview image path, tags, caption text, 'file (n / N)') for the editor."""
        if self.ds is None or self.current is None:
            return None, [], "", ""
        item = self.ds.items[self.current]
        try:
            image = str(thumbnail(item.image, cache_dir, size=768))
        except ValueError:
            image = None
        pos = self.shown.index(self.current) + 1 if self.current in self.shown else "–"
        where = f"{item.rel} ({pos} / {len(self.shown)})"
        return image, list(self.ds.tags[self.current]), self.ds.caption(self.current), where


def op_from_form(name: str, tags_text: str = "", front: bool = False, old: str = "", new: str = "",
                 pattern: str = "", repl: str = "", whole_caption: bool = False, separator: str = ", ") -> Op:
    """The bulk-operation form's fields -> an Op (ValueError says which field is missing)."""
    from trainer.tags import make_op

    return make_op(name, tags=split_tags(tags_text or ""), front=bool(front), old=old or "", new=new or "",
                   pattern=pattern or "", repl=repl or "", whole_caption=bool(whole_caption), separator=separator)
