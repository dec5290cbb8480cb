"""Named bulk operations on a set of images, with a dry-run count and an undo step per operation."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from trainer.tags import ops
from trainer.tags.dataset import TagDataset

Tags = tuple[str, ...]
OP_NAMES = ("delete", "add", "replace", "regex", "front", "sort", "dedupe", "escape", "unescape", "underscores")


@dataclass(frozen=True)
class Op:
    label: str                      # shown in undo history, e.g. "delete: solo"
    fn: Callable[[Tags], Tags]


def _need_tags(name: str, tags: Iterable[str] | None) -> list[str]:
    clean = [t.strip() for t in (tags or []) if t and t.strip()]
    if not clean:
        raise ValueError(f"{name}: give at least one tag (e.g. --tag solo)")
    return clean


def make_op(name: str, *, tags: Iterable[str] | None = None, front: bool = False, old: str = "",
            new: str = "", pattern: str = "", repl: str = "", whole_caption: bool = False,
            keep_first: int = 0, reverse: bool = False, separator: str = ", ") -> Op:
    """Build one of OP_NAMES from its parameters; bad parameters raise ValueError saying what to give."""
    if name == "delete":
        targets = _need_tags(name, tags)
        return Op(f"delete: {', '.join(targets)}", lambda t: ops.delete(t, targets))
    if name == "add":
        extra = _need_tags(name, tags)
        where = "front" if front else "back"
        return Op(f"add ({where}): {', '.join(extra)}", lambda t: ops.add(t, extra, front=front))
    if name == "replace":
        if not old.strip():
            raise ValueError("replace: give the tag to replace (--old) and its replacement (--new)")
        o, n = old.strip(), new.strip()
        return Op(f"replace: {o} -> {n}", lambda t: ops.replace(t, o, n))
    if name == "regex":
        rx = _compile(pattern, repl)
        label = f"regex: {pattern} -> {repl}"
        if whole_caption:
            return Op(label, lambda t: ops.regex_replace(t, rx, repl, separator, whole_caption=True))
        one = ops.regex_tag_fn(rx, repl)  # built once per operation, so its memo spans all captions
        return Op(label, lambda t: ops.map_tags(t, one))
    if name == "front":
        first = _need_tags(name, tags)
        return Op(f"move to front: {', '.join(first)}", lambda t: ops.move_to_front(t, first))
    if name == "sort":
        return Op("sort", lambda t: ops.sort_tags(t, keep_first=max(0, int(keep_first)), reverse=reverse))
    simple = {"dedupe": ops.dedupe, "escape": ops.escape_brackets, "unescape": ops.unescape_brackets,
              "underscores": ops.underscores_to_spaces}
    if name in simple:
        return Op(name, simple[name])
    raise ValueError(f"unknown tag operation '{name}'; choose one of {', '.join(OP_NAMES)}")


def _compile(pattern: str, repl: str) -> re.Pattern:
    if not pattern:
        raise ValueError("regex: give a pattern (Python regular expression syntax)")
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regex: pattern '{pattern}' is invalid ({exc}); fix the expression") from exc
    try:
        rx.sub(repl, "")  # checks group references in the replacement
    except (re.error, IndexError) as exc:
        raise ValueError(f"regex: replacement '{repl}' is invalid ({exc}); use \\1 only for groups the "
                         "pattern has") from exc
    return rx


def _changes(ds: TagDataset, indices: Iterable[int], op: Op) -> dict[int, tuple[Tags, Tags]]:
    out = {}
    for i in indices:
        before = ds.tags[i]
        after = tuple(op.fn(before))
        if after != before:
            out[i] = (before, after)
    return out


def preview_count(ds: TagDataset, indices: Iterable[int], op: Op) -> int:
    """How many of `indices` the operation would change (nothing is modified)."""
    return len(_changes(ds, indices, op))


def apply_op(ds: TagDataset, indices: Iterable[int], op: Op) -> int:
    """Apply to the given images, record one undo step; returns how many captions changed."""
    changes = _changes(ds, indices, op)
    for i, (_before, after) in changes.items():
        ds.set(i, after)
    ds.history.record(op.label, changes)
    return len(changes)


def set_tags(ds: TagDataset, i: int, tags: Iterable[str], label: str = "edit caption") -> bool:
    """Per-image edit (the editor's caption box); one undo step. Returns whether anything changed."""
    before, after = ds.tags[i], tuple(t for t in (s.strip() for s in tags) if t)
    if after == before:
        return False
    ds.set(i, after)
    ds.history.record(f"{label}: {ds.items[i].rel}", {i: (before, after)})
    return True
