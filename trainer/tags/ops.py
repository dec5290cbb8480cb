"""Pure tag operations: each takes a caption's tags (a tuple) and returns the new tuple.

No I/O and no dataset here, so every rule can be tested on its own and reused by the CLI and the UI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from trainer.tags.parse import split_tags

Tags = tuple[str, ...]

# Kaomoji keep their underscores: `^_^` is a face, not "^ ^". Tagger vocabularies use these.
KAOMOJI = frozenset({
    "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9", ">_o",
    "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||", "-_-", "o_0", "0_o", ";_;", "t_t", "q_q",
})
_WEIGHTED = re.compile(r"^\((?P<body>.*):(?P<weight>[-+]?\d*\.?\d+)\)$", re.S)
_UNESCAPED_BRACKET = re.compile(r"(?<!\\)([()])")
_ESCAPED_BRACKET = re.compile(r"\\([()])")


def dedupe(tags: Iterable[str]) -> Tags:
    """Keep the first occurrence of each tag, in order."""
    return tuple(dict.fromkeys(tags))


def delete(tags: Tags, targets: Iterable[str]) -> Tags:
    drop = set(targets)
    return tuple(t for t in tags if t not in drop)


def add(tags: Tags, new: Iterable[str], front: bool = False) -> Tags:
    """Add tags not already present; at the front they keep the order given."""
    have = set(tags)
    extra = tuple(dict.fromkeys(t for t in new if t and t not in have))
    return extra + tuple(tags) if front else tuple(tags) + extra


def replace(tags: Tags, old: str, new: str) -> Tags:
    """Replace tag `old` by `new` in place (an empty `new` deletes it); a resulting duplicate is dropped."""
    if old not in tags:
        return tags
    out = [new if t == old else t for t in tags]
    return dedupe(t for t in out if t)


def regex_replace(tags: Tags, pattern: str | re.Pattern, repl: str, separator: str = ", ",
                  whole_caption: bool = False) -> Tags:
    """re.sub on every tag (or on the joined caption, then re-split). Tags that become empty are dropped."""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    if whole_caption:
        return split_tags(rx.sub(repl, separator.join(tags)))
    return map_tags(tags, regex_tag_fn(rx, repl))


def regex_tag_fn(rx: re.Pattern, repl: str):
    """tag -> replaced tag, remembering each distinct tag: a 10k-image dataset has ~300k tags but only a
    few thousand distinct ones, so a bulk regex runs re.sub a few thousand times, not 300k."""
    sub = fast_sub(rx, repl)
    memo: dict[str, str] = {}

    def one(tag: str) -> str:
        out = memo.get(tag)
        if out is None:
            out = memo[tag] = sub(tag).strip() if rx.search(tag) else tag
        return out

    return one


def map_tags(tags: Tags, one) -> Tags:
    """Map every tag through `one`, dropping tags that became empty."""
    out = [one(t) for t in tags]
    return tuple(s for s in out if s) if "" in out else tuple(out)


_SIMPLE_TEMPLATE = re.compile(r"(?:[^\\]|\\[1-9](?!\d)|\\g<\w+>)*")
_TEMPLATE_PART = re.compile(r"\\([1-9])|\\g<(\w+)>")


@lru_cache(maxsize=32)  # one compiled replacement per bulk operation, not per caption
def fast_sub(rx: re.Pattern, repl: str):
    """`lambda text: rx.sub(repl, text)`, but with group references expanded without re's slow per-match
    template expansion (Python 3.11 spends ~3 us a match there; 300k tags must take well under a second).
    Templates other than literal text, \\1..\\9 and \\g<name> go to re itself."""
    if "\\" not in repl or not _SIMPLE_TEMPLATE.fullmatch(repl):
        return lambda text: rx.sub(repl, text)
    parts: list[tuple[bool, str | int]] = []   # (is a group reference, literal text or group)
    pos = 0
    for m in _TEMPLATE_PART.finditer(repl):
        parts.append((False, repl[pos:m.start()]))
        ref = m.group(1) or m.group(2)
        parts.append((True, int(ref) if ref.isdigit() else ref))
        pos = m.end()
    parts.append((False, repl[pos:]))
    rx.sub(repl, "")  # let re validate group numbers and names: same error as the slow path

    def expand(match: re.Match) -> str:
        return "".join((match.group(v) or "") if group else v for group, v in parts)

    return lambda text: rx.sub(expand, text)


def move_to_front(tags: Tags, first: Iterable[str]) -> Tags:
    """Tags from `first` that the caption has go first, in the order of `first`; the rest keep order."""
    have = set(tags)
    lead = tuple(t for t in dict.fromkeys(first) if t in have)
    if not lead:
        return tags
    lead_set = set(lead)
    return lead + tuple(t for t in tags if t not in lead_set)


def sort_tags(tags: Tags, keep_first: int = 0, reverse: bool = False) -> Tags:
    """Sort alphabetically (case-insensitive), leaving the first `keep_first` tags where they are."""
    head, rest = tags[:keep_first], tags[keep_first:]
    # Two C-level sorts (by text, then stably by casefold) instead of a Python key per tag: same order
    # as sorting by (casefold, text), several times faster on 300k tags.
    return tuple(head) + tuple(sorted(sorted(rest, reverse=reverse), key=str.casefold, reverse=reverse))


def escape_brackets(tags: Tags) -> Tags:
    """`a (b)` -> `a \\(b\\)`. A weight like `(tag:1.2)` keeps its outer brackets: only its body is escaped."""
    return tuple(_escape_one(t) for t in tags)


def _escape_one(tag: str) -> str:
    if "(" not in tag and ")" not in tag:
        return tag  # most tags: skip the regexes (10k-image bulk edits must stay fast)
    m = _WEIGHTED.match(tag)
    if m:
        body = _UNESCAPED_BRACKET.sub(r"\\\1", m["body"])
        return "(" + body + ":" + m["weight"] + ")"
    return _UNESCAPED_BRACKET.sub(r"\\\1", tag)


def unescape_brackets(tags: Tags) -> Tags:
    return tuple(_ESCAPED_BRACKET.sub(r"\1", t) if "\\" in t else t for t in tags)


def is_kaomoji(tag: str) -> bool:
    return tag in KAOMOJI


def underscores_to_spaces(tags: Tags) -> Tags:
    """`long_hair` -> `long hair`, except kaomoji like `^_^`, `o_o`, `>_<`. Duplicates created are dropped."""
    if not any("_" in t for t in tags):
        return tags
    return dedupe(t if t in KAOMOJI else t.replace("_", " ") for t in tags)
