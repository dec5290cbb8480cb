"""Splitting a caption into tags and joining them back.

Tags are separated by commas, but a comma inside brackets belongs to its tag: `(red hair, blue eyes:1.2)`
is one weighted tag. A backslash escapes the next character, so `\\(x\\)` is a literal and does not open a
bracket. A bracket that never closes (a kaomoji like `:(`) is treated as a plain character.
"""

from __future__ import annotations

_OPEN = {"(": ")", "[": "]"}
_CLOSE = {")", "]"}
_SPECIAL = frozenset("([\\")


def split_tags(text: str) -> tuple[str, ...]:
    """Tags of one caption line, stripped, empty ones dropped, order and duplicates kept."""
    if not _SPECIAL.intersection(text):
        # Fast path: most captions have no brackets; this keeps 10k-file loads well under a second.
        parts = [p.strip() for p in text.split(",")]
        return tuple(p for p in parts if p) if "" in parts else tuple(parts)
    literal: set[int] = set()
    while True:
        pieces, unclosed = _scan(text, literal)
        if unclosed is None:
            return tuple(t for t in (p.strip() for p in pieces) if t)
        literal.add(unclosed)  # the outermost opener that never closed is just a character


def _scan(text: str, literal: set[int]) -> tuple[list[str], int | None]:
    """Split at top-level commas. Returns (pieces, index of an unclosed opener or None)."""
    pieces: list[str] = []
    stack: list[int] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch in _OPEN and i not in literal:
            stack.append(i)
        elif ch in _CLOSE and stack and _OPEN[text[stack[-1]]] == ch:
            stack.pop()
        elif ch == "," and not stack:
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    pieces.append(text[start:])
    return pieces, (stack[0] if stack else None)


def join_tags(tags: tuple[str, ...] | list[str], separator: str = ", ") -> str:
    return separator.join(tags)
