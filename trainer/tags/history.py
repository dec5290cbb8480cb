"""Undo/redo for tag edits, storing only what changed.

A step is {item index: (tags before, tags after)} for the captions an operation actually changed, so an
operation on 10,000 images costs memory for the changed captions only, never a copy of the dataset.
Tag tuples are immutable, so before/after share storage with the dataset itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainer.tags.dataset import TagDataset

Tags = tuple[str, ...]


@dataclass
class Step:
    label: str
    changes: dict[int, tuple[Tags, Tags]]


@dataclass
class History:
    limit: int = 200
    done: list[Step] = field(default_factory=list)
    undone: list[Step] = field(default_factory=list)

    def record(self, label: str, changes: dict[int, tuple[Tags, Tags]]) -> None:
        if not changes:
            return  # a no-op is not worth an undo step
        self.done.append(Step(label, changes))
        self.undone.clear()
        if len(self.done) > self.limit:
            del self.done[0]

    def undo(self, ds: TagDataset) -> str | None:
        """Revert the last step; returns its label, or None when there is nothing to undo."""
        if not self.done:
            return None
        step = self.done.pop()
        for i, (before, _after) in step.changes.items():
            ds.set(i, before)
        self.undone.append(step)
        return step.label

    def redo(self, ds: TagDataset) -> str | None:
        if not self.undone:
            return None
        step = self.undone.pop()
        for i, (_before, after) in step.changes.items():
            ds.set(i, after)
        self.done.append(step)
        return step.label

    @property
    def can_undo(self) -> bool:
        return bool(self.done)

    @property
    def can_redo(self) -> bool:
        return bool(self.undone)
