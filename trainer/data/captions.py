"""Per-step caption processing with sd-scripts semantics: prefix and suffix, keep tokens, tag warm-up, shuffle, tag
and caption dropout, secondary separator."""

from __future__ import annotations

import math
import random
import re

_WILDCARD = re.compile(r"\{([^{}]*\|[^{}]*)\}")


def process_caption(caption: str, *, shuffle: bool, keep_tokens: int, keep_tokens_separator: str,
                    caption_dropout_rate: float, caption_tag_dropout_rate: float, rng: random.Random,
                    drop_all: bool = False, wildcard: bool = False, separator: str = ",", prefix: str = "",
                    suffix: str = "", secondary_separator: str = "", warmup_min: int = 1, warmup_steps: float = 0,
                    step: int = 0) -> str:
    """The caption the text encoder sees for one step, as sd-scripts' process_caption makes it.

    - drop_all (caption_dropout_every_n_epochs hit this epoch) or, with probability caption_dropout_rate,
      the whole caption becomes "" (trains the unconditional case).
    - wildcard: `caption` may hold several lines; one is picked at random, and each `{a|b|c}` in it is
      replaced by one random choice. Without wildcard only the first non-blank line is used.
    - prefix and suffix are glued to the line with a space (sd-scripts' caption_prefix / caption_suffix: any comma
      is the user's), so their tags are shuffled, kept and dropped like the line's own.
    - Tags are split on `separator`. The fixed head is everything before keep_tokens_separator when it
      is set and present (a second separator starts a fixed tail), otherwise the first keep_tokens tags.
      While `step` < warmup_steps (sd-scripts' token_warmup_step, already in steps) only the first
      warmup_min + step x (n - warmup_min) / warmup_steps of the n other tags are kept. The other tags are then
      shuffled (shuffle) and each is dropped with probability caption_tag_dropout_rate, and all are written
      joined by ", ".
    - secondary_separator, last, becomes `separator`: the tags it joins moved and dropped as one.
    - When there is nothing to shuffle, drop, warm up or strip, the line is returned as it is.
    Random draws happen in this order: caption dropout, wildcard choices, shuffle, tag dropout.
    """
    if drop_all:
        return ""
    if caption_dropout_rate > 0 and rng.random() < caption_dropout_rate:
        return ""
    text = _glued(prefix, _pick_line(caption, wildcard, rng), suffix)  # before the choices, as sd-scripts does
    if wildcard:
        text = _choose_wildcards(text, rng)
    has_separator = bool(keep_tokens_separator) and keep_tokens_separator in text
    if shuffle or caption_tag_dropout_rate > 0 or has_separator or warmup_steps > 0:
        head, body, tail = split_tags(text, keep_tokens=keep_tokens,
                                      keep_tokens_separator=keep_tokens_separator, separator=separator)
        body = body[:warmed_up_tags(len(body), warmup_min, warmup_steps, step)]
        if shuffle:
            rng.shuffle(body)
        if caption_tag_dropout_rate > 0:
            body = [tag for tag in body if rng.random() >= caption_tag_dropout_rate]
        text = ", ".join(head + body + tail)
    return text.replace(secondary_separator, separator) if secondary_separator else text


def warmed_up_tags(tags: int, warmup_min: int, warmup_steps: float, step: int) -> int:
    """How many of a caption's `tags` movable tags train at `step` of a tag warm-up (sd-scripts' token_warmup_min /
    token_warmup_step): warmup_min at step 0, growing linearly to all of them at warmup_steps."""
    if not warmup_steps or step >= warmup_steps:
        return tags
    return math.floor(step * (tags - warmup_min) / warmup_steps) + warmup_min


def warmup_steps_of(token_warmup_step: float, total_steps: int) -> float:
    """token_warmup_step in steps: below 1 it is a share of the run's steps (rounded down, as sd-scripts does)."""
    return math.floor(token_warmup_step * total_steps) if token_warmup_step < 1 else token_warmup_step


def split_tags(text: str, *, keep_tokens: int, keep_tokens_separator: str,
               separator: str = ",") -> tuple[list[str], list[str], list[str]]:
    """(fixed head, movable tags, fixed tail) of one caption line; empty tags are left out."""
    def tags(part: str) -> list[str]:
        return [t.strip() for t in part.split(separator) if t.strip()]

    if keep_tokens_separator and keep_tokens_separator in text:
        head, rest = text.split(keep_tokens_separator, 1)
        body, _, tail = rest.partition(keep_tokens_separator)
        return tags(head), tags(body), tags(tail)
    all_tags = tags(text)
    keep = max(0, keep_tokens)
    return all_tags[:keep], all_tags[keep:], []


def drops_all_captions(epoch: int, every_n_epochs: int) -> bool:
    """caption_dropout_every_n_epochs: True in epochs n, 2n, 3n... (epochs counted from 1, as sd-scripts)."""
    return every_n_epochs > 0 and epoch > 0 and epoch % every_n_epochs == 0


def _pick_line(caption: str, wildcard: bool, rng: random.Random) -> str:
    lines = [ln.strip() for ln in caption.splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[0] if not wildcard or len(lines) == 1 else rng.choice(lines)


def _choose_wildcards(text: str, rng: random.Random) -> str:
    return _WILDCARD.sub(lambda m: rng.choice(m.group(1).split("|")), text)


def _glued(prefix: str, line: str, suffix: str) -> str:
    """sd-scripts joins caption_prefix and caption_suffix to the caption with one space each (to an empty one too)."""
    line = f"{prefix} {line}" if prefix else line
    return f"{line} {suffix}" if suffix else line


def trigger_first(caption: str, trigger: str, present: bool, separator: str = ",") -> str:
    """`caption` as a run trains it: the trigger word put in front as a tag of its own (followed by the run's
    caption_separator) unless `present` (has_tag, or its weighted form); a blank caption becomes the trigger word
    alone."""
    return caption if present else f"{trigger}{separator} {caption}" if caption.strip() else trigger


def preview_prompts(captions: list[str], trigger: str) -> str:
    """Preview prompts for a run that has none of its own (Novice): its dataset's first and last captions, two
    different pictures of what it learns, as trained (trigger word first), one a line."""
    trigger = trigger.strip()
    picks = [c.strip() for c in captions[:1] + captions[-1:]]
    return "\n".join(dict.fromkeys(trigger_first(c, trigger, not trigger or has_tag(c, trigger)) for c in picks))


def has_tag(caption: str, tag: str, separator: str = ",") -> bool:
    """Whether `tag` is one of the caption's tags, split at `separator` (the trigger-word rule of the engine and
    the dataset doctor)."""
    return tag.strip() in (t.strip() for t in caption.split(separator))
