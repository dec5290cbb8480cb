"""From a probability vector to caption tags: thresholds or MCut, rating by argmax, text formatting, order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainer.tagger.models import CHARACTER, GENERAL, RATING, Labels

# Tags whose underscore is part of the face, not a word separator.
from trainer.tags.ops import KAOMOJI  # one list for the tagger and the tag editor

MCUT_CHARACTER_FLOOR = 0.15  # MCut on few character tags can fall very low; never go under this


@dataclass
class TagOptions:
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    general_mcut: bool = False
    character_mcut: bool = False
    rating: bool = False  # put the rating tag (general/sensitive/questionable/explicit) in the caption
    replace_underscores: bool = True
    escape_brackets: bool = False  # `(` -> `\(`: only for A1111-style weighted captions
    character_first: bool = True
    undesired: list[str] = field(default_factory=list)
    always_first: list[str] = field(default_factory=list)  # e.g. the trigger word
    replacements: list[tuple[str, str]] = field(default_factory=list)  # (old, new); new "" removes


@dataclass
class Prediction:
    rating: tuple[str, float]
    characters: list[tuple[str, float]]  # above threshold, most confident first
    general: list[tuple[str, float]]


def mcut_threshold(probs: np.ndarray) -> float:
    """Midpoint of the largest gap between consecutive sorted probabilities (Largeron et al., MCut)."""
    ordered = np.sort(np.asarray(probs, dtype=np.float64))[::-1]
    if len(ordered) < 2:
        return 0.5
    gaps = ordered[:-1] - ordered[1:]
    t = int(np.argmax(gaps))
    return float((ordered[t] + ordered[t + 1]) / 2)


def _above(probs: np.ndarray, labels: Labels, category: int, threshold: float) -> list[tuple[str, float]]:
    idx = labels.indices(category)
    picked = [(labels.names[i], float(probs[i])) for i in idx if probs[i] > threshold]
    return sorted(picked, key=lambda item: -item[1])  # stable: equal scores keep the csv order


def predict(probs: np.ndarray, labels: Labels, opts: TagOptions) -> Prediction:
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    rating_idx = labels.indices(RATING)
    if not rating_idx:
        raise ValueError("selected_tags.csv has no rating rows (category 9); use the file from the model's repo")
    best = max(rating_idx, key=lambda i: probs[i])
    general_t = opts.general_threshold
    if opts.general_mcut:
        general_t = mcut_threshold(probs[labels.indices(GENERAL)])
    character_t = opts.character_threshold
    if opts.character_mcut:
        character_t = max(MCUT_CHARACTER_FLOOR, mcut_threshold(probs[labels.indices(CHARACTER)]))
    return Prediction(
        rating=(labels.names[best], float(probs[best])),
        characters=_above(probs, labels, CHARACTER, character_t),
        general=_above(probs, labels, GENERAL, general_t),
    )


def tag_key(tag: str) -> str:
    """How two spellings of a tag are compared: case, escapes and underscores do not matter."""
    plain = tag.strip().replace("\\(", "(").replace("\\)", ")").lower()
    return plain if plain in KAOMOJI else plain.replace("_", " ")


def display_name(name: str, opts: TagOptions) -> str:
    if opts.replace_underscores and name not in KAOMOJI:
        return name.replace("_", " ")
    return name


def escape(tag: str) -> str:
    return tag.replace("(", "\\(").replace(")", "\\)")


def ordered_tags(pred: Prediction, opts: TagOptions) -> list[str]:
    """The caption's tags in order: always-first, rating, then characters and general (or general first)."""
    names = [name for name, _ in pred.characters] + [name for name, _ in pred.general]
    if not opts.character_first:
        names = [name for name, _ in pred.general] + [name for name, _ in pred.characters]
    if opts.rating:
        names.insert(0, pred.rating[0])
    replace = {tag_key(old): new.strip() for old, new in opts.replacements}
    undesired = {tag_key(t) for t in opts.undesired}
    out = [t.strip() for t in opts.always_first if t.strip()]
    for name in names:
        tag = display_name(name, opts)
        tag = replace.get(tag_key(tag), tag)
        if not tag or tag_key(tag) in undesired:
            continue
        out.append(escape(tag) if opts.escape_brackets else tag)
    return dedupe(out)


def dedupe(tags: list[str]) -> list[str]:
    seen, out = set(), []
    for tag in tags:
        key = tag_key(tag)
        if key and key not in seen:
            seen.add(key)
            out.append(tag)
    return out


def confidences(pred: Prediction, opts: TagOptions) -> dict[str, float]:
    """Every selected tag (rating included) with its probability, for a preview."""
    items = [pred.rating, *pred.characters, *pred.general]
    return {display_name(name, opts): conf for name, conf in items}


def parse_tag_list(text: str | None) -> list[str]:
    """'a, b\\nc' -> ['a', 'b', 'c']."""
    if not text:
        return []
    return [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]


def parse_replacements(text: str | None) -> list[tuple[str, str]]:
    """'old,new;old2,new2' (or one pair a line) -> [(old, new), ...]; an empty new removes the tag."""
    pairs = []
    for entry in (text or "").replace("\n", ";").split(";"):
        if not entry.strip():
            continue
        old, sep, new = entry.partition(",")
        if not sep or not old.strip():
            raise ValueError(f"tag replacement '{entry.strip()}': write it as old,new (pairs separated by ';')")
        pairs.append((old.strip(), new.strip()))
    return pairs
