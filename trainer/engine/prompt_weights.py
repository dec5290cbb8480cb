"""Weighted captions (caption.weighted_captions): A1111's attention syntax in a caption scales the text
encoder's output for the tokens it marks, as sd-scripts' train_network does.

    (red hair)        x1.1          [red hair]     x1/1.1         (red hair:1.3)   x1.3
    ((red hair))      x1.21         \\( \\) \\[ \\]  literal brackets   \\\\  a literal backslash

Brackets never reach the tokenizer: each piece of text is tokenized on its own, and every token carries its
piece's weight. After encoding, each token's hidden-state vector is multiplied by its weight (<BOS>, <EOS>
and padding keep 1). sd-scripts' training scripts (library/strategy_sd.py and strategy_sdxl.py,
encode_tokens_with_weights, read 2026-02) do exactly this and do not rescale to the unweighted mean; only its
older custom_train_functions.get_weighted_text_embeddings, no longer called by training, did. SDXL's pooled
output stays unweighted, as there.
"""

from __future__ import annotations

import re

import torch

UP, DOWN = 1.1, 1 / 1.1  # what one ( ) or [ ] multiplies by
# An escaped bracket or backslash, a lone backslash, an opening bracket, ":<number>)" closing a weighted group,
# a closing bracket, a run of plain text, or a ":" that is just text.
_PART = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:([+-]?[.\d]+)\)|\)|]|[^\\()\[\]:]+|:")


def parse_weights(text: str) -> list[tuple[str, float]]:
    """A caption as (text, weight) pieces, neighbours of equal weight joined; brackets removed. Unclosed
    brackets weigh to the end of the text; a stray closing one is kept as text."""
    pieces: list[list] = []  # [text, weight], mutable while groups close
    rounds: list[int] = []  # where each open "(" and "[" began, in pieces
    squares: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= factor

    for m in _PART.finditer(text):
        part, number = m.group(0), m.group(1)
        if part.startswith("\\"):
            pieces.append([part[1:], 1.0])
        elif part == "(":
            rounds.append(len(pieces))
        elif part == "[":
            squares.append(len(pieces))
        elif number is not None and rounds and _is_number(number):
            scale(rounds.pop(), float(number))
        elif part == ")" and rounds:
            scale(rounds.pop(), UP)
        elif part == "]" and squares:
            scale(squares.pop(), DOWN)
        else:
            pieces.append([part, 1.0])
    for start in rounds:
        scale(start, UP)
    for start in squares:
        scale(start, DOWN)
    merged: list[list] = []
    for piece in pieces:
        if merged and merged[-1][1] == piece[1]:
            merged[-1][0] += piece[0]
        else:
            merged.append(piece)
    return [(t, w) for t, w in merged] or [("", 1.0)]


def plain_text(caption: str) -> str:
    """The caption as the tokenizer sees it with weighted captions: brackets and weights removed."""
    return "".join(text for text, _ in parse_weights(caption))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False  # "(x:1.2.3)": read as text rather than stop the run
    return True


def weighted_ids(tokenizer, captions: list[str], max_token_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids [batch, 1 + max_token_length + 1], weight of each token, same shape), laid out as the
    tokenizer pads a plain caption: <BOS> tokens <EOS> padding, cut to max_token_length tokens."""
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    all_ids, all_weights = [], []
    for caption in captions:
        ids: list[int] = []
        weights: list[float] = []
        for text, weight in parse_weights(caption):
            tokens = tokenizer(text, add_special_tokens=False, verbose=False).input_ids
            ids += tokens
            weights += [weight] * len(tokens)
        ids, weights = ids[:max_token_length], weights[:max_token_length]
        fill = max_token_length - len(ids)
        all_ids.append([bos, *ids, eos] + [pad] * fill)
        all_weights.append([1.0, *weights, 1.0] + [1.0] * fill)
    return torch.tensor(all_ids), torch.tensor(all_weights)


def weigh(hidden: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Hidden states [batch, 1 + max_token_length + 1, d] (chunks already merged, so position i is token i)
    times each token's weight; unchanged without weights."""
    if weights is None:
        return hidden
    return hidden * weights.to(hidden.device, hidden.dtype)[..., None]
